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

/// Two computations of the same loss that differ only in summation order: the losses within 10⁻⁶
/// relative, every gradient within 10⁻⁵ of the largest gradient (a gradient that is zero up to
/// rounding, such as the keys' bias, is judged against that scale, not its own).
func expectAgreementToRounding(_ loss: Float, _ gradients: [String: Tensor], _ otherLoss: Float, _ otherGradients: [String: Tensor],
                               sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(abs(loss - otherLoss) <= 1e-6 * abs(loss), sourceLocation: sourceLocation)
    #expect(Set(gradients.keys) == Set(otherGradients.keys) && !gradients.isEmpty, sourceLocation: sourceLocation)
    let scale = gradients.values.flatMap(\.scalars).map(abs).max() ?? 0
    #expect(scale > 0, sourceLocation: sourceLocation)
    for (name, gradient) in gradients {
        let difference = zip(gradient.scalars, otherGradients[name]?.scalars ?? []).map { abs($0 - $1) }.max() ?? .infinity
        #expect(difference <= 1e-5 * scale, "\(name): \(difference) against \(scale)", sourceLocation: sourceLocation)
    }
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

    /// The SigLIP test tower on the test codebook, and the Llama surrogate reading that codebook.
    func towerAndSurrogate() throws -> (encoder: SiglipTrainableEncoder, surrogate: LanguageBackendSurrogate) {
        let codebook = try SiglipEncoderTests.codebook()
        return (try SiglipTrainableEncoder(tower: SiglipEncoderTests.tower(seed: 3), codebook: codebook),
                LanguageBackendSurrogate(backend: try backend(codebook: codebook), maximumAnswerTokens: 3))
    }

    @Test("the backend surrogate scores the answer segment and its loss reaches the SigLIP tower")
    func backendSurrogateScoresAnswers() throws {
        let (encoder, surrogate) = try towerAndSurrogate()
        var generator = SplitMix64(seed: 5)
        let leaves = encoder.parameters.requiringGradients()
        let forward = try encoder.forward(Tensor(randomNormal: [1, 3, 8, 8], generator: &generator), parameters: leaves)
        let visual = forward.quantization.quantized.squeezed(0)
        let sequence = try surrogate.score(visual: visual, prompt: "a the", answer: "codebook")
        // prefix [1], 4 visual vectors, 2 prompt tokens, then the answer and the end-of-sequence token
        // the backend was trained to emit after it (L_SAL scores both).
        // Only the rows of positions 6, 7 and 8 (the one before the answer to the end) are computed.
        #expect(sequence.answerStart == 7 && sequence.answerTokens == [18, 2])
        #expect(sequence.firstPosition == 6 && sequence.logits.shape[0] == 3 && sequence.length == 9)
        #expect(sequence.shiftedLabels == [18, 2])
        let loss = try answerCrossEntropy([sequence])
        let gradient = leaves.gradients(of: loss)["embeddings.patch_embedding.weight"]!
        #expect(gradient.scalars.contains { $0 != 0 })
        let answer = try surrogate.answer(visual: forward.quantization.codeVectors.squeezed(0), prompt: "a the")
        #expect(try surrogate.backend.tokenize(answer).count <= 3)
    }

    @Test("scoring only the answer's rows gives the whole prompt's loss and gradients (to float32 rounding)")
    func answerRowsMatchWholePrompt() throws {
        let (encoder, surrogate) = try towerAndSurrogate()
        let backend = try #require(surrogate.backend as? DecoderBackend)
        var generator = SplitMix64(seed: 9)
        let pixels = Tensor(randomNormal: [1, 3, 8, 8], generator: &generator)
        let answer: [Int32] = [18, 5, 2]
        func lossAndGradients(answerRowsOnly: Bool) throws -> (loss: Float, rows: Int, gradients: [String: Tensor]) {
            let leaves = encoder.parameters.requiringGradients()
            let visual = try encoder.forward(pixels, parameters: leaves).quantization.quantized.squeezed(0)
            let prompt: [PromptSegment] = [.vectors(visual), .text("a the"), .tokens(answer)]
            let scored = answerRowsOnly ? try backend.answerLogits(for: prompt) : try backend.logits(for: prompt)
            let sequence = AnswerSequence(logits: scored.logits, answerTokens: answer,
                                          answerStart: scored.segmentRanges[2].lowerBound, firstPosition: scored.firstPosition)
            let loss = try answerCrossEntropy([sequence])
            return (loss.scalar, scored.logits.shape[0], leaves.gradients(of: loss).tensors)
        }
        let whole = try lossAndGradients(answerRowsOnly: false), rows = try lossAndGradients(answerRowsOnly: true)
        #expect(whole.rows == 10 && rows.rows == 4)
        // The same sums in another order (a product of 4 rows instead of 10 takes other kernels).
        expectAgreementToRounding(whole.loss, whole.gradients, rows.loss, rows.gradients)
        // The default (every row, then a slice) agrees too, and a first row outside the input is refused.
        var cache = backend.model.makeCache()
        let embeddings = try backend.model.embed(tokens: [1, 5, 6, 7])
        let sliced = try backend.model.logits(embeddings: embeddings, positionIDs: nil, fromRow: 2, cache: &cache)
        var fresh = backend.model.makeCache()
        let all = try backend.model.logits(embeddings: embeddings, positionIDs: nil, cache: &fresh)
        #expect(sliced.shape == [2, all.shape[1]])
        #expect(sliced.scalars.map(\.bitPattern) == all.sliced(along: 0, 2..<4).contiguous().scalars.map(\.bitPattern))
        var another = backend.model.makeCache()
        #expect(throws: ModelError.self) { try backend.model.logits(embeddings: embeddings, positionIDs: nil, fromRow: 4, cache: &another) }
    }

    @Test("a micro-batch scored in one pass of the surrogate agrees with one example at a time")
    func batchScoringMatchesOneAtATime() throws {
        let (encoder, surrogate) = try towerAndSurrogate()
        var generator = SplitMix64(seed: 13)
        let pixels = Tensor(randomNormal: [3, 3, 8, 8], generator: &generator)
        // Prompts and answers of different lengths, so the sequences differ in length.
        let prompts = ["a the", "the", "a a the"], answers = ["codebook", "and codebook", "the"]
        func lossAndGradients(batched: Bool) throws -> (loss: Float, sequences: [AnswerSequence], gradients: [String: Tensor]) {
            let leaves = encoder.parameters.requiringGradients()
            let quantized = try encoder.forward(pixels, parameters: leaves).quantization.quantized
            let visual = (0..<3).map { quantized.sliced(along: 0, $0..<($0 + 1)).squeezed(0) }
            let sequences = batched
                ? try surrogate.score(visual: visual, prompts: prompts, answers: answers)
                : try (0..<3).map { try surrogate.score(visual: visual[$0], prompt: prompts[$0], answer: answers[$0]) }
            let loss = try answerCrossEntropy(sequences)
            return (loss.scalar, sequences, leaves.gradients(of: loss).tensors)
        }
        let single = try lossAndGradients(batched: false), batch = try lossAndGradients(batched: true)
        for (one, other) in zip(single.sequences, batch.sequences) {
            #expect(one.answerTokens == other.answerTokens && one.answerStart == other.answerStart)
            #expect(one.firstPosition == other.firstPosition && one.logits.shape == other.logits.shape)
        }
        expectAgreementToRounding(single.loss, single.gradients, batch.loss, batch.gradients)
        #expect(throws: TrainingError.self) { try surrogate.score(visual: [pixels], prompts: [], answers: []) }
        #expect(try surrogate.score(visual: [], prompts: [], answers: []).isEmpty)
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
