// `craft-bench half`: weights kept in half precision against float32, and against PyTorch.
//
// 1. The ~110M Llama of `craft-bench llama` (hidden 768, 12 layers, vocab 32000, tied) in float32 and
//    in bfloat16 (the same weights rounded, written once beside it): resident memory and decode
//    tokens/s of each, every run in its own process so each has its own peak; and 8 sequences
//    decoded together (batched decoding) against one.
// 2. A Qwen2-0.5B-shaped model (24 layers, hidden 896, 14 heads, 2 KV heads, MLP 4864, vocab 151936,
//    tied; random weights saved in bfloat16 by Benchmarks/peers/torch_half.py): load time, peak
//    memory, prefill and decode tokens/s, beside PyTorch loading the same file in bfloat16 (its own
//    CPU kernels) and in float32; greedy tokens are checked against PyTorch in float32 on those weights.
// Runs alternate (float32 / bfloat16 / torch), `--rounds` times; medians. Results and the command:
// docs/benchmarks.md ("Half-precision weights").
//
//   craft-bench half [--threads 1,2] [--rounds 3] [--no-peer] [--models DIR] [--prompt 128] [--tokens 32]
//   craft-bench decode-run DIR|FILE.gguf float32|stored THREADS PROMPT TOKENS [BATCH]   (one measured run; used by `half` and `gguf`)
import CraftModels
import Foundation
import SafeTensors
import TensorCore

enum HalfPrecisionBenchmark {
    /// One measured run, as both `decode-run` and `torch_half.py run` print it.
    struct Run {
        var loadMilliseconds = 0.0, baselineMiB = 0.0, residentMiB = 0.0, peakMiB = 0.0, prefillMilliseconds = 0.0, decodeMillisecondsPerToken = 0.0
        var tokens: [Int] = []

        init(line: String) throws {
            var fields: [String: String] = [:]
            for part in line.split(separator: " ") {
                let pair = part.split(separator: "=", maxSplits: 1)
                if pair.count == 2 { fields[String(pair[0])] = String(pair[1]) }
            }
            func number(_ key: String) throws -> Double {
                guard let value = fields[key].flatMap(Double.init) else { throw BenchmarkError("a measured run printed no \(key): \(line)") }
                return value
            }
            loadMilliseconds = try number("load_ms")
            baselineMiB = try number("baseline_mib")
            residentMiB = try number("resident_mib")
            peakMiB = try number("peak_mib")
            prefillMilliseconds = try number("prefill_ms")
            decodeMillisecondsPerToken = try number("decode_ms_per_token")
            tokens = (fields["tokens"] ?? "").split(separator: ",").compactMap { Int($0) }
        }
    }

    /// The model benchmarks' options plus `--prompt N` and `--tokens N` (`half`, `gguf`).
    static func parseDecodeOptions(
        _ arguments: [String], threads: [Int], usage: String
    ) throws -> (options: ModelBenchmark.Options, prompt: Int, tokens: Int) {
        var defaults = ModelBenchmark.Options()
        defaults.threads = threads
        var prompt = 128, tokens = 32
        var rest: [String] = []
        var reader = BenchmarkArguments(arguments)
        while let argument = reader.next() {
            switch argument {
            case "--prompt": prompt = try reader.positiveInteger(after: argument)
            case "--tokens": tokens = try reader.positiveInteger(after: argument)
            default:
                rest.append(argument)
                if argument != "--no-peer", let value = reader.next() { rest.append(value) }
            }
        }
        return (try ModelBenchmark.parse(rest, defaults: defaults, usage: usage), prompt, tokens)
    }

