import Testing
import TensorCore
import TestSupport
@testable import CraftCore

/// The core protocol types: the CodebookSpace conveniences, VisualTokens and RGBImage.
@Suite struct CodebookSpaceTests {
    @Test func tensorQuantizeAndEmbedKeepLeadingDimensions() throws {
        let space: any CodebookSpace = try Codebook(values: [0, 0, 1, 1, 5, 5, 0, 1, 0, 0, 2, 2], entries: 3, dimension: 2, depth: 2, metric: .l2)
        let features = Tensor([0.9, 1.2, 4, 6, 0, 0, 1, 1], shape: [2, 2, 2])
        let (codes, quantized, norms) = try space.quantize(features, threads: 2)
        #expect(codes.shape == [2, 2, 2])
        #expect(quantized.shape == [2, 2, 2] && norms.shape == [2, 2])
        #expect(try space.embed(codes).scalars == quantized.scalars)
        #expect(throws: CraftCoreError.self) { try space.embed(IndexTensor([0, 1, 2], shape: [1, 3])) }
        #expect(throws: CraftCoreError.self) { try space.quantize(Tensor([1, 2, 3], shape: [1, 3])) }
        let other = try Codebook(values: [0, 0, 1, 1, 5, 5, 0, 1, 0, 0, 2, 2], entries: 3, dimension: 2, depth: 2, metric: .cosine)
        #expect(!space.isSameSpace(as: other))
    }

    @Test func visualTokensValidateAndKeepOrderWhenPruned() throws {
        let features = Tensor([0, 1, 2, 3, 4, 5, 6, 7], shape: [4, 2])
        let tokens = try VisualTokens(
            codebookHash: "sha256:x", grid: (rows: 2, columns: 2), codes: IndexTensor([7, 8, 9, 10], shape: [4, 1]),
            positions: [.init(row: 0, column: 0), .init(row: 0, column: 1), .init(row: 1, column: 0), .init(row: 1, column: 1)],
            residualNorms: [0.1, 0.2, 0.3, 0.4], features: features)
        let kept = try tokens.keeping([3, 1, 3])
        #expect(kept.count == 2)
        #expect(kept.codes.scalars == [8, 10])
        #expect(kept.positions == [.init(row: 0, column: 1), .init(row: 1, column: 1)])
        #expect(kept.residualNorms == [0.2, 0.4])
        #expect(kept.features?.scalars == [2, 3, 6, 7])
        #expect(throws: CraftCoreError.self) { try tokens.keeping([4]) }
        #expect(throws: CraftCoreError.self) {
            try VisualTokens(
                codebookHash: "h", grid: (rows: 1, columns: 1), codes: IndexTensor([1, 2], shape: [2, 1]),
                positions: [.init(row: 0, column: 0)], residualNorms: [0])
        }
        #expect(throws: CraftCoreError.self) {
            try VisualTokens(
                codebookHash: "h", grid: (rows: 1, columns: 1), codes: IndexTensor([1], shape: [1, 1]),
                positions: [.init(row: 1, column: 0)], residualNorms: [0])
        }
    }

    @Test func rgbImageChecksItsByteCount() throws {
        let image = try RGBImage(width: 2, height: 1, pixels: [1, 2, 3, 4, 5, 6])
        #expect(image[0, 1] == (4, 5, 6))
        #expect(throws: CraftCoreError.self) { try RGBImage(width: 2, height: 2, pixels: [1, 2, 3]) }
        #expect(throws: CraftCoreError.self) { try RGBImage(width: 0, height: 2, pixels: []) }
    }
}
