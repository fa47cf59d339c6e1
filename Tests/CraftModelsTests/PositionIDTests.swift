import CraftCore
import Foundation
import TensorCore
import Testing
import TestSupport
@testable import CraftModels

/// Explicit position ids (docs/token-pruning.md, "Position ids"): pruned visual tokens keeping the ids
/// they had before pruning, in the decoders and in `DecoderBackend`.
@Suite struct PositionIDTests {
    /// Random input embeddings `[count, hidden]`.
    static func embeddings(_ model: any CausalLanguageModel, _ count: Int, seed: UInt64 = 5) -> Tensor {
        var generator = TensorCore.SplitMix64(seed: seed)
        return Tensor(randomNormal: [count, model.hiddenSize], standardDeviation: 0.5, generator: &generator)
    }

    /// Ids 0, 1, then a pruned image (grid indices 1, 3, 4 of 6 at offset 2), then text after the full grid.
    static let gappedIDs = [0, 1, 3, 5, 6, 8, 9, 10]

    @Test(arguments: ["gpt2", "gpt2_bf16"])
    func gpt2LearnedPositionsOfExplicitIDsEqualAHandShiftedInput(name: String) throws {
        // GPT-2 adds wpe[p] to each input row, so ids `p_i` equal the default path (ids 0..<n) on the
        // input `x_i + wpe[p_i] − wpe[i]`.
        let model = try GPT2Model(directory: ModelFixtures.directory(name))
        let x = Self.embeddings(model, Self.gappedIDs.count)
        var cache = model.makeCache()
        let explicit = try withoutGradients { try model.logits(embeddings: x, positionIDs: Self.gappedIDs, cache: &cache) }
        #expect(cache.length == 8 && cache.nextPosition == 11)
        let table = model.positionEmbedding
        let shift = Tensor.concatenated(Self.gappedIDs.enumerated().map { index, id in
            table.sliced(along: 0, id..<(id + 1)) - table.sliced(along: 0, index..<(index + 1))
        }, along: 0)
        let reference = try withoutGradients { try model.logits(embeddings: x + shift) }
        expectClose(explicit, reference, relative: 1e-4, absolute: 1e-5, "\(name) explicit ids")
        // The next token continues at id 11: again the default path on a shifted input.
        let next = Self.embeddings(model, 1, seed: 9)
        let step = try withoutGradients { try model.lastLogits(embeddings: next, cache: &cache) }
        let stepShift = table.sliced(along: 0, 11..<12) - table.sliced(along: 0, 8..<9)
        let whole = try withoutGradients {
            try model.logits(embeddings: Tensor.concatenated([x + shift, next + stepShift], along: 0))
        }
        expectClose(step, whole.sliced(along: 0, 8..<9), relative: 1e-4, absolute: 1e-5, "\(name) step after explicit ids")
    }

    @Test(arguments: ["llama_tied", "qwen2_tied_bf16", "gpt2"])
    func consecutiveExplicitIDsAreTheDefaultPathBitForBit(name: String) throws {
        let model = try BatchedDecodingTests.model(name)
        let x = Self.embeddings(model, 6)
        var cache = model.makeCache()
        let explicit = try withoutGradients { try model.logits(embeddings: x, positionIDs: Array(0..<6), cache: &cache) }
        #expect(explicit.scalars == (try withoutGradients { try model.logits(embeddings: x) }).scalars)
        #expect(cache.nextPosition == cache.length)
    }

    @Test(arguments: ["llama_tied", "qwen2_tied_bf16"])
    func ropeExplicitIDsAreRelativeAndCarryIntoTheCache(name: String) throws {
        let model = try BatchedDecodingTests.model(name)
        let x = Self.embeddings(model, Self.gappedIDs.count)
        func logits(_ ids: [Int]) throws -> Tensor {
            var cache = model.makeCache()
            return try withoutGradients { try model.logits(embeddings: x, positionIDs: ids, cache: &cache) }
        }
        let gapped = try logits(Self.gappedIDs)
        // RoPE sees only differences of ids: shifting every id by 7 changes nothing but rounding.
        expectClose(try logits(Self.gappedIDs.map { $0 + 7 }), gapped, relative: 1e-3, absolute: 1e-4, "\(name) shifted ids")
        // The gaps matter: consecutive ids give other logits.
        let consecutive = try logits(Array(0..<Self.gappedIDs.count))
        #expect(!approximatelyEqual(consecutive.scalars, gapped.scalars, relative: 1e-3, absolute: 1e-4).ok)
        // A prefill with gaps and one cached step equal one prefill of both with the step at id 11.
        var prefill = model.makeCache()
        _ = try withoutGradients { try model.logits(embeddings: x, positionIDs: Self.gappedIDs, cache: &prefill) }
        let next = Self.embeddings(model, 1, seed: 9)
        let step = try withoutGradients { try model.lastLogits(embeddings: next, cache: &prefill) }
        var cache = model.makeCache()
        let whole = try withoutGradients {
            try model.logits(embeddings: Tensor.concatenated([x, next], along: 0), positionIDs: Self.gappedIDs + [11], cache: &cache)
        }
        expectClose(step, whole.sliced(along: 0, 8..<9), relative: 1e-4, absolute: 1e-5, "\(name) step after explicit ids")
    }

