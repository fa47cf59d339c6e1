// `craft-bench llama`: a ~110M-parameter Llama (hidden 768, 12 layers, 12 heads, MLP 2048, vocab 32000,
// tied embeddings), CraftModels' LlamaModel against transformers' LlamaForCausalLM on PyTorch CPU, on the
// same weights: prefill of 512 tokens (logits for every position, KV cache built) and greedy decoding of
// 64 tokens after a 128-token prompt through the KV cache (tokens/s). Decoding is also set against the
// memory-bandwidth bound: the weight bytes read per token over the read bandwidth measured in the same
// run (a STREAM-like read and copy of 1 GiB). Peak resident memory of both sides and the resident
// memory right after loading (against the weight bytes) are reported.
// Results and the exact command: docs/benchmarks.md ("Llama prefill and decode").
//
//   craft-bench llama [--threads 1,2] [--rounds 3] [--iterations 1] [--no-peer] [--unfused-attention] [--models DIR]
import CraftModels
import Foundation
import TensorCore

enum LlamaBenchmark {
    static let prefillLength = 512, promptLength = 128, decodeTokens = 64

    static func run(arguments: [String]) throws {
        var defaults = ModelBenchmark.Options()
        defaults.iterations = 1
        let options = try ModelBenchmark.parse(arguments, defaults: defaults, usage: "LlamaBenchmark.swift")
        try ModelBenchmark.prepareModels(in: options.models)
        let directory = URL(fileURLWithPath: options.models).appendingPathComponent("llama")
        let weightFile = directory.appendingPathComponent("model.safetensors")
        let fileBytes = Double((try FileManager.default.attributesOfItem(atPath: weightFile.path)[.size] as? Int) ?? 0)
        let before = ModelBenchmark.memoryMiB()
        let model = try LlamaModel(directory: directory)
        let afterLoad = ModelBenchmark.memoryMiB()
        // Every distinct tensor (the tied lm_head shares the embedding's storage).
        let parameterCount = model.parameters.values.reduce(0) { $0 + $1.scalarCount }
        let weightBytes = Double(parameterCount * 4)
        print(String(format: "Llama: %.1fM parameters, %.0f MiB of float32 weights (file %.0f MiB); resident memory "
                     + "before loading %.0f MiB, after %.0f MiB (+%.0f MiB = %.2fx the weight bytes), peak so far %.0f MiB",
                     Double(parameterCount) / 1e6, weightBytes / 1048576, fileBytes / 1048576, before.resident,
                     afterLoad.resident, afterLoad.resident - before.resident,
                     (afterLoad.resident - before.resident) * 1048576 / weightBytes, afterLoad.peak))

        let inputs = try ModelBenchmark.Tensors(options.models, "inputs.safetensors")
        let reference = try ModelBenchmark.Tensors(options.models, "reference.safetensors")
        let tokens = try inputs.integers("tokens")
        precondition(tokens.count == prefillLength)

        func prefill() throws -> Tensor {
            try withoutGradients {
                var cache = model.makeCache()
                return try model.logits(tokens: tokens, cache: &cache)
            }
        }
        /// Greedy decoding after the prompt; the prompt's prefill is outside `timed`.
        func decode(_ timed: (() throws -> [Int]) throws -> [Int]) throws -> [Int] {
            try withoutGradients {
                var cache = model.makeCache()
                let logits = try model.logits(tokens: Array(tokens.prefix(promptLength)), cache: &cache)
                var next = argmax(logits, row: logits.shape[0] - 1)
                return try timed {
                    var generated: [Int] = []
                    for _ in 0..<decodeTokens {
                        generated.append(next)
                        let step = try model.logits(tokens: [next], cache: &cache)
                        next = argmax(step, row: 0)
                    }
                    return generated
                }
            }
        }

        // Agreement with transformers (its outputs on one thread).
        Tensor.threadCount = 1
        let logits = try prefill()
        let lastRows = logits.sliced(along: 0, (prefillLength - 8)..<prefillLength)
        let logitDifference = ModelBenchmark.relativeDifference(lastRows, try reference.tensor("prefill_logits_last"))
        let generated = try decode { try $0() }
        let expected = try reference.integers("decode_tokens")
        let sameTokens = zip(generated, expected).prefix { $0 == $1 }.count
        print(String(format: "agreement with transformers: prefill logits (last 8 rows) max |diff| / max |ref| = %.2e; "
                     + "greedy decoding: first %d of %d tokens identical", logitDifference, sameTokens, expected.count))
        guard logitDifference < 1e-3 else {
            throw BenchmarkError("Craft's Llama disagrees with transformers on the benchmark weights (relative difference \(logitDifference)); the timing would compare different computations")
        }

        let peer = options.peer ? try TorchPeer(script: "torch_models.py", arguments: ["serve", options.models]) : nil
        defer { peer?.stop() }
        ModelBenchmark.header("llama", options: options, peer: peer)
        var table = [ModelBenchmark.tableHeader]
        var decodeRows: [[String]] = [["threads", "craft tok/s", "torch tok/s", "craft/torch", "read GB/s", "copy GB/s",
                                       "bound tok/s", "craft ms/tok", "bound ms/tok", "craft/bound", "load avg"]]
        for threads in options.threads {
            Tensor.threadCount = threads
            var load = ModelBenchmark.loadAverage()
            let (craftPrefill, torchPrefill) = try ModelBenchmark.alternate(
                rounds: options.rounds, iterations: options.iterations, threads: threads, peer: peer, peerCase: "prefill"
            ) { _ = try prefill() }
            table.append(ModelBenchmark.row("prefill 512 tokens", threads: threads, craftPrefill, torchPrefill,
                                            load: load + " → " + ModelBenchmark.loadAverage()))

            load = ModelBenchmark.loadAverage()
            var craftDecode: [ModelBenchmark.Sample] = []
            var bandwidth: [(read: Double, copy: Double)] = []
            let (_, torchDecode) = try ModelBenchmark.alternate(
                rounds: options.rounds, iterations: options.iterations, threads: threads, peer: peer, peerCase: "decode"
            ) {
                _ = try decode { body in
                    var result: [Int] = []
                    var failure: Error?
                    craftDecode.append(LayerBenchmark.measure { do { result = try body() } catch { failure = error } })
                    if let failure { throw failure }
                    return result
                }
                bandwidth.append(try MemoryBandwidth.measure(threads: threads))
            }
            craftDecode.removeFirst()  // the warm-up
            table.append(ModelBenchmark.row("decode 64 tokens after 128", threads: threads, craftDecode, torchDecode,
                                            load: load + " → " + ModelBenchmark.loadAverage()))
            let craftPerToken = ModelBenchmark.median(craftDecode, \.wall) / Double(decodeTokens)
            let torchPerToken = ModelBenchmark.median(torchDecode, \.wall) / Double(decodeTokens)
            let read = QuantizeBenchmark.median(bandwidth.map(\.read)), copy = QuantizeBenchmark.median(bandwidth.map(\.copy))
            // Bytes a decode step must read: every weight except the embedding table's unused rows
            // (with tied embeddings the table is read whole as the lm_head).
            let boundPerToken = weightBytes / (read * 1e9) * 1000
            decodeRows.append([
                "\(threads)", String(format: "%.1f", 1000 / craftPerToken),
                torchDecode.isEmpty ? "-" : String(format: "%.1f", 1000 / torchPerToken),
                torchDecode.isEmpty ? "-" : String(format: "%.2fx", torchPerToken / craftPerToken),
                String(format: "%.1f", read), String(format: "%.1f", copy), String(format: "%.1f", 1000 / boundPerToken),
                String(format: "%.2f", craftPerToken), String(format: "%.2f", boundPerToken),
                String(format: "%.2fx", craftPerToken / boundPerToken), load + " → " + ModelBenchmark.loadAverage(),
            ])
            Summary.line("decode vs bandwidth bound", String(format: "%d thread%@: %.2f of the bound's tokens/s (target >= 0.67)%@",
                                                             threads, threads == 1 ? "" : "s", boundPerToken / craftPerToken,
                                                             torchDecode.isEmpty ? "" : String(format: "; %.2fx PyTorch's tokens/s (target >= 1.5x)", torchPerToken / craftPerToken)))
        }
        QuantizeBenchmark.printTable(table)
        print("decode throughput (craft/torch is the speed ratio, higher is better) and the bandwidth bound "
            + String(format: "(%.0f MiB of weights per token):", weightBytes / 1048576))
        QuantizeBenchmark.printTable(decodeRows)
        let craftMemory = ModelBenchmark.memoryMiB()
        var memoryLine = String(format: "peak resident memory: Craft %.0f MiB (now %.0f MiB)", craftMemory.peak, craftMemory.resident)
        if let peer {
            let torchMemory = try ModelBenchmark.peerMemoryMiB(peer)
            memoryLine += String(format: ", torch %.0f MiB (now %.0f MiB)", torchMemory.peak, torchMemory.resident)
        }
        print(memoryLine + String(format: "; weights %.0f MiB", weightBytes / 1048576))
    }

