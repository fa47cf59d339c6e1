import CraftCore
import CraftModels
import Foundation
import TensorCore
import TestSupport
import Testing
@testable import CraftTraining

/// The CraftModels fixtures (made by scripts/model_fixtures.py), read in place from the sibling test
/// target's folder rather than copied.
enum ModelFixturePaths {
    static var root: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("CraftModelsTests/Fixtures")
    }
    static func model(_ name: String) -> URL { root.appendingPathComponent("models/\(name)") }
    static var wordLevelTokenizer: URL { root.appendingPathComponent("tokenizers/wordlevel.tokenizer.json") }
}

@Suite("CRAFT with the real runtimes: SigLIP tower, Llama surrogate, SigLIP text tower")
struct RealModelIntegrationTests {
    func backend(codebook: Codebook) throws -> DecoderBackend {
        let model = try LlamaModel(directory: ModelFixturePaths.model("llama_tied"))
        let tokenizer = try Tokenizer(contentsOf: ModelFixturePaths.wordLevelTokenizer)
        var generator = SplitMix64(seed: 21)
        let weight = Tensor(randomNormal: [model.hiddenSize, codebook.dimension], standardDeviation: 0.4, generator: &generator)
        return try DecoderBackend(model: model, tokenizer: tokenizer, codebook: codebook, projectorWeight: weight,
                                  contextLength: 48, prefixTokens: [1], endOfSequenceTokens: [2])
    }

    @Test("the backend surrogate scores the answer segment and its loss reaches the SigLIP tower")
    func backendSurrogateScoresAnswers() throws {
        let codebook = try SiglipEncoderTests.codebook()
        let surrogate = LanguageBackendSurrogate(backend: try backend(codebook: codebook), maximumAnswerTokens: 3)
        let encoder = try SiglipTrainableEncoder(tower: SiglipEncoderTests.tower(seed: 3), codebook: codebook)
        var generator = SplitMix64(seed: 5)
        let leaves = encoder.parameters.requiringGradients()
        let forward = try encoder.forward(Tensor(randomNormal: [1, 3, 8, 8], generator: &generator), parameters: leaves)
        let visual = forward.quantization.quantized.squeezed(0)
        let sequence = try surrogate.score(visual: visual, prompt: "a the", answer: "codebook")
        // prefix [1], 4 visual vectors, 2 prompt tokens, then the answer and the end-of-sequence token
        // the backend was trained to emit after it (L_SAL scores both).
        #expect(sequence.answerStart == 7 && sequence.answerTokens == [18, 2])
        #expect(sequence.shiftedLabels == [ignoreIndex, ignoreIndex, ignoreIndex, ignoreIndex, ignoreIndex, ignoreIndex, 18, 2])
        let loss = try answerCrossEntropy([sequence])
        let gradient = leaves.gradients(of: loss)["embeddings.patch_embedding.weight"]!
        #expect(gradient.scalars.contains { $0 != 0 })
        let answer = try surrogate.answer(visual: forward.quantization.codeVectors.squeezed(0), prompt: "a the")
        #expect(try surrogate.backend.tokenize(answer).count <= 3)
    }

    @Test("a SigLIP tower trains against a frozen Llama surrogate end to end")
    func siglipTrainsAgainstLlama() throws {
        let codebook = try SiglipEncoderTests.codebook()
        let surrogate = LanguageBackendSurrogate(backend: try backend(codebook: codebook), maximumAnswerTokens: 2)
        let encoder = try SiglipTrainableEncoder(tower: SiglipEncoderTests.tower(seed: 3), codebook: codebook)
        let examples = (0..<4).map {
            TrainingExample(imageURL: URL(fileURLWithPath: "/synthetic/\($0)"), imagePath: "\($0)", prompt: "the",
                            answer: $0 % 2 == 0 ? "codebook" : "and", line: $0 + 1)
        }
        var configuration = TrainerConfiguration()
        configuration.objective = .visualQuestionAnswering
        configuration.learningRate = 0.01
        configuration.batchSize = 2
        let inputs: @Sendable (TrainingExample) throws -> Tensor = { example in
            var generator = SplitMix64(seed: UInt64(example.line) * 31)
            return Tensor(randomNormal: [3, 8, 8], generator: &generator)
        }
        var trainer = try Trainer(encoder: encoder, surrogate: surrogate, textEmbedder: nil, inputs: inputs, configuration: configuration)
        var records: [TrainingLogRecord] = []
        let summary = try trainer.train(training: TrainingDataset(examples: examples), validation: TrainingDataset(examples: examples)) {
            records.append($0.record)
        }
        #expect(summary.steps == 2 && summary.validationAccuracies.count == 1)
        let steps = records.filter { $0.event == "step" }
        #expect(steps.count == 2 && steps.allSatisfy { ($0.alignment ?? .nan).isFinite && $0.contrastive == nil })
        #expect(summary.parameters["encoder.layers.0.self_attn.q_proj.weight"]!.scalars
                != encoder.parameters["encoder.layers.0.self_attn.q_proj.weight"]!.scalars)
    }

    @Test("the SigLIP text embedder pads to the tower's length and returns its pooled output")
    func siglipTextEmbedderPads() throws {
        let tower = try SiglipTextModel(directory: ModelFixturePaths.model("siglip_text"))
        let tokenize: @Sendable (String) throws -> [Int] = { text in text.unicodeScalars.map { Int($0.value) % 100 } }
        let embedder = SiglipTextEmbedder(tower: tower, padToken: 1, tokenize: tokenize)
        let texts = ["a photo of a cat", "dog"]
        let embeddings = try embedder.embed(texts)
        let length = tower.configuration.maxPositionEmbeddings
        let padded = try texts.map { text -> [Int] in
            let ids = Array(try tokenize(text).prefix(length))
            return ids + Array(repeating: 1, count: length - ids.count)
        }
        let expected = try tower(tokens: padded).poolerOutput
        #expect(embeddings.shape == expected.shape && embeddings.shape[0] == 2)
        #expect(embeddings.scalars == expected.scalars)
        #expect(!embeddings.requiresGradient)
    }
}
