// `craft-bench train-step`: one CRAFT training step, forward and backward, Craft against PyTorch CPU on the
// same weights and inputs: the ViT-S/16 SigLIP encoder (every tensor trainable) on 8 images, straight-
// through quantization on a frozen codebook (K 4096 × D 384, commitment loss weight 0.1), a frozen
// linear projector 384 → 768, and the frozen ~110M Llama surrogate fed [196 visual | 8 prompt | 4 answer]
// embeddings per image (the 8 sequences through the Llama together), answer cross-entropy over the logits of
// the answer's rows (the output projection runs over those rows only); gradients for every encoder parameter, no optimizer update
// (Benchmarks/peers/torch_models.py `train_step` is the PyTorch side, with every position's logits and
// with `logits_to_keep`). Peak memory of both sides.
// Results and the exact command: docs/benchmarks.md ("Training step").
//
//   craft-bench train-step [--threads 1,2] [--rounds 3] [--iterations 1] [--no-peer] [--keep-attention] [--models DIR]
import CraftCore
import CraftModels
import CraftTraining
import Foundation
import TensorCore

enum TrainStepBenchmark {
    static let batch = 8, commitmentWeight: Float = 0.1

    struct Step {
        let configuration: SiglipVisionConfiguration
        let encoderWeights: [String: Tensor]
        let codebook: Codebook
        let projectorWeight, projectorBias: Tensor
        let llama: LlamaModel
        let pixels: Tensor
        let prompts, answers: [[Int]]

        /// One forward and backward pass; the loss, the gradients by parameter name and the codes.
        func run(threads: Int) throws -> (loss: Float, gradients: [String: Tensor], codes: [Int32]) {
            let names = encoderWeights.keys.sorted()
            let leaves = Dictionary(uniqueKeysWithValues: names.map { ($0, encoderWeights[$0]!.requiringGradient()) })
            let tower = try SiglipVisionModel(configuration: configuration, weights: leaves)
            let features = try tower(pixelValues: pixels).lastHiddenState                   // [8, 196, 384]
            let quantization = try codebook.straightThrough(features, threads: threads)
            let visual = quantization.quantized.linear(weight: projectorWeight, bias: projectorBias)  // [8, 196, 768]
            // As the training surrogates score a micro-batch (DecoderBackend.answerLogits(forBatch:)): the
            // 8 sequences through the Llama together, then one output projection over the rows that
            // predict the answers (CausalLanguageModel.logits(batch:positionIDs:fromRows:caches:)).
            var inputs: [Tensor] = []
            for index in 0..<batch {
                let text = try llama.embed(tokens: prompts[index] + answers[index])
                inputs.append(Tensor.concatenated([visual.sliced(along: 0, index..<(index + 1)).squeezed(0), text], along: 0))
            }
            let starts = (0..<batch).map { inputs[$0].shape[0] - answers[$0].count }
            var caches = inputs.map { _ in llama.makeCache() }
            let logits = try llama.logits(batch: inputs, positionIDs: inputs.map { _ in nil }, fromRows: starts.map { $0 - 1 }, caches: &caches)
            let sequences = (0..<batch).map {
                AnswerSequence(logits: logits[$0], answerTokens: answers[$0].map { Int32($0) }, answerStart: starts[$0], firstPosition: starts[$0] - 1)
            }
            let loss = try answerCrossEntropy(sequences) + codebook.commitmentLoss(quantization).scaled(by: commitmentWeight)
            let gradients = Tensor.gradients(of: loss, withRespectTo: names.map { leaves[$0]! })
            return (loss.scalar, Dictionary(uniqueKeysWithValues: zip(names, gradients)), quantization.search.codes)
        }
    }

