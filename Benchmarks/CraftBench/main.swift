// craft-bench: benchmarks comparing Craft's kernels with peers measured in the same run.
// Results and the commands that reproduce them: docs/benchmarks.md.
//
//   craft-bench quantize [options]   nearest-code search against faiss IndexFlatL2 (QuantizeBenchmark.swift)
//   craft-bench layers [options]     Linear and transformer block vs PyTorch CPU (LayerBenchmark.swift)
//   craft-bench elementwise [options] C elementwise kernels (dispatched, portable) vs the old Swift SIMD16 code (ElementwiseBenchmark.swift)
//   craft-bench encoder [options]    SigLIP ViT-S/16 forward vs transformers on PyTorch CPU (EncoderBenchmark.swift)
//   craft-bench llama [options]      ~110M Llama prefill and decode vs transformers, bandwidth bound (LlamaBenchmark.swift)
//   craft-bench train-step [options] one CRAFT forward+backward step vs PyTorch (TrainStepBenchmark.swift)
//   craft-bench half [options]       bfloat16 weights vs float32, and a Qwen2-0.5B-shaped model vs PyTorch (HalfPrecisionBenchmark.swift)
//   craft-bench gguf [options]       Q8_0 and Q4_K GGUF Llamas against float32 and llama.cpp: memory, decode tokens/s (GGUFBenchmark.swift)
//   craft-bench plugin [options]     a runtime plugin's cost per call: the numpy plugin and the bare protocol vs the built-in encoder (PluginBenchmark.swift)
//   craft-bench pull [options]       a remote registry's verified download vs curl (PullBenchmark.swift)
//   craft-bench registry-search [options] search of a remote registry of 100,000 names, cold and warm (RegistrySearchBenchmark.swift)
//   craft-bench serve [options]      craft serve over HTTP at concurrency 1/8/32 vs a sequential loop (ServeBenchmark.swift)
//   craft-bench bandwidth [--threads N]  STREAM-like read and copy GB/s (used by `llama`)
//   craft-bench all [--only A,B]     every benchmark above in turn, then one summary line per result (make bench)
import Foundation

let arguments = Array(CommandLine.arguments.dropFirst())
do {
    switch arguments.first {
    case "quantize":
        try QuantizeBenchmark.run(arguments: Array(arguments.dropFirst()))
    case "layers":
        try LayerBenchmark.run(arguments: Array(arguments.dropFirst()))
    case "elementwise":
        try ElementwiseBenchmark.run(arguments: Array(arguments.dropFirst()))
    case "encoder":
        try EncoderBenchmark.run(arguments: Array(arguments.dropFirst()))
    case "llama":
        try LlamaBenchmark.run(arguments: Array(arguments.dropFirst()))
    case "train-step":
        try TrainStepBenchmark.run(arguments: Array(arguments.dropFirst()))
    case "half":
        try HalfPrecisionBenchmark.run(arguments: Array(arguments.dropFirst()))
    case "decode-run":
        try HalfPrecisionBenchmark.measure(arguments: Array(arguments.dropFirst()))
    case "gguf":
        try GGUFBenchmark.run(arguments: Array(arguments.dropFirst()))
    case "serve":
        try ServeBenchmark.run(arguments: Array(arguments.dropFirst()))
    case "pull":
        try PullBenchmark.run(arguments: Array(arguments.dropFirst()))
    case "registry-search":
        try RegistrySearchBenchmark.run(arguments: Array(arguments.dropFirst()))
    case "plugin":
        try PluginBenchmark.run(arguments: Array(arguments.dropFirst()))
    case "all":
        try AllBenchmarks.run(arguments: Array(arguments.dropFirst()))
    case "bandwidth":
        try MemoryBandwidth.run(arguments: Array(arguments.dropFirst()))
    default:
        print("usage: craft-bench all|quantize|layers|elementwise|encoder|llama|train-step|half|gguf|serve|plugin|pull|registry-search|bandwidth [options]   (see docs/benchmarks.md)")
        exit(64)
    }
} catch {
    // One sentence, no crash report: a bad option or a missing peer is the user's to fix.
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit((error as? BenchmarkError)?.isUsage == true ? 64 : 1)
}
