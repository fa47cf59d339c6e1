// What the model benchmarks (`encoder`, `llama`, `train-step`) share: their options, the model files
// both sides load (written once by the PyTorch peer, Benchmarks/peers/torch_models.py), the alternating
// timing loop against the warm peer, agreement checks, memory readings and the table.
import CraftCore
import Foundation
import SafeTensors
import TensorCore

enum ModelBenchmark {
    struct Options {
        var threads = [1, 2]
        var rounds = 3
        var iterations = 2
        var peer = true
        /// Whether attention runs the fused kernel (`--unfused-attention` measures the matrix-product path).
        var fusedAttention = true
        /// Whether attention with gradients recomputes its scores in the backward pass
        /// (`--keep-attention` keeps them, as before activation checkpointing).
        var recomputesAttention = true
        /// Where the models and inputs live; made by the peer when missing.
        var models = FileManager.default.temporaryDirectory.appendingPathComponent("craft-bench-models").path
    }

    static func parse(_ arguments: [String], defaults: Options = Options(), usage: String) throws -> Options {
        var options = defaults
        var reader = BenchmarkArguments(arguments)
        while let argument = reader.next() {
            switch argument {
            case "--rounds": options.rounds = try reader.positiveInteger(after: argument)
            case "--iterations": options.iterations = try reader.positiveInteger(after: argument)
            case "--threads": options.threads = try reader.threadCounts(after: argument)
            case "--no-peer": options.peer = false
            case "--unfused-attention": options.fusedAttention = false
            case "--keep-attention": options.recomputesAttention = false
            case "--models":
                guard let path = reader.next(), !path.isEmpty else { throw BenchmarkError("--models needs a directory", usage: true) }
                options.models = path
            default: throw BenchmarkError("unknown option \(argument); see the header of \(usage)", usage: true)
            }
        }
        Tensor.usesFusedAttention = options.fusedAttention
        Tensor.recomputesAttentionInBackward = options.recomputesAttention
        return options
    }

    // MARK: - Model files

