import CraftCore
import Foundation
import SafeTensors
import TensorCore
import Testing
import TestSupport
@testable import CraftModels

@Suite struct LlamaBackendTests {
    struct Setup {
        var model: LlamaModel
        var codebook: Codebook
        var backend: DecoderBackend
    }

    func setup() throws -> Setup {
        let model = try LlamaModel(directory: ModelFixtures.directory("llama_tied"))
        let tokenizerURL = try #require(Bundle.module.url(forResource: "wordlevel.tokenizer", withExtension: "json", subdirectory: "Fixtures/tokenizers"))
        let tokenizer = try Tokenizer(contentsOf: tokenizerURL)
        var generator = TensorCore.SplitMix64(seed: 7)
        let codebook = try Codebook(values: Tensor(randomNormal: [16, 6], generator: &generator).scalars, entries: 16, dimension: 6, metric: .l2)
        let weight = Tensor(randomNormal: [32, 6], standardDeviation: 0.4, generator: &generator)
        let bias = Tensor(randomNormal: [32], standardDeviation: 0.1, generator: &generator)
        let backend = try DecoderBackend(model: model, tokenizer: tokenizer, codebook: codebook, projectorWeight: weight,
                                         projectorBias: bias, contextLength: 48, prefixTokens: [1])
        return Setup(model: model, codebook: codebook, backend: backend)
    }

    @Test func promptSegmentsBecomeEmbeddingsInOrder() throws {
        let s = try setup()
        let text = try s.backend.tokenize("a the codebook")
        #expect(!text.isEmpty && text.allSatisfy { $0 < 128 })
        let codes = IndexTensor([3, 9, 9], shape: [3, 1])
        let visual = try VisualTokens(codebookHash: s.codebook.hash, grid: (rows: 2, columns: 2), codes: codes,
                                      positions: [.init(row: 0, column: 0), .init(row: 0, column: 1), .init(row: 1, column: 1)],
                                      residualNorms: [0, 0, 0])
        let result = try s.backend.logits(for: [.visual(visual), .text("a the codebook"), .tokens([5, 6])])
        #expect(result.segmentRanges == [1..<4, 4..<(4 + text.count), (4 + text.count)..<(6 + text.count)])
        // The same sequence composed by hand: prefix, projected codebook vectors, text ids, token ids.
        let projected = try s.codebook.embed(codes).linear(weight: s.backend.projectorWeight, bias: s.backend.projectorBias)
        let embeddings = Tensor.concatenated([
            try s.model.embed(tokens: [1]), projected, try s.model.embed(tokens: text.map { Int($0) }), try s.model.embed(tokens: [5, 6]),
        ], along: 0)
        expectClose(result.logits, try s.model.logits(embeddings: embeddings), relative: 1e-6, absolute: 1e-6, "backend logits")
    }

    @Test func gradientReachesCodebookSpaceVectorsThroughTheProjector() throws {
        let s = try setup()
        var generator = TensorCore.SplitMix64(seed: 3)
        let vectors = Tensor(randomNormal: [4, 6], generator: &generator).requiringGradient()
        let result = try s.backend.logits(for: [.vectors(vectors), .tokens([5, 6, 7])])
        let targets = IndexTensor([Int32](repeating: 9, count: result.logits.shape[0]))
        let loss = try Tensor.crossEntropy(logits: result.logits, targets: targets)
        let gradient = loss.gradients(withRespectTo: [vectors])[0]
        // Chain rule by hand: d loss / d embeddings at the vector rows, times the projector weight.
        let embeddings = Tensor.concatenated([
            try s.model.embed(tokens: [1]), try s.backend.project(vectors.detached()), try s.model.embed(tokens: [5, 6, 7]),
        ], along: 0).requiringGradient()
        let loss2 = try Tensor.crossEntropy(logits: try s.model.logits(embeddings: embeddings), targets: targets)
        let embeddingGradient = loss2.gradients(withRespectTo: [embeddings])[0].sliced(along: 0, 1..<5)
        expectClose(gradient, embeddingGradient.matmul(s.backend.projectorWeight), relative: 1e-4, absolute: 1e-6, "vector gradient")
        #expect(gradient.scalars.contains { $0 != 0 })
    }

