// `craft-bench layers`: TensorCore against PyTorch CPU on a Linear layer and a pre-norm transformer
// block, forward (inference, no graph) and forward+backward (gradients for the input and every
// parameter), and on attention alone (forward: the fused kernel against F.scaled_dot_product_attention),
// at each thread count, measured in the same run with alternating repetitions.
// Results and the exact command: docs/benchmarks.md ("Layers").
//
//   craft-bench layers [--threads 1,2] [--rounds 5] [--iterations 3] [--no-peer] [--breakdown]
// --breakdown times the block's forward pieces separately (Craft only) and stops.
// The peer (Benchmarks/peers/torch_layers.py) runs with $CRAFT_PYTHON (default ./.venv-ref/bin/python, else python3; see BenchmarkSupport.swift)
// and stays up for the whole run, answering one timing request per round.
import Foundation
import TensorCore

enum LayerBenchmark {
    struct Options {
        var threads = [1, 2]
        var rounds = 5
        var iterations = 3
        var peer = true
        var breakdown = false
    }

    static let hidden = 768, mlp = 3072, heads = 12, length = 256, rows = 512

    static func parse(_ arguments: [String]) throws -> Options {
        var options = Options()
        var reader = BenchmarkArguments(arguments)
        while let argument = reader.next() {
            switch argument {
            case "--rounds": options.rounds = try reader.positiveInteger(after: argument)
            case "--iterations": options.iterations = try reader.positiveInteger(after: argument)
            case "--no-peer": options.peer = false
            case "--breakdown": options.breakdown = true
            case "--threads": options.threads = try reader.threadCounts(after: argument)
            default: throw BenchmarkError("unknown option \(argument); see the header of LayerBenchmark.swift", usage: true)
            }
        }
        return options
    }

    // MARK: - The measured computations (same shapes and semantics as the peer)

    struct Parameters {
        var values: [String: Tensor] = [:]
        subscript(_ name: String) -> Tensor { values[name]! }
    }

    static func linearParameters() -> Parameters {
        var generator = SplitMix64(seed: 1)
        var p = Parameters()
        p.values["x"] = Tensor(randomNormal: [rows, hidden], generator: &generator)
        p.values["weight"] = Tensor(randomNormal: [mlp, hidden], standardDeviation: 1 / Float(hidden).squareRoot(), generator: &generator)
        p.values["bias"] = Tensor(randomNormal: [mlp], standardDeviation: 0.1, generator: &generator)
        return p
    }

    static func linearForward(_ p: Parameters) -> Tensor {
        p["x"].linear(weight: p["weight"], bias: p["bias"])
    }

    static func blockParameters() -> Parameters {
        var generator = SplitMix64(seed: 2)
        var p = Parameters()
        p.values["x"] = Tensor(randomNormal: [1, length, hidden], generator: &generator)
        for (name, outFeatures, inFeatures) in [("q", hidden, hidden), ("k", hidden, hidden), ("v", hidden, hidden),
                                                ("o", hidden, hidden), ("fc1", mlp, hidden), ("fc2", hidden, mlp)] {
            p.values[name + "_weight"] = Tensor(randomNormal: [outFeatures, inFeatures],
                                                standardDeviation: 1 / Float(inFeatures).squareRoot(), generator: &generator)
            p.values[name + "_bias"] = Tensor(randomNormal: [outFeatures], standardDeviation: 0.1, generator: &generator)
        }
        for name in ["ln1", "ln2"] {
            p.values[name + "_weight"] = Tensor(randomNormal: [hidden], mean: 1, standardDeviation: 0.1, generator: &generator)
            p.values[name + "_bias"] = Tensor(randomNormal: [hidden], standardDeviation: 0.1, generator: &generator)
        }
        return p
    }