    static func run(arguments: [String]) throws {
        let (options, prompt, tokens) = try parseDecodeOptions(arguments, threads: [1], usage: "HalfPrecisionBenchmark.swift")
        try ModelBenchmark.prepareModels(in: options.models)
        let models = URL(fileURLWithPath: options.models)
        let llama = models.appendingPathComponent("llama"), llamaHalf = models.appendingPathComponent("llama-bf16")
        try writeBFloat16Copy(of: llama, to: llamaHalf)
        let qwen = models.appendingPathComponent("qwen2-0.5b-bf16")
        try makeQwen(in: qwen)

        print("craft-bench half: \(options.rounds) alternating rounds, each run a fresh process, medians; prompt \(prompt) tokens, "
            + "decode \(tokens) tokens; CPU: \(cpuModel()); BLAS: \(BLAS.kernels.summary); half-precision kernels: "
            + "\(HalfMatrix.kernelName); load average \(ModelBenchmark.loadAverage())")
        for threads in options.threads {
            var llamaRuns: [String: [Run]] = [:], qwenRuns: [String: [Run]] = [:]
            let load = ModelBenchmark.loadAverage()
            for round in 0..<options.rounds {
                print("  round \(round + 1)/\(options.rounds), \(threads) thread(s) ...")
                llamaRuns["craft float32", default: []].append(try craftRun(llama, "float32", threads, prompt, tokens))
                llamaRuns["craft bfloat16", default: []].append(try craftRun(llamaHalf, "stored", threads, prompt, tokens))
                llamaRuns["craft float32, 8 sequences", default: []].append(try craftRun(llama, "float32", threads, prompt, tokens, batch: 8))
                llamaRuns["craft bfloat16, 8 sequences", default: []].append(try craftRun(llamaHalf, "stored", threads, prompt, tokens, batch: 8))
                qwenRuns["craft bfloat16", default: []].append(try craftRun(qwen, "stored", threads, prompt, tokens))
                if options.peer {
                    qwenRuns["torch bfloat16", default: []].append(try torchRun(qwen, "bfloat16", threads, prompt, tokens))
                    qwenRuns["torch float32", default: []].append(try torchRun(qwen, "float32", threads, prompt, tokens))
                }
            }
            let weightBytes = try weightMiB(llama), halfBytes = try weightMiB(llamaHalf), qwenBytes = try weightMiB(qwen)
            print("\n~110M Llama, \(threads) thread(s) (weights: float32 \(Int(weightBytes)) MiB, bfloat16 \(Int(halfBytes)) MiB; load average \(load) → \(ModelBenchmark.loadAverage())):")
            QuantizeBenchmark.printTable(table(llamaRuns, order: ["craft float32", "craft bfloat16"], baseline: "craft float32", prompt: prompt))
            print("batched decoding, 8 sequences together (tokens/s over all sequences; prefill is per sequence):")
            QuantizeBenchmark.printTable(table(llamaRuns, order: ["craft float32", "craft float32, 8 sequences"], baseline: "craft float32", prompt: prompt))
            QuantizeBenchmark.printTable(table(llamaRuns, order: ["craft bfloat16", "craft bfloat16, 8 sequences"], baseline: "craft bfloat16", prompt: prompt))
            for precision in ["float32", "bfloat16"] {
                guard let one = llamaRuns["craft \(precision)"], let eight = llamaRuns["craft \(precision), 8 sequences"] else { continue }
                let ratio = QuantizeBenchmark.median(one.map(\.decodeMillisecondsPerToken)) / QuantizeBenchmark.median(eight.map(\.decodeMillisecondsPerToken))
                Summary.line("batched decode", String(format: "%@, %d thread%@: 8 sequences at %.2fx one sequence's tokens/s (target >= 4x)",
                                                      precision, threads, threads == 1 ? "" : "s", ratio))
            }
            print("\nQwen2-0.5B-shaped, \(threads) thread(s) (bfloat16 weights \(Int(qwenBytes)) MiB):")
            // Without the peer (--no-peer) the table's ratios are against Craft's own run.
            QuantizeBenchmark.printTable(table(qwenRuns, order: ["craft bfloat16", "torch bfloat16", "torch float32"],
                                               baseline: options.peer ? "torch bfloat16" : "craft bfloat16", prompt: prompt))
            if let reference = qwenRuns["torch float32"]?.first?.tokens, let ours = qwenRuns["craft bfloat16"]?.first?.tokens {
                let same = zip(ours, reference).prefix { $0 == $1 }.count
                print("greedy tokens: Craft (bfloat16 weights, float32 arithmetic) and torch (the same weights in float32) agree on the first \(same) of \(reference.count)")
            }
        }
    }

