// craft-bench: benchmarks comparing Craft's kernels with peers measured in the same run.
// Results and the commands that reproduce them: docs/benchmarks.md.
//
//   craft-bench quantize [options]   nearest-code search against faiss IndexFlatL2 (QuantizeBenchmark.swift)
//   craft-bench layers [options]     Linear and transformer block vs PyTorch CPU (LayerBenchmark.swift)
import Foundation

let arguments = Array(CommandLine.arguments.dropFirst())
do {
    switch arguments.first {
    case "quantize":
        try QuantizeBenchmark.run(arguments: Array(arguments.dropFirst()))
    case "layers":
        try LayerBenchmark.run(arguments: Array(arguments.dropFirst()))
    default:
        print("usage: craft-bench quantize|layers [options]   (see docs/benchmarks.md)")
        exit(64)
    }
} catch {
    // One sentence, no crash report: a bad option or a missing peer is the user's to fix.
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit((error as? BenchmarkError)?.isUsage == true ? 64 : 1)
}