    /// The index of the largest value of `row` (lowest index on ties).
    static func argmax(_ logits: Tensor, row: Int) -> Int {
        let values = logits.sliced(along: 0, row..<(row + 1)).scalars
        var best = 0
        for index in values.indices where values[index] > values[best] { best = index }
        return best
    }
}

/// A STREAM-like measure of memory bandwidth: a read (sum) of 1 GiB and a copy of 512 MiB into 512 MiB,
/// split over `threads` threads, best of 3 passes each, in GB/s (10⁹ bytes; a copy counts read + write).
///
/// `craft-bench bandwidth --threads N` runs it and prints `read copy`; the Llama benchmark runs that
/// as a child process so that its gibibyte never counts in the benchmark's own peak memory.
enum MemoryBandwidth {
    static let bytes = 1 << 30

    /// Measures in a child `craft-bench bandwidth` process.
    static func measure(threads: Int) throws -> (read: Double, copy: Double) {
        let values = try runChild(benchmarkExecutable, ["bandwidth", "--threads", "\(threads)"])
            .split(whereSeparator: \.isWhitespace).compactMap { Double($0) }
        guard values.count == 2 else {
            throw BenchmarkError("the bandwidth measurement (craft-bench bandwidth) failed")
        }
        return (values[0], values[1])
    }