    /// A pre-norm ViT block: LayerNorm, multi-head attention with biased projections, residual,
    /// LayerNorm, GELU (tanh) MLP, residual.
    static func blockForward(_ p: Parameters) -> Tensor {
        let x = p["x"]
        let batch = x.shape[0], depth = hidden / heads
        func splitHeads(_ t: Tensor) -> Tensor { t.reshaped([batch, length, heads, depth]).transposed(1, 2) }
        var h = x.layerNorm(weight: p["ln1_weight"], bias: p["ln1_bias"], epsilon: 1e-6)
        let q = splitHeads(h.linear(weight: p["q_weight"], bias: p["q_bias"]))
        let k = splitHeads(h.linear(weight: p["k_weight"], bias: p["k_bias"]))
        let v = splitHeads(h.linear(weight: p["v_weight"], bias: p["v_bias"]))
        let attention = Tensor.scaledDotProductAttention(query: q, key: k, value: v)
        let residual = x + attention.transposed(1, 2).reshaped([batch, length, hidden])
            .linear(weight: p["o_weight"], bias: p["o_bias"])
        h = residual.layerNorm(weight: p["ln2_weight"], bias: p["ln2_bias"], epsilon: 1e-6)
        return residual + h.linear(weight: p["fc1_weight"], bias: p["fc1_bias"]).geluTanh()
            .linear(weight: p["fc2_weight"], bias: p["fc2_bias"])
    }

    /// Queries, keys and values as projections leave them (`[B, T, H·64]`, seeded), for the attention
    /// cases; the forward splits them into heads as the models do (views, no copy).
    static func attentionParameters(batch: Int, length: Int, heads: Int, seed: UInt64) -> Parameters {
        var generator = SplitMix64(seed: seed)
        var p = Parameters()
        for name in ["q", "k", "v"] { p.values[name] = Tensor(randomNormal: [batch, length, heads * 64], generator: &generator) }
        return p
    }

    /// Scaled dot-product attention over `heads` heads of 64 (the fused kernel in inference), as
    /// `F.scaled_dot_product_attention` on the peer's side.
    static func attentionForward(heads: Int, causal: Bool) -> (Parameters) -> Tensor {
        { p in
            let (batch, length) = (p["q"].shape[0], p["q"].shape[1])
            func splitHeads(_ t: Tensor) -> Tensor { t.reshaped([batch, length, heads, 64]).transposed(1, 2) }
            return Tensor.scaledDotProductAttention(query: splitHeads(p["q"]), key: splitHeads(p["k"]), value: splitHeads(p["v"]),
                                                    causal: causal)
        }
    }

    /// One timed run: forward without recording, or forward and backward to every input.
    static func runOnce(_ forward: (Parameters) -> Tensor, _ p: Parameters, backward: Bool) {
        if !backward {
            let out = withoutGradients { forward(p) }
            precondition(out.scalarCount > 0)
            return
        }
        var leaves = Parameters()
        for (name, value) in p.values { leaves.values[name] = value.requiringGradient() }
        let names = leaves.values.keys.sorted()
        let out = forward(leaves)
        let gradients = Tensor.gradients(of: out, withRespectTo: names.map { leaves[$0] })
        precondition(gradients.count == names.count)
    }

    static func time(_ body: () -> Void) -> Double { measure(body).wall }

    /// Wall-clock and process CPU milliseconds of one call.
    static func measure(_ body: () -> Void) -> (wall: Double, cpu: Double) {
        let start = DispatchTime.now().uptimeNanoseconds, cpuStart = QuantizeBenchmark.processCPUSeconds()
        body()
        return (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6,
                (QuantizeBenchmark.processCPUSeconds() - cpuStart) * 1000)
    }

    // MARK: - The run

