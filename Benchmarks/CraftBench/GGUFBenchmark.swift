// `craft-bench gguf`: the ~110M Llama of `craft-bench llama` as a Q8_0 GGUF file (written once by
// Benchmarks/peers/make_gguf.py, the way llama.cpp's converter writes it) against the same weights in
// float32 safetensors: resident memory and decode tokens/s, each run in its own process
// (`decode-run`), alternating, medians; single sequences and 8 decoded together. Results and the
// command: docs/benchmarks.md ("GGUF Q8_0").
//
//   craft-bench gguf [--threads 1,2] [--rounds 3] [--models DIR] [--prompt 128] [--tokens 32]
import CraftModels
import Foundation
import TensorCore

enum GGUFBenchmark {
    static func run(arguments: [String]) throws {
        let (options, prompt, tokens) = try HalfPrecisionBenchmark.parseDecodeOptions(arguments, threads: [1, 2], usage: "GGUFBenchmark.swift")
        try ModelBenchmark.prepareModels(in: options.models)
        let models = URL(fileURLWithPath: options.models)
        let llama = models.appendingPathComponent("llama"), gguf = models.appendingPathComponent("llama-q8_0.gguf")
        if !FileManager.default.fileExists(atPath: gguf.path) {
            print("writing the Q8_0 GGUF of the Llama weights to \(gguf.path) (once) ...")
            _ = try runChild(URL(fileURLWithPath: peerPython), [peerScript("make_gguf.py"), llama.path, gguf.path, "q8_0"])
        }
        let ggufMiB = Double((try FileManager.default.attributesOfItem(atPath: gguf.path)[.size] as? Int) ?? 0) / 1048576
        print("craft-bench gguf: \(options.rounds) alternating rounds, each run a fresh process, medians; prompt \(prompt) tokens, "
            + "decode \(tokens) tokens; CPU: \(HalfPrecisionBenchmark.cpuModel()); BLAS: \(BLAS.kernels.summary); row kernels: "
            + "\(HalfMatrix.kernelName); load average \(ModelBenchmark.loadAverage())")
        for threads in options.threads {
            var runs: [String: [HalfPrecisionBenchmark.Run]] = [:]
            let load = ModelBenchmark.loadAverage()
            for round in 0..<options.rounds {
                print("  round \(round + 1)/\(options.rounds), \(threads) thread(s) ...")
                runs["float32", default: []].append(try HalfPrecisionBenchmark.craftRun(llama, "float32", threads, prompt, tokens))
                runs["Q8_0", default: []].append(try HalfPrecisionBenchmark.craftRun(gguf, "stored", threads, prompt, tokens))
                runs["float32, 8 sequences", default: []].append(try HalfPrecisionBenchmark.craftRun(llama, "float32", threads, prompt, tokens, batch: 8))
                runs["Q8_0, 8 sequences", default: []].append(try HalfPrecisionBenchmark.craftRun(gguf, "stored", threads, prompt, tokens, batch: 8))
            }
            let weights = try HalfPrecisionBenchmark.weightMiB(llama)
            print("\n~110M Llama, \(threads) thread(s) (float32 safetensors \(Int(weights)) MiB, Q8_0 GGUF \(Int(ggufMiB)) MiB; load average \(load) → \(ModelBenchmark.loadAverage())):")
            QuantizeBenchmark.printTable(HalfPrecisionBenchmark.table(runs, order: ["float32", "Q8_0"], baseline: "float32", prompt: prompt))
            print("8 sequences decoded together:")
            QuantizeBenchmark.printTable(HalfPrecisionBenchmark.table(runs, order: ["float32, 8 sequences", "Q8_0, 8 sequences"], baseline: "float32, 8 sequences", prompt: prompt))
            if let reference = runs["float32"]?.first?.tokens, let ours = runs["Q8_0"]?.first?.tokens {
                let same = zip(ours, reference).prefix { $0 == $1 }.count
                print("greedy tokens: Q8_0 and float32 agree on the first \(same) of \(reference.count) (Q8_0 rounds the weights)")
            }
        }
    }
}