    @Test func greedyGenerationMatchesTheDecoder() throws {
        let s = try setup()
        let answer = try s.backend.generate([.tokens([5, 17, 99])], options: GenerationOptions(maximumNewTokens: 5))
        let expected = try generate(s.model, prompt: [1, 5, 17, 99], parameters: .init(maxNewTokens: 5))
        #expect(answer.tokens.map { Int($0) } == expected)
        #expect(answer.finishReason == .length)
        let stopped = try DecoderBackend(model: s.model, tokenizer: s.backend.tokenizer, codebook: s.codebook,
                                         projectorWeight: s.backend.projectorWeight, contextLength: 48, prefixTokens: [1],
                                         endOfSequenceTokens: [expected[2]])
        let short = try stopped.generate([.tokens([5, 17, 99])], options: GenerationOptions(maximumNewTokens: 5))
        let firstStop = try #require(expected.firstIndex(of: expected[2]))
        #expect(short.finishReason == .endOfSequence && short.tokens.map { Int($0) } == Array(expected[..<firstStop]))
    }

    /// Answers generated together equal the ones generated alone, whatever ends each sequence: the
    /// length, an end-of-sequence token, a stop sequence or a full context.
    @Test func batchGenerationEqualsGenerationAlone() throws {
        let s = try setup()
        let expected = try generate(s.model, prompt: [1, 5, 17, 99], parameters: .init(maxNewTokens: 5))
        let backend = try DecoderBackend(model: s.model, tokenizer: s.backend.tokenizer, codebook: s.codebook,
                                         projectorWeight: s.backend.projectorWeight, contextLength: 20, prefixTokens: [1],
                                         endOfSequenceTokens: [expected[2]])
        let codes = IndexTensor([3, 9, 9, 1], shape: [4, 1])
        let visual = try VisualTokens(codebookHash: s.codebook.hash, grid: (rows: 2, columns: 2), codes: codes,
                                      positions: (0..<4).map { .init(row: $0 / 2, column: $0 % 2) }, residualNorms: [0, 0, 0, 0])
        let prompts: [[PromptSegment]] = [
            [.tokens([5, 17, 99])], [.visual(visual), .text("a the codebook")], [.tokens([8])],
            [.tokens(Array(repeating: 7, count: 17))],  // fills the 20-position context
            [.visual(visual), .tokens([4, 4, 4, 4, 4, 4, 4, 4, 4, 4])], [.text("the")], [.tokens([60, 61])], [.tokens([2])], [.tokens([3, 3])],
        ]
        for options in [GenerationOptions(maximumNewTokens: 6), GenerationOptions(maximumNewTokens: 6, stopSequences: ["the"]),
                        GenerationOptions(maximumNewTokens: 4, temperature: 0.7, topK: 10, seed: 9)] {
            let together = try backend.generate(batch: prompts, options: options)
            let alone = try prompts.map { try backend.generate($0, options: options) }
            #expect(together.map(\.tokens) == alone.map(\.tokens) && together.map(\.text) == alone.map(\.text))
            #expect(together.map(\.finishReason) == alone.map(\.finishReason))
        }
        let reasons = Set(try backend.generate(batch: prompts, options: GenerationOptions(maximumNewTokens: 6)).map(\.finishReason))
        #expect(reasons.contains(.endOfSequence) && reasons.contains(.contextFull), "\(reasons)")
        #expect(try backend.generate(batch: [], options: GenerationOptions()).isEmpty)
    }

    /// Continuous batching: sequences with their own options join a running batch at different
    /// steps and one leaves mid-way; each finished one has exactly the tokens it gets alone.
    @Test func sequencesJoiningARunningBatchGetTheirAnswersAlone() throws {
        let s = try setup()
        let expected = try generate(s.model, prompt: [1, 5, 17, 99], parameters: .init(maxNewTokens: 5))
        let backend = try DecoderBackend(model: s.model, tokenizer: s.backend.tokenizer, codebook: s.codebook,
                                         projectorWeight: s.backend.projectorWeight, contextLength: 24, prefixTokens: [1],
                                         endOfSequenceTokens: [expected[3]])
        let requests: [DecodingRequest] = [
            DecodingRequest(id: 10, prompt: [.tokens([5, 17, 99])], options: GenerationOptions(maximumNewTokens: 7)),
            DecodingRequest(id: 11, prompt: [.text("the codebook a")], options: GenerationOptions(maximumNewTokens: 5)),
            DecodingRequest(id: 12, prompt: [.tokens([8, 9])], options: GenerationOptions(maximumNewTokens: 6, temperature: 0.8, topK: 12, seed: 4)),
            DecodingRequest(id: 13, prompt: [.tokens(Array(repeating: 7, count: 19))], options: GenerationOptions(maximumNewTokens: 9)),
            DecodingRequest(id: 14, prompt: [.tokens([60])], options: GenerationOptions(maximumNewTokens: 8, stopSequences: ["the"])),
            DecodingRequest(id: 15, prompt: [.tokens([3, 3, 3])], options: GenerationOptions(maximumNewTokens: 8)),
            DecodingRequest(id: 16, prompt: [.tokens([2])], options: GenerationOptions(maximumNewTokens: 0)),
        ]
        var batch = backend.makeDecodingBatch()
        var results: [Int: GeneratedText] = [:]
        var streamed: [Int: [Int32]] = [:]
        func record(_ steps: [DecodingStep]) {
            for step in steps {
                if let token = step.token { streamed[step.id, default: []].append(token) }
                if let finished = step.finished { results[step.id] = finished }
            }
        }
        // Two join at once, one per step after that; 15 leaves after its second step.
        record(try batch.join(Array(requests[0..<2])))
        for (index, request) in requests[2...].enumerated() {
            record(try batch.step())
            record(try batch.join([request]))
            if index == 4 { batch.leave(15) }
        }
        #expect(!batch.activeIDs.contains(15))
        while !batch.isEmpty { record(try batch.step()) }
        #expect(throws: ModelError.self) { _ = try batch.join([requests[0], requests[0]]) }
        for request in requests where request.id != 15 {
            let alone = try backend.generate(request.prompt, options: request.options)
            let together = try #require(results[request.id])
            #expect(together == alone, "sequence \(request.id)")
            #expect(streamed[request.id, default: []] == alone.tokens, "sequence \(request.id) streamed")
        }
        #expect(results[15] == nil)
        #expect((results[13]?.tokens.count ?? .max) <= 4, "1 + 19 prompt positions leave 4 of the 24-position context")
        #expect(results[16]?.finishReason == .length && results[16]?.tokens == [])
    }

