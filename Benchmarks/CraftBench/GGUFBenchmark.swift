// `craft-bench gguf`: the ~110M Llama of `craft-bench llama` as Q8_0 and Q4_K (a Q4_K_M-like mix
// with Q5_K and Q6_K) GGUF files (written once by Benchmarks/peers/make_gguf.py, the way llama.cpp's
// converter lays them out) against the same weights in float32 safetensors: resident memory and
// decode tokens/s, each run in its own process (`decode-run`), alternating, medians; single
// sequences and 8 decoded together; "exact" rows multiply the blocks with float32 activations
// instead of int8 ones. Results and the command: docs/benchmarks.md ("GGUF").
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
        let llama = models.appendingPathComponent("llama")
        let files = [("Q8_0", "q8_0"), ("Q4_K", "q4_k")].map { (label: $0.0, kind: $0.1, url: models.appendingPathComponent("llama-\($0.1).gguf")) }
        for file in files where !FileManager.default.fileExists(atPath: file.url.path) {
            print("writing the \(file.label) GGUF of the Llama weights to \(file.url.path) (once) ...")
            _ = try runChild(URL(fileURLWithPath: peerPython), [peerScript("make_gguf.py"), llama.path, file.url.path, file.kind])
        }
        // llama.cpp as the peer, when llama-cpp-python is installed in the peers' Python.
        let llamaCpp = try? runChild(URL(fileURLWithPath: peerPython), [peerScript("llama_cpp_decode.py"), "--check"])
        let sizes = try files.map { "\($0.label) GGUF \(Int(Double((try FileManager.default.attributesOfItem(atPath: $0.url.path)[.size] as? Int) ?? 0) / 1048576)) MiB" }
        print("craft-bench gguf: \(options.rounds) alternating rounds, each run a fresh process, medians; prompt \(prompt) tokens, "
            + "decode \(tokens) tokens; CPU: \(HalfPrecisionBenchmark.cpuModel()); BLAS: \(BLAS.kernels.summary); row kernels: "
            + "\(HalfMatrix.kernelName); peer: \(llamaCpp ?? "llama.cpp not installed (.venv-ref/bin/pip install --no-binary llama-cpp-python llama-cpp-python)"); "
            + "load average \(ModelBenchmark.loadAverage())")
        for threads in options.threads {
            var runs: [String: [HalfPrecisionBenchmark.Run]] = [:]
            let load = ModelBenchmark.loadAverage()
            for round in 0..<options.rounds {
                print("  round \(round + 1)/\(options.rounds), \(threads) thread(s) ...")
                runs["float32", default: []].append(try HalfPrecisionBenchmark.craftRun(llama, "float32", threads, prompt, tokens))
                for file in files {
                    runs[file.label, default: []].append(try HalfPrecisionBenchmark.craftRun(file.url, "stored", threads, prompt, tokens))
                    runs["\(file.label), exact", default: []].append(try HalfPrecisionBenchmark.craftRun(file.url, "stored-exact", threads, prompt, tokens))
                    if llamaCpp != nil {
                        runs["\(file.label), llama.cpp", default: []].append(try HalfPrecisionBenchmark.Run(line: runChild(
                            URL(fileURLWithPath: peerPython), [peerScript("llama_cpp_decode.py"), file.url.path, "\(threads)", "\(prompt)", "\(tokens)"])))
                    }
                }
                runs["float32, 8 sequences", default: []].append(try HalfPrecisionBenchmark.craftRun(llama, "float32", threads, prompt, tokens, batch: 8))
                for file in files {
                    runs["\(file.label), 8 sequences", default: []].append(try HalfPrecisionBenchmark.craftRun(file.url, "stored", threads, prompt, tokens, batch: 8))
                }
            }
            let weights = try HalfPrecisionBenchmark.weightMiB(llama)
            print("\n~110M Llama, \(threads) thread(s) (float32 safetensors \(Int(weights)) MiB, \(sizes.joined(separator: ", ")); load average \(load) → \(ModelBenchmark.loadAverage())):")
            QuantizeBenchmark.printTable(HalfPrecisionBenchmark.table(
                runs, order: ["float32"] + files.flatMap { [$0.label, "\($0.label), exact", "\($0.label), llama.cpp"] }.filter { runs[$0] != nil },
                baseline: "float32", prompt: prompt))
            for file in files {
                guard let ours = runs[file.label], let theirs = runs["\(file.label), llama.cpp"] else { continue }
                let (oursMs, theirsMs) = (QuantizeBenchmark.median(ours.map(\.decodeMillisecondsPerToken)), QuantizeBenchmark.median(theirs.map(\.decodeMillisecondsPerToken)))
                print(String(format: "%@ decode: Craft %.1f tok/s, llama.cpp %.1f tok/s (Craft / llama.cpp %.2fx)", file.label,
                             1000 / oursMs, 1000 / theirsMs, theirsMs / oursMs))
                Summary.line("gguf", String(format: "%@ decode, %d thread%@: %.2fx llama.cpp's tokens/s", file.label, threads,
                                            threads == 1 ? "" : "s", theirsMs / oursMs))
            }
            print("8 sequences decoded together:")
            QuantizeBenchmark.printTable(HalfPrecisionBenchmark.table(
                runs, order: ["float32, 8 sequences"] + files.map { "\($0.label), 8 sequences" }, baseline: "float32, 8 sequences", prompt: prompt))
            for file in files {
                if let reference = runs["float32"]?.first?.tokens, let ours = runs[file.label]?.first?.tokens {
                    let same = zip(ours, reference).prefix { $0 == $1 }.count
                    print("greedy tokens: \(file.label) and float32 agree on the first \(same) of \(reference.count) (quantization rounds the weights)")
                }
                for variant in ["llama.cpp", "exact"] {
                    if let theirs = runs["\(file.label), \(variant)"]?.first?.tokens, let ours = runs[file.label]?.first?.tokens {
                        let same = zip(ours, theirs).prefix { $0 == $1 }.count
                        print("greedy tokens: \(file.label) and \(file.label), \(variant) agree on the first \(same) of \(theirs.count)")
                    }
                }
            }
        }
    }
}