    @Test func badExplicitIDsAreTypedErrors() throws {
        let model = try BatchedDecodingTests.model("llama_tied")
        let x = Self.embeddings(model, 3)
        for ids in [[0, 2], [0, 2, 2], [3, 1, 4], [-1, 0, 1], [0, 1, 100_000]] {
            var cache = model.makeCache()
            #expect(throws: ModelError.self, "\(ids)") { try model.logits(embeddings: x, positionIDs: ids, cache: &cache) }
        }
        // After a prefill that ends at id 9, the next call must start at 10 or later.
        var cache = model.makeCache()
        _ = try model.logits(embeddings: x, positionIDs: [0, 4, 9], cache: &cache)
        #expect(throws: ModelError.self) { try model.logits(embeddings: x, positionIDs: [9, 10, 11], cache: &cache) }
        _ = try model.logits(embeddings: x, positionIDs: [12, 13, 14], cache: &cache)
        #expect(cache.length == 6 && cache.nextPosition == 15)
    }

    // MARK: - DecoderBackend

    /// A 2×3 image pruned to grid indices 1, 3 and 4 (kept in order, with their grid positions).
    static func prunedImage(_ codebook: Codebook) throws -> VisualTokens {
        try VisualTokens(
            codebookHash: codebook.hash, grid: (rows: 2, columns: 3), codes: IndexTensor([3, 9, 12], shape: [3, 1]),
            positions: [.init(row: 0, column: 1), .init(row: 1, column: 0), .init(row: 1, column: 1)], residualNorms: [1, 2, 3])
    }

    @Test func backendGivesPrunedVisualTokensTheirOriginalIDs() throws {
        let s = try LlamaBackendTests().setup()
        let image = try Self.prunedImage(s.codebook)
        let text = try s.backend.tokenize("a the codebook")
        let prompt: [PromptSegment] = [.tokens([7]), .visual(image), .text("a the codebook")]
        // By hand: BOS at 0, token 7 at 1, the image from offset 2 (grid indices 1, 3, 4 → 3, 5, 6),
        // the text after the whole 6-token grid: 8, 9, ….
        let ids = [0, 1, 3, 5, 6] + Array(8..<(8 + text.count))
        let (embeddings, ranges, positionIDs) = try s.backend.embeddings(for: prompt, visualPositionIDs: .original)
        #expect(positionIDs == ids && ranges == [1..<2, 2..<5, 5..<(5 + text.count)])
        var cache = s.model.makeCache()
        let reference = try s.model.logits(embeddings: embeddings, positionIDs: ids, cache: &cache)
        let original = try s.backend.logits(for: prompt, visualPositionIDs: .original)
        #expect(original.logits.scalars == reference.scalars && original.segmentRanges == ranges)
        // The default path is unchanged: consecutive ids, the same as before the option existed.
        let consecutive = try s.backend.logits(for: prompt)
        #expect(consecutive.logits.scalars == (try s.model.logits(embeddings: embeddings)).scalars)
        #expect(try s.backend.embeddings(for: prompt).positionIDs == nil)
        #expect(s.backend.supportsOriginalVisualPositionIDs)
    }

    @Test func backendGenerationWithOriginalIDsContinuesAfterTheLastID() throws {
        let s = try LlamaBackendTests().setup()
        let image = try Self.prunedImage(s.codebook)
        let prompt: [PromptSegment] = [.visual(image), .tokens([5, 17])]
        let options = GenerationOptions(maximumNewTokens: 4, visualPositionIDs: .original)
        let answer = try s.backend.generate(prompt, options: options)
        // Greedy decoding by hand with the ids: BOS 0, image 2, 4, 5, tokens 7, 8, then 9, 10, ….
        let (embeddings, _, ids) = try s.backend.embeddings(for: prompt, visualPositionIDs: .original)
        #expect(ids == [0, 2, 4, 5, 7, 8])
        var cache = s.model.makeCache()
        var logits = try withoutGradients { try s.model.logits(embeddings: embeddings, positionIDs: ids, cache: &cache) }
        logits = logits.sliced(along: 0, (logits.shape[0] - 1)..<logits.shape[0])
        var expected: [Int32] = []
        for _ in 0..<4 {
            let row = logits.scalars
            let token = row.indices.max { row[$0] < row[$1] || (row[$0] == row[$1] && $0 > $1) }!
            expected.append(Int32(token))
            logits = try withoutGradients { try s.model.lastLogits(tokens: [token], cache: &cache) }
        }
        #expect(answer.tokens == expected)
        #expect(cache.nextPosition == 13)
        // Generated together, each answer is the one it gets alone.
        let batch = try s.backend.generate(batch: [prompt, prompt], options: options)
        #expect(batch == [answer, answer])
        // Original ids past the context are refused.
        let wide = try VisualTokens(
            codebookHash: s.codebook.hash, grid: (rows: 8, columns: 8), codes: IndexTensor([3], shape: [1, 1]),
            positions: [.init(row: 7, column: 7)], residualNorms: [1])
        #expect(throws: ModelError.self) { try s.backend.logits(for: [.visual(wide), .tokens([5])], visualPositionIDs: .original) }
        #expect(throws: ModelError.self) { try s.backend.generate([.visual(wide), .tokens([5])], options: options) }
        _ = try s.backend.logits(for: [.visual(wide), .tokens([5])])
    }
}