    static func run(arguments: [String]) throws {
        let options = try parse(arguments)
        if options.breakdown {
            breakdown(threads: options.threads)
            return
        }
        let peer = options.peer ? try TorchPeer() : nil
        defer { peer?.stop() }
        print("craft-bench layers: \(options.rounds) alternating rounds x \(options.iterations) iterations, medians in ms; "
            + "BLAS: \(BLAS.kernels.summary)"
            + (peer.map { ", peer \($0.version)" } ?? ""))
        let cases: [(name: String, label: String, parameters: Parameters, forward: (Parameters) -> Tensor, backward: Bool)] = [
            ("linear", "Linear 512x768->3072", linearParameters(), linearForward, true),
            ("block", "ViT block seq 256, 768, 12 heads, MLP 3072", blockParameters(), blockForward, true),
            // The fused attention kernel alone, in inference: SigLIP ViT-S/16's shape at batch 8, and a
            // Llama prefill's.
            ("attention", "attention 8x196, 6 heads of 64", attentionParameters(batch: 8, length: 196, heads: 6, seed: 4),
             attentionForward(heads: 6, causal: false), false),
            ("causal", "causal attention 512, 12 heads of 64", attentionParameters(batch: 1, length: 512, heads: 12, seed: 5),
             attentionForward(heads: 12, causal: true), false),
        ]
        var table: [[String]] = [["case", "mode", "threads", "craft ms", "torch ms", "craft/torch",
                                  "craft CPU ms", "torch CPU ms", "CPU craft/torch"]]
        var summaries: [String] = []
        for threads in options.threads {
            Tensor.threadCount = threads
            for testCase in cases {
                for backward in testCase.backward ? [false, true] : [false] {
                    let mode = backward ? "forward" + "+backward" : "forward"
                    var craft: [Double] = [], torch: [Double] = [], craftCPU: [Double] = [], torchCPU: [Double] = []
                    runOnce(testCase.forward, testCase.parameters, backward: backward)  // warm-up
                    for _ in 0..<options.rounds {
                        for _ in 0..<options.iterations {
                            let sample = measure { runOnce(testCase.forward, testCase.parameters, backward: backward) }
                            craft.append(sample.wall)
                            craftCPU.append(sample.cpu)
                        }
                        if let peer {
                            let samples = try peer.measure(case: testCase.name, backward: backward, threads: threads,
                                                           iterations: options.iterations)
                            torch += samples.map(\.wall)
                            torchCPU += samples.map(\.cpu)
                        }
                    }
                    let craftMedian = QuantizeBenchmark.median(craft)
                    let torchMedian = torch.isEmpty ? Double.nan : QuantizeBenchmark.median(torch)
                    let craftCPUMedian = QuantizeBenchmark.median(craftCPU)
                    let torchCPUMedian = torchCPU.isEmpty ? Double.nan : QuantizeBenchmark.median(torchCPU)
                    table.append([testCase.label, mode, "\(threads)", String(format: "%.2f", craftMedian),
                                  torch.isEmpty ? "-" : String(format: "%.2f", torchMedian),
                                  torch.isEmpty ? "-" : String(format: "%.2fx", craftMedian / torchMedian),
                                  String(format: "%.2f", craftCPUMedian),
                                  torch.isEmpty ? "-" : String(format: "%.2f", torchCPUMedian),
                                  torch.isEmpty ? "-" : String(format: "%.2fx", craftCPUMedian / torchCPUMedian)])
                    if !torch.isEmpty {
                        summaries.append(String(format: "%@, %@, %d thread%@: %.2fx PyTorch's time", testCase.label, mode, threads,
                                                threads == 1 ? "" : "s", craftMedian / torchMedian))
                    }
                }
            }
        }
        QuantizeBenchmark.printTable(table)
        for summary in summaries { Summary.line("layers", summary) }
    }
}