    /// Rows of medians per configuration, with ratios against `baseline`.
    static func table(_ runs: [String: [Run]], order: [String], baseline: String, prompt: Int) -> [[String]] {
        func median(_ name: String, _ key: KeyPath<Run, Double>) -> Double {
            QuantizeBenchmark.median((runs[name] ?? []).map { $0[keyPath: key] })
        }
        var rows = [["run", "load ms", "before load MiB", "after load MiB", "peak MiB", "peak / \(baseline)",
                     "peak - before", "(peak - before) / \(baseline)", "prefill tok/s", "decode tok/s", "decode / \(baseline)"]]
        for name in order where runs[name] != nil {
            let decode = 1000 / median(name, \.decodeMillisecondsPerToken), baseDecode = 1000 / median(baseline, \.decodeMillisecondsPerToken)
            let net = median(name, \.peakMiB) - median(name, \.baselineMiB), baseNet = median(baseline, \.peakMiB) - median(baseline, \.baselineMiB)
            rows.append([
                name, String(format: "%.0f", median(name, \.loadMilliseconds)), String(format: "%.0f", median(name, \.baselineMiB)),
                String(format: "%.0f", median(name, \.residentMiB)),
                String(format: "%.0f", median(name, \.peakMiB)), String(format: "%.2fx", median(name, \.peakMiB) / median(baseline, \.peakMiB)),
                String(format: "%.0f", net), String(format: "%.2fx", net / baseNet),
                String(format: "%.1f", Double(prompt) * 1000 / median(name, \.prefillMilliseconds)), String(format: "%.2f", decode),
                String(format: "%.2fx", decode / baseDecode),
            ])
        }
        return rows
    }

    // MARK: - One measured run

    /// `craft-bench decode-run DIR PRECISION THREADS PROMPT TOKENS`: loads, prefills, decodes, prints a `Run` line.
    static func measure(arguments: [String]) throws {
        // "stored-exact": GGUF blocks multiplied with float32 activations instead of int8 ones.
        let exact = arguments.count > 1 && arguments[1] == "stored-exact"
        guard arguments.count == 5 || arguments.count == 6, let precision = WeightPrecision(rawValue: exact ? "stored" : arguments[1]),
              let threads = Int(arguments[2]), let prompt = Int(arguments[3]), let tokens = Int(arguments[4]),
              let batch = arguments.count == 6 ? Int(arguments[5]) : 1, batch >= 1 else {
            throw BenchmarkError("usage: craft-bench decode-run DIR float32|stored|stored-exact THREADS PROMPT TOKENS [BATCH]", usage: true)
        }
        Tensor.threadCount = threads
        _ = BLAS.kernels  // OpenBLAS loaded before the baseline is read
        let baseline = ModelBenchmark.memoryMiB().resident
        let start = DispatchTime.now().uptimeNanoseconds
        let path = URL(fileURLWithPath: arguments[0])
        let model = path.pathExtension == "gguf"
            ? try LlamaModel(gguf: path, precision: precision, activations: exact ? .float32 : .int8) : try LlamaModel(directory: path, precision: precision)
        let loadMilliseconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        let resident = ModelBenchmark.memoryMiB().resident
        // Sequence b's prompt: token i is (i * 7919 + 13 + 31 b) mod vocab (b = 0 is torch_half.py's prompt).
        let inputs = (0..<batch).map { b in (0..<prompt).map { ($0 * 7919 + 13 + 31 * b) % model.vocabularySize } }
        var generated: [Int] = []
        let (prefillMilliseconds, decodeMilliseconds) = try withoutGradients {
            var caches = inputs.map { _ in model.makeCache() }
            var clock = DispatchTime.now().uptimeNanoseconds
            let logits = try model.lastLogits(batchTokens: inputs, caches: &caches)
            let prefill = Double(DispatchTime.now().uptimeNanoseconds - clock) / 1e6
            var next = (0..<batch).map { LlamaBenchmark.argmax(logits, row: $0) }
            clock = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<tokens {
                generated.append(next[0])
                let step = try model.lastLogits(batchTokens: next.map { [$0] }, caches: &caches)
                next = (0..<batch).map { LlamaBenchmark.argmax(step, row: $0) }
            }
            return (prefill, Double(DispatchTime.now().uptimeNanoseconds - clock) / 1e6)
        }
        // Per token over all sequences: the aggregate rate is 1000 / this.
        let decodePerToken = decodeMilliseconds / Double(tokens * batch)
        print(String(format: "load_ms=%.1f baseline_mib=%.1f resident_mib=%.1f peak_mib=%.1f prefill_ms=%.1f decode_ms_per_token=%.3f tokens=%@",
                     loadMilliseconds, baseline, resident, ModelBenchmark.memoryMiB().peak, prefillMilliseconds / Double(batch),
                     decodePerToken, generated.map(String.init).joined(separator: ",")))
    }