    /// `craft-bench bandwidth [--threads N]`: prints the read and copy GB/s.
    static func run(arguments: [String]) throws {
        var reader = BenchmarkArguments(arguments)
        var threads = 1
        while let argument = reader.next() {
            guard argument == "--threads" else { throw BenchmarkError("unknown option \(argument); use --threads N", usage: true) }
            threads = try reader.positiveInteger(after: argument)
        }
        let result = measureHere(threads: threads)
        print(String(format: "%.2f %.2f", result.read, result.copy))
    }

    static func measureHere(threads: Int) -> (read: Double, copy: Double) {
        let count = bytes / 4
        let memory = SendablePointer(UnsafeMutablePointer<Float>.allocate(capacity: count))
        let base = memory.pointer
        defer { base.deallocate() }
        base.initialize(repeating: 1, count: count)  // faults every page in before timing
        var bestRead = 0.0, bestCopy = 0.0
        let partialSums = SendablePointer(UnsafeMutablePointer<Float>.allocate(capacity: threads))
        defer { partialSums.pointer.deallocate() }
        for _ in 0..<3 {
            var start = DispatchTime.now().uptimeNanoseconds
            let chunk = count / threads / 64 * 64
            DispatchQueue.concurrentPerform(iterations: threads) { part in
                let vectors = UnsafeRawPointer(memory.pointer + part * chunk).assumingMemoryBound(to: SIMD16<Float>.self)
                var a = SIMD16<Float>(), b = SIMD16<Float>(), c = SIMD16<Float>(), d = SIMD16<Float>()
                var index = 0
                while index < chunk / 16 {
                    a += vectors[index]; b += vectors[index + 1]; c += vectors[index + 2]; d += vectors[index + 3]
                    index += 4
                }
                partialSums.pointer[part] = (a + b + c + d).sum()
            }
            var seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            precondition(partialSums.pointer[0] > 0)
            bestRead = max(bestRead, Double(chunk * threads * 4) / seconds / 1e9)
            let half = count / 2, copyChunk = half / threads
            start = DispatchTime.now().uptimeNanoseconds
            DispatchQueue.concurrentPerform(iterations: threads) { part in
                let base = memory.pointer
                (base + half + part * copyChunk).update(from: base + part * copyChunk, count: copyChunk)
            }
            seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            bestCopy = max(bestCopy, Double(copyChunk * threads * 8) / seconds / 1e9)
        }
        return (bestRead, bestCopy)
    }
}

/// A pointer handed to `concurrentPerform` workers that touch disjoint parts of it.
struct SendablePointer: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    init(_ pointer: UnsafeMutablePointer<Float>) { self.pointer = pointer }
}