extension LayerBenchmark {
    /// Median milliseconds of the block's forward pieces, to see where time goes.
    static func breakdown(threads: [Int]) {
        let p = blockParameters()
        var generator = SplitMix64(seed: 3)
        let rows = Tensor(randomNormal: [1, length, hidden], generator: &generator)
        let wide = Tensor(randomNormal: [1, length, mlp], generator: &generator)
        let heads4 = Tensor(randomNormal: [1, heads, length, hidden / heads], generator: &generator)
        let scores = Tensor(randomNormal: [1, heads, length, length], generator: &generator)
        let row4 = heads4.sliced(along: 2, (length - 1)..<length)
        /// `body` on the matrix-product attention path (the fused kernel's comparison).
        func unfused(_ body: () -> Tensor) -> Tensor {
            Tensor.usesFusedAttention = false
            defer { Tensor.usesFusedAttention = true }
            return body()
        }
        let pieces: [(String, () -> Tensor)] = [
            ("layerNorm [256,768]", { rows.layerNorm(weight: p["ln1_weight"], bias: p["ln1_bias"], epsilon: 1e-6) }),
            ("linear 768->768", { rows.linear(weight: p["q_weight"], bias: p["q_bias"]) }),
            ("linear 768->3072", { rows.linear(weight: p["fc1_weight"], bias: p["fc1_bias"]) }),
            ("linear 3072->768", { wide.linear(weight: p["fc2_weight"], bias: p["fc2_bias"]) }),
            ("geluTanh [256,3072]", { wide.geluTanh() }),
            ("gelu [256,3072]", { wide.gelu() }),
            ("exp [256,3072]", { wide.exp() }),
            ("tanh (libm) [256,3072]", { wide.tanh() }),
            ("scaled [256,3072]", { wide.scaled(by: 0.5) }),
            ("add [256,3072]", { wide + wide }),
            ("softmax [12,256,256]", { scores.softmax() }),
            ("q·kᵀ 12 heads", { heads4.matmul(heads4.transposed()) }),
            ("scaled q", { heads4.scaled(by: 0.125) }),
            ("softmax(q·kᵀ)", { heads4.matmul(heads4.transposed()).softmax() }),
            ("scores·v", { scores.matmul(heads4) }),
            ("attention 12 heads", { Tensor.scaledDotProductAttention(query: heads4, key: heads4, value: heads4) }),
            ("attention 12 heads, unfused", { unfused { Tensor.scaledDotProductAttention(query: heads4, key: heads4, value: heads4) } }),
            ("causal attention 12 heads", { Tensor.scaledDotProductAttention(query: heads4, key: heads4, value: heads4, causal: true) }),
            ("causal attention 12 heads, unfused", {
                unfused { Tensor.scaledDotProductAttention(query: heads4, key: heads4, value: heads4, causal: true) }
            }),
            ("decode row, 12 heads", { Tensor.scaledDotProductAttention(query: row4, key: heads4, value: heads4) }),
            ("decode row, 12 heads, unfused", { unfused { Tensor.scaledDotProductAttention(query: row4, key: heads4, value: heads4) } }),
            ("merge heads copy", { heads4.transposed(1, 2).reshaped([1, length, hidden]) }),
            ("whole block", { blockForward(p) }),
        ]
        for threadCount in threads {
            Tensor.threadCount = threadCount
            print("threads \(threadCount)")
            for (name, body) in pieces {
                var times: [Double] = []
                for _ in 0..<7 { times.append(time { _ = withoutGradients { body() } }) }
                print("  " + name.padding(toLength: 26, withPad: " ", startingAt: 0) + String(format: "%8.2f ms", QuantizeBenchmark.median(times)))
            }
        }
    }
}

/// The PyTorch peer process, kept warm for the whole run.
final class TorchPeer {
    let process = Process()
    let input = Pipe(), output = Pipe()
    var buffer = Data()
    private(set) var version = ""

    /// Starts `Benchmarks/peers/<script>` with `arguments` and waits for its `ready` line.
    init(script name: String = "torch_layers.py", arguments: [String] = []) throws {
        let python = peerPython
        let script = peerScript(name)
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script] + arguments
        process.standardInput = input
        process.standardOutput = output
        do { try process.run() } catch {
            throw BenchmarkError("could not start the PyTorch peer (\(python) \(script)): \(error); set CRAFT_PYTHON or pass --no-peer")
        }
        let greeting = try readLine()
        guard greeting.hasPrefix("ready") else {
            throw BenchmarkError("the PyTorch peer did not start (said \(greeting)); set CRAFT_PYTHON to a Python with torch or pass --no-peer")
        }
        version = String(greeting.dropFirst("ready ".count))
    }

    /// Per-iteration wall-clock and CPU milliseconds measured by the peer.
    func measure(case name: String, backward: Bool, threads: Int, iterations: Int) throws -> [(wall: Double, cpu: Double)] {
        try measure(request: "\(name) \(backward ? "backward" : "forward") \(threads) \(iterations)", iterations: iterations)
    }

    /// Sends one timing request line and reads its `wall:cpu` reply of `iterations` samples.
    func measure(request: String, iterations: Int) throws -> [(wall: Double, cpu: Double)] {
        input.fileHandleForWriting.write(Data((request + "\n").utf8))
        let line = try readLine()
        let times = line.split(separator: " ").compactMap { pair -> (wall: Double, cpu: Double)? in
            let parts = pair.split(separator: ":")
            guard parts.count == 2, let wall = Double(parts[0]), let cpu = Double(parts[1]) else { return nil }
            return (wall, cpu)
        }
        guard times.count == iterations else { throw BenchmarkError("the PyTorch peer answered \(line)") }
        return times
    }

    func readLine() throws -> String {
        while true {
            if let newline = buffer.firstIndex(of: 10) {
                let line = String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self)
                buffer = Data(buffer[(newline + 1)...])
                return line
            }
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { throw BenchmarkError("the PyTorch peer exited early") }
            buffer.append(chunk)
        }
    }

    func stop() {
        input.fileHandleForWriting.write(Data("quit\n".utf8))
        process.waitUntilExit()
    }
}