    static func craftRun(_ directory: URL, _ precision: String, _ threads: Int, _ prompt: Int, _ tokens: Int, batch: Int = 1) throws -> Run {
        try Run(line: runChild(benchmarkExecutable, ["decode-run", directory.path, precision, "\(threads)", "\(prompt)", "\(tokens)", "\(batch)"]))
    }

    static func torchRun(_ directory: URL, _ dtype: String, _ threads: Int, _ prompt: Int, _ tokens: Int) throws -> Run {
        try Run(line: runChild(URL(fileURLWithPath: peerPython),
                            [peerScript("torch_half.py"), "run", directory.path, dtype, "\(threads)", "\(prompt)", "\(tokens)"]))
    }

    // MARK: - Model files

    /// Writes `source`'s weights rounded to bfloat16 into `destination` (with its config.json), once.
    static func writeBFloat16Copy(of source: URL, to destination: URL) throws {
        let target = destination.appendingPathComponent("model.safetensors")
        if FileManager.default.fileExists(atPath: target.path) { return }
        print("writing the bfloat16 copy of the Llama weights in \(destination.path) (once) ...")
        try FileManager.default.createDirectory(at: destination, withIntermediateDirectories: true)
        let file = try SafeTensorsFile(contentsOf: source.appendingPathComponent("model.safetensors"))
        var writer = SafeTensorsWriter()
        for name in file.names { try writer.add(name, floats: try file.floats(name), shape: try file.info(name).shape, as: .bf16) }
        try writer.serialized().write(to: target)
        try? FileManager.default.removeItem(at: destination.appendingPathComponent("config.json"))
        try FileManager.default.copyItem(at: source.appendingPathComponent("config.json"), to: destination.appendingPathComponent("config.json"))
    }

    static func makeQwen(in directory: URL) throws {
        if FileManager.default.fileExists(atPath: directory.appendingPathComponent("model.safetensors").path) { return }
        print("making the Qwen2-0.5B-shaped model in \(directory.path) (once, about 1 GiB) ...")
        _ = try runChild(URL(fileURLWithPath: peerPython), [peerScript("torch_half.py"), "make", directory.path])
    }

    static func weightMiB(_ directory: URL) throws -> Double {
        let size = try FileManager.default.attributesOfItem(atPath: directory.appendingPathComponent("model.safetensors").path)[.size] as? Int
        return Double(size ?? 0) / 1048576
    }

    /// The CPU's model name with its family and model numbers (`/proc/cpuinfo`): "AMD EPYC" alone names
    /// a Zen 3 and a Zen 4 alike ("AMD EPYC (family 25 model 1)" is a Zen 3).
    static func cpuModel() -> String {
        let text = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let lines = text.split(separator: "\n")
        func field(_ name: String) -> String? {
            // "model" is a prefix of "model name": match the field name exactly, before the colon.
            guard let line = lines.first(where: { $0.split(separator: ":", maxSplits: 1).first?.trimmingCharacters(in: .whitespaces) == name })
            else { return nil }
            return line.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) }
        }
        let name = field("model name") ?? "?"
        guard let family = field("cpu family"), let model = field("model") else { return name }
        return "\(name) (family \(family) model \(model))"
    }
}