    static func run(arguments: [String]) throws {
        var defaults = ModelBenchmark.Options()
        defaults.iterations = 1
        let options = try ModelBenchmark.parse(arguments, defaults: defaults, usage: "TrainStepBenchmark.swift")
        try ModelBenchmark.prepareModels(in: options.models)
        let directory = URL(fileURLWithPath: options.models)
        let encoder = try SiglipVisionModel(directory: directory.appendingPathComponent("encoder"))
        let llama = try LlamaModel(directory: directory.appendingPathComponent("llama"))
        let inputs = try ModelBenchmark.Tensors(options.models, "inputs.safetensors")
        let reference = try ModelBenchmark.Tensors(options.models, "reference.safetensors")
        let codebookTensor = try inputs.tensor("codebook")
        let prompts = try inputs.integers("prompt"), answers = try inputs.integers("answer")
        let promptLength = prompts.count / batch, answerLength = answers.count / batch
        let step = Step(
            configuration: encoder.configuration, encoderWeights: encoder.parameters,
            codebook: try Codebook(values: codebookTensor.scalars, entries: codebookTensor.shape[0],
                                   dimension: codebookTensor.shape[1], metric: .l2),
            projectorWeight: try inputs.tensor("projector_weight"), projectorBias: try inputs.tensor("projector_bias"),
            llama: llama, pixels: try inputs.tensor("pixels"),
            prompts: (0..<batch).map { Array(prompts[($0 * promptLength)..<(($0 + 1) * promptLength)]) },
            answers: (0..<batch).map { Array(answers[($0 * answerLength)..<(($0 + 1) * answerLength)]) })

        // Agreement with PyTorch (its step on one thread): loss, chosen codes, three gradients.
        Tensor.threadCount = 1
        let checked = try step.run(threads: 1)
        let expectedLoss = try reference.tensor("train_loss").scalars[0]
        let expectedCodes = try reference.integers("train_codes")
        let sameCodes = zip(checked.codes, expectedCodes).filter { Int($0) == $1 }.count
        var agreement = String(format: "agreement with PyTorch: loss %.6f vs %.6f (relative %.1e), codes %d of %d identical",
                               checked.loss, expectedLoss, abs(checked.loss - expectedLoss) / abs(expectedLoss),
                               sameCodes, expectedCodes.count)
        var worstGradient = 0.0
        for name in ["embeddings.patch_embedding.weight", "encoder.layers.0.self_attn.q_proj.weight", "encoder.layers.11.mlp.fc2.bias"] {
            guard let gradient = checked.gradients[name] else { throw BenchmarkError("no gradient for \(name)") }
            let difference = ModelBenchmark.relativeDifference(gradient, try reference.tensor("grad." + name))
            worstGradient = max(worstGradient, difference)
            agreement += String(format: "; grad %@ %.1e", name, difference)
        }
        print(agreement)
        let allCodesAgree = sameCodes == expectedCodes.count
        guard abs(checked.loss - expectedLoss) <= 1e-3 * abs(expectedLoss), !allCodesAgree || worstGradient < 1e-2 else {
            throw BenchmarkError("Craft's CRAFT step disagrees with PyTorch's on the benchmark inputs (loss \(checked.loss) vs \(expectedLoss), gradient difference \(worstGradient)); the timing would compare different computations")
        }

        let peer = options.peer ? try TorchPeer(script: "torch_models.py", arguments: ["serve", options.models]) : nil
        defer { peer?.stop() }
        ModelBenchmark.header("train-step", options: options, peer: peer)
        var table = [ModelBenchmark.tableHeader]
        // Two PyTorch steps: transformers' training forward (logits of every position, as the original
        // CRAFT code and Hugging Face training compute them), and the same step with `logits_to_keep`
        // (the answer's rows only, as Craft does): the second isolates the engines.
        for threads in options.threads {
            Tensor.threadCount = threads
            for (label, peerCase) in [("CRAFT step fwd+bwd, batch 8", "train"), ("CRAFT step, torch logits_to_keep", "train-kept")] {
                let load = ModelBenchmark.loadAverage()
                let (craft, torch) = try ModelBenchmark.alternate(
                    rounds: options.rounds, iterations: options.iterations, threads: threads, peer: peer, peerCase: peerCase
                ) { _ = try step.run(threads: threads) }
                table.append(ModelBenchmark.row(label, threads: threads, craft, torch, load: load + " → " + ModelBenchmark.loadAverage()))
                if peer == nil { break }
            }
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