    @Test func refusesAnotherCodebookAndOverlongPrompts() throws {
        let s = try setup()
        let foreign = try VisualTokens(codebookHash: "sha256:" + String(repeating: "0", count: 64), grid: (rows: 1, columns: 1),
                                       codes: IndexTensor([0], shape: [1, 1]), positions: [.init(row: 0, column: 0)], residualNorms: [0])
        #expect(throws: ModelError.self) { _ = try s.backend.logits(for: [.visual(foreign)]) }
        #expect(throws: ModelError.self) { _ = try s.backend.logits(for: [.tokens([Int32](repeating: 5, count: 48))]) }
        #expect(throws: ModelError.self) { _ = try s.backend.logits(for: [.vectors(Tensor.zeros([2, 5]))]) }
        #expect(throws: ModelError.self) {
            _ = try DecoderBackend(model: s.model, tokenizer: s.backend.tokenizer, codebook: s.codebook,
                                   projectorWeight: Tensor.zeros([6, 32]), contextLength: 48)
        }
    }

    @Test("an mlp2x_gelu projector (LLaVA/VILA mm_projector) projects and back-propagates as torch does")
    func mlpProjectorMatchesTorch() throws {
        let model = try LlamaModel(directory: ModelFixtures.directory("llama_tied"))
        let tokenizerURL = try #require(Bundle.module.url(forResource: "wordlevel.tokenizer", withExtension: "json", subdirectory: "Fixtures/tokenizers"))
        let weights = try SafeTensorsFile(contentsOf: ModelFixtures.directory("mlp2x_gelu_projector.safetensors"))
        let reference = try ModelFixtures.reference("mlp2x_gelu_projector")
        var generator = TensorCore.SplitMix64(seed: 3)
        let codebook = try Codebook(values: Tensor(randomNormal: [16, 32], generator: &generator).scalars, entries: 16, dimension: 32, metric: .l2)
        let backend = try DecoderBackend(
            model: model, tokenizer: try Tokenizer(contentsOf: tokenizerURL), codebook: codebook,
            projectorWeight: try weights.tensor("model.mm_projector.0.weight"), projectorBias: try weights.tensor("model.mm_projector.0.bias"),
            mlpOutput: ProjectorLayer(weight: try weights.tensor("model.mm_projector.2.weight"), bias: try weights.tensor("model.mm_projector.2.bias")),
            contextLength: 48)
        let vectors = try reference.tensor("vectors").requiringGradient()
        let output = try backend.project(vectors)
        expectClose(output, try reference.tensor("output"), "mlp2x_gelu output")
        let loss = (output * (try reference.tensor("upstream"))).sum()
        let gradient = loss.gradients(withRespectTo: [vectors])[0]
        expectClose(gradient, try reference.tensor("vectors_gradient"), relative: 1e-4, absolute: 1e-5, "mlp2x_gelu input gradient")

        // A second layer of the wrong shape is refused.
        #expect(throws: ModelError.self) {
            _ = try DecoderBackend(model: model, tokenizer: try Tokenizer(contentsOf: tokenizerURL), codebook: codebook,
                                   projectorWeight: try weights.tensor("model.mm_projector.0.weight"),
                                   mlpOutput: ProjectorLayer(weight: Tensor.zeros([32, 31])), contextLength: 48)
        }
    }
}
