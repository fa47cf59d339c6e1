// `craft-bench encoder`: a ViT-S/16-sized SigLIP vision tower (hidden 384, 12 layers, 6 heads, MLP
// 1536, 224 px, patch 16, with the attention-pooling head) forward on 8 images, CraftModels'
// SiglipVisionModel against transformers' SiglipVisionModel on PyTorch CPU, on the same weights
// (one safetensors directory both load), same thread counts, alternating rounds, medians.
// Results and the exact command: docs/benchmarks.md ("Encoder forward").
//
//   craft-bench encoder [--threads 1,2] [--rounds 3] [--iterations 2] [--no-peer] [--unfused-attention] [--models DIR]
// DIR (default $TMPDIR/craft-bench-models) is made once by Benchmarks/peers/torch_models.py.
import CraftModels
import Foundation
import TensorCore

enum EncoderBenchmark {
    static func run(arguments: [String]) throws {
        let options = try ModelBenchmark.parse(arguments, usage: "EncoderBenchmark.swift")
        try ModelBenchmark.prepareModels(in: options.models)
        let directory = URL(fileURLWithPath: options.models)
        let model = try SiglipVisionModel(directory: directory.appendingPathComponent("encoder"))
        let inputs = try ModelBenchmark.Tensors(options.models, "inputs.safetensors")
        let reference = try ModelBenchmark.Tensors(options.models, "reference.safetensors")
        let pixels = try inputs.tensor("pixels")

        // Agreement with transformers on the same weights and pixels (its outputs on one thread).
        Tensor.threadCount = 1
        let output = try withoutGradients { try model(pixelValues: pixels) }
        let hiddenDifference = ModelBenchmark.relativeDifference(output.lastHiddenState, try reference.tensor("encoder_last_hidden_state"))
        let pooledDifference = output.poolerOutput.map { pooled in
            (try? reference.tensor("encoder_pooler_output")).map { ModelBenchmark.relativeDifference(pooled, $0) } ?? .nan
        } ?? .nan
        print(String(format: "agreement with transformers: last_hidden_state max |diff| / max |ref| = %.2e, pooler_output %.2e",
                     hiddenDifference, pooledDifference))
        guard hiddenDifference < 1e-3, pooledDifference < 1e-3 else {
            throw BenchmarkError("Craft's SigLIP tower disagrees with transformers on the benchmark weights (relative difference \(hiddenDifference)); the timing would compare different computations")
        }

        let peer = options.peer ? try TorchPeer(script: "torch_models.py", arguments: ["serve", options.models]) : nil
        defer { peer?.stop() }
        ModelBenchmark.header("encoder", options: options, peer: peer)
        var table = [ModelBenchmark.tableHeader]
        for threads in options.threads {
            Tensor.threadCount = threads
            let load = ModelBenchmark.loadAverage()
            let (craft, torch) = try ModelBenchmark.alternate(
                rounds: options.rounds, iterations: options.iterations, threads: threads, peer: peer, peerCase: "encoder"
            ) {
                let out = try withoutGradients { try model(pixelValues: pixels) }
                precondition(out.lastHiddenState.shape == [8, 196, 384])
            }
            table.append(ModelBenchmark.row("SigLIP ViT-S/16 forward, batch 8", threads: threads, craft, torch,
                                            load: load + " → " + ModelBenchmark.loadAverage()))
        }
        QuantizeBenchmark.printTable(table)
        let craftMemory = ModelBenchmark.memoryMiB()
        var memoryLine = String(format: "peak resident memory: Craft %.0f MiB (now %.0f MiB)", craftMemory.peak, craftMemory.resident)
        if let peer {
            let torchMemory = try ModelBenchmark.peerMemoryMiB(peer)
            memoryLine += String(format: ", torch %.0f MiB (now %.0f MiB)", torchMemory.peak, torchMemory.resident)
        }
        print(memoryLine)
    }
}