    /// Makes the models, inputs and reference outputs in `directory` unless they are there already
    /// (`torch_models.py make`, seeded, so every run measures the same weights).
    static func prepareModels(in directory: String) throws {
        let reference = URL(fileURLWithPath: directory).appendingPathComponent("reference.safetensors")
        if FileManager.default.fileExists(atPath: reference.path) { return }
        print("making the benchmark models in \(directory) (once) ...")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: peerPython)
        process.arguments = [peerScript("torch_models.py"), "make", directory]
        do { try process.run() } catch {
            throw BenchmarkError("could not start \(peerPython) to make the benchmark models: \(error); set CRAFT_PYTHON to a Python with torch and transformers")
        }
        process.waitUntilExit()
        guard process.terminationStatus == 0, FileManager.default.fileExists(atPath: reference.path) else {
            throw BenchmarkError("the PyTorch peer could not make the benchmark models in \(directory); set CRAFT_PYTHON to a Python with torch, transformers and safetensors")
        }
    }

    /// The tensors of `inputs.safetensors` or `reference.safetensors` in the models directory.
    struct Tensors {
        let file: SafeTensorsFile
        init(_ directory: String, _ name: String) throws {
            file = try SafeTensorsFile(contentsOf: URL(fileURLWithPath: directory).appendingPathComponent(name))
        }
        func tensor(_ name: String) throws -> Tensor { Tensor(try file.floats(name), shape: try file.info(name).shape) }
        func integers(_ name: String) throws -> [Int] { try file.int64s(name).map { Int($0) } }
    }

    // MARK: - Checks

    /// The largest absolute difference relative to the largest reference magnitude.
    static func relativeDifference(_ value: Tensor, _ reference: Tensor) -> Double {
        precondition(value.shape == reference.shape, "shapes \(value.shape) and \(reference.shape) differ")
        let a = value.scalars, b = reference.scalars
        var difference: Float = 0, scale: Float = 0
        for index in a.indices {
            difference = max(difference, abs(a[index] - b[index]))
            scale = max(scale, abs(b[index]))
        }
        return Double(difference / max(scale, .leastNormalMagnitude))
    }

    // MARK: - Timing

    /// Wall and CPU milliseconds of one run.
    typealias Sample = (wall: Double, cpu: Double)

    /// Runs `craft` and the peer's `peerCase` alternately: each round `iterations` Craft runs then
    /// `iterations` peer runs (one untimed warm-up each side first).
    static func alternate(
        rounds: Int, iterations: Int, threads: Int, peer: TorchPeer?, peerCase: String, craft: () throws -> Void
    ) throws -> (craft: [Sample], torch: [Sample]) {
        var craftSamples: [Sample] = [], torchSamples: [Sample] = []
        try craft()  // warm-up
        for _ in 0..<rounds {
            for _ in 0..<iterations {
                var failure: Error?
                let sample = LayerBenchmark.measure { do { try craft() } catch { failure = error } }
                if let failure { throw failure }
                craftSamples.append(sample)
            }
            if let peer {
                torchSamples += try peer.measure(request: "\(peerCase) \(threads) \(iterations)", iterations: iterations)
            }
        }
        return (craftSamples, torchSamples)
    }

    static func median(_ samples: [Sample], _ key: KeyPath<Sample, Double>) -> Double {
        samples.isEmpty ? .nan : QuantizeBenchmark.median(samples.map { $0[keyPath: key] })
    }

    // MARK: - Machine

    /// The 1-minute load average (`/proc/loadavg`), to quote next to every result.
    static func loadAverage() -> String {
        guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return "?" }
        return text.split(separator: " ").prefix(3).joined(separator: " ")
    }

    /// Peak and current resident memory of this process in MiB (`VmHWM`, `VmRSS` of /proc/self/status).
    static func memoryMiB() -> (peak: Double, resident: Double) {
        var peak = 0.0, resident = 0.0
        if let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) {
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: " ", omittingEmptySubsequences: true)
                guard parts.count >= 2, let kilobytes = Double(parts[1]) else { continue }
                if line.hasPrefix("VmHWM:") { peak = kilobytes / 1024 }
                if line.hasPrefix("VmRSS:") { resident = kilobytes / 1024 }
            }
        }
        return (peak, resident)
    }

    /// The peer's peak and current resident memory in MiB.
    static func peerMemoryMiB(_ peer: TorchPeer) throws -> (peak: Double, resident: Double) {
        peer.input.fileHandleForWriting.write(Data("memory\n".utf8))
        let parts = try peer.readLine().split(separator: " ").compactMap { Double($0) }
        guard parts.count == 2 else { throw BenchmarkError("the PyTorch peer did not report its memory") }
        return (parts[0] / 1024, parts[1] / 1024)
    }

    static func header(_ name: String, options: Options, peer: TorchPeer?) {
        print("craft-bench \(name): \(options.rounds) alternating rounds x \(options.iterations) iterations, medians in ms; "
            + "BLAS: \(BLAS.kernels.summary); Craft kernels: \(CraftKernels.summary); attention: "
            + (Tensor.usesFusedAttention ? "fused (\(Tensor.fusedAttentionKernelName))" : "unfused")
            + (Tensor.recomputesAttentionInBackward ? ", recomputed in backward passes" : ", kept for backward passes")
            + (peer.map { ", peer \($0.version)" } ?? "") + "; load average \(loadAverage())")
    }

    /// One table row comparing medians (wall and CPU) of both sides.
    static func row(_ label: String, threads: Int, _ craft: [Sample], _ torch: [Sample], load: String) -> [String] {
        let craftWall = median(craft, \.wall), torchWall = median(torch, \.wall)
        let craftCPU = median(craft, \.cpu), torchCPU = median(torch, \.cpu)
        if !torch.isEmpty {
            Summary.line(label, String(format: "%d thread%@: %.2fx PyTorch's time (CPU %.2fx)%@", threads, threads == 1 ? "" : "s",
                                       craftWall / torchWall, craftCPU / torchCPU, targets[label].map { " (target \($0))" } ?? ""))
        }
        return [label, "\(threads)", String(format: "%.1f", craftWall), torch.isEmpty ? "-" : String(format: "%.1f", torchWall),
                torch.isEmpty ? "-" : String(format: "%.2fx", craftWall / torchWall), String(format: "%.1f", craftCPU),
                torch.isEmpty ? "-" : String(format: "%.1f", torchCPU),
                torch.isEmpty ? "-" : String(format: "%.2fx", craftCPU / torchCPU), load]
    }

    /// Issue #17's targets for the rows above, by label.
    static let targets = [
        "SigLIP ViT-S/16 forward, batch 8": "<= 0.8x", "prefill 512 tokens": "<= 0.9x",
        "decode 64 tokens after 128": "time <= 0.67x, i.e. >= 1.5x the tokens/s", "CRAFT step fwd+bwd, batch 8": "<= 0.8x",
        "CRAFT step, torch logits_to_keep": "<= 0.8x",
    ]

    static let tableHeader = ["case", "threads", "craft ms", "torch ms", "craft/torch", "craft CPU ms", "torch CPU ms",
                              "CPU craft/torch", "load avg"]
}
