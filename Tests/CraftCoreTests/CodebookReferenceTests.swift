import Foundation
import SafeTensors
import Testing
import TestSupport
@testable import CraftCore

/// Opens a fixture made by scripts/codebook_fixtures.py.
func codebookFixture(_ name: String) throws -> SafeTensorsFile {
    let url = try #require(Bundle.module.url(forResource: name, withExtension: "safetensors", subdirectory: "Fixtures"))
    return try SafeTensorsFile(contentsOf: url)
}

/// Nearest-code search against faiss and a float64 NumPy reference (scripts/codebook_fixtures.py).
@Suite struct CodebookReferenceTests {
    @Test func l2MatchesFaissIndexFlatL2() throws {
        let file = try codebookFixture("codebook-faiss")
        let shape = try file.info("l2_codebook").shape
        let codebook = try Codebook(values: file.floats("l2_codebook"), entries: shape[0], dimension: shape[1], metric: .l2)
        let queries = try file.floats("l2_queries")
        let count = queries.count / shape[1]
        let faissIndices = try file.int32s("l2_indices"), faissDistances = try file.floats("l2_distances")
        // Small blocks so the fixture crosses query- and code-block edges (K=300, N=257).
        let result = try codebook.quantize(queries, count: count, threads: 2, blocking: SearchBlocking(queries: 64, codes: 128))
        var compared = 0
        for row in 0..<count {
            let best = faissDistances[2 * row], second = faissDistances[2 * row + 1]
            // Only where float32 can separate the two best codes.
            guard second - best > 1e-4 * max(best, 1) else { continue }
            compared += 1
            #expect(result.codes[row] == faissIndices[2 * row], "row \(row)")
        }
        #expect(compared > count * 9 / 10)
        let bestDistances = (0..<count).map { faissDistances[2 * $0] }
        let check = approximatelyEqual(result.squaredDistances, bestDistances, relative: 1e-4, absolute: 1e-4)
        #expect(check.ok, "\(check.report)")
    }

    @Test func cosineMatchesFaissInnerProductOnNormalisedVectors() throws {
        let file = try codebookFixture("codebook-faiss")
        let shape = try file.info("cos_codebook").shape
        let codebook = try Codebook(values: file.floats("cos_codebook"), entries: shape[0], dimension: shape[1], metric: .cosine)
        let queries = try file.floats("cos_queries")
        let count = queries.count / shape[1]
        let faissIndices = try file.int32s("cos_indices"), similarity = try file.floats("cos_similarity")
        let result = try codebook.quantize(queries, count: count, blocking: SearchBlocking(queries: 100, codes: 64))
        var compared = 0
        for row in 0..<count where similarity[2 * row] - similarity[2 * row + 1] > 1e-5 {
            compared += 1
            #expect(result.codes[row] == faissIndices[2 * row], "row \(row)")
        }
        #expect(compared > count * 9 / 10)
        // For unit vectors ‖q − c‖² = 2 − 2 q·c.
        let expected = (0..<count).map { 2 - 2 * similarity[2 * $0] }
        let check = approximatelyEqual(result.squaredDistances, expected, relative: 1e-4, absolute: 2e-5)
        #expect(check.ok, "\(check.report)")
    }

    @Test func residualLevelsMatchTheFloat64Reference() throws {
        let file = try codebookFixture("codebook-residual")
        let shape = try file.info("codebook").shape  // [depth, K, D]
        let codebook = try Codebook(
            values: file.floats("codebook"), entries: shape[1], dimension: shape[2], depth: shape[0], metric: .l2)
        let queries = try file.floats("queries")
        let count = queries.count / shape[2]
        let codes = try file.int32s("codes"), quantized = try file.floats("quantized")
        let norms = try file.floats("residual_norms"), gaps = try file.floats("min_gap")
        let result = try codebook.quantize(queries, count: count, blocking: SearchBlocking(queries: 32, codes: 16))
        var compared = 0
        for row in 0..<count where gaps[row] > 1e-3 {
            compared += 1
            let range = (row * shape[0])..<((row + 1) * shape[0])
            #expect(Array(result.codes[range]) == Array(codes[range]), "row \(row)")
            let rowRange = (row * shape[2])..<((row + 1) * shape[2])
            #expect(approximatelyEqual(Array(result.quantized[rowRange]), Array(quantized[rowRange]), relative: 1e-5, absolute: 1e-5).ok)
            #expect(approximatelyEqual([result.residualNorms[row]], [norms[row]], relative: 1e-4, absolute: 1e-5).ok)
        }
        #expect(compared > count * 9 / 10)
    }
}

/// Loading codebooks from safetensors files, including hostile ones.
@Suite struct CodebookLoadingTests {
    func write(_ build: (inout SafeTensorsWriter) throws -> Void) throws -> URL {
        var writer = SafeTensorsWriter()
        try build(&writer)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("codebook-\(UUID().uuidString).safetensors")
        try writer.write(to: url)
        return url
    }

    func expectError(_ code: CraftCoreError.Code, _ body: () throws -> Void) {
        do {
            try body()
            Issue.record("expected \(code)")
        } catch let error as CraftCoreError {
            #expect(error.code == code, "\(error.message)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func loadsRankTwoAndRankThreeTensorsWithTheSameHashAsInMemory() throws {
        let values: [Float] = [1, -0.0, 0.5, -2, 0.25, 3]
        let url = try write { try $0.add("codebook", floats: values, shape: [2, 3]) }
        defer { try? FileManager.default.removeItem(at: url) }
        let loaded = try Codebook(contentsOf: url, metric: .l2)
        #expect(loaded.entries == 2 && loaded.dimension == 3 && loaded.depth == 1)
        #expect(loaded.hash == "sha256:d2b89bb902184a714c975acc296ac2c7a603635b26e38cb0d7a7356acb4b946b")
        let deep = try write { try $0.add("rq", floats: values + values, shape: [2, 1, 6], as: .f16) }
        defer { try? FileManager.default.removeItem(at: deep) }
        let residual = try Codebook(contentsOf: deep, tensorName: "rq", metric: .cosine)
        #expect(residual.depth == 2 && residual.entries == 1 && residual.dimension == 6)
        #expect(residual.hash == (try Codebook(values: values + values, entries: 1, dimension: 6, depth: 2, metric: .cosine)).hash)
    }

    /// RQ-VAE stores each level as `[K + 1, D]` with a padding row last: dropped from every level,
    /// the codebook is the one made from the real rows (same hash), also when shared across levels.
    @Test func dropsThePaddingRowOfEveryLevel() throws {
        let level0: [Float] = [1, 2, 3, 4], level1: [Float] = [5, 6, 7, 8], padding: [Float] = [0, 0]
        let url = try write {
            try $0.add("rq", floats: level0 + padding + level1 + padding, shape: [2, 3, 2])
            try $0.add("shared", floats: level0 + padding, shape: [3, 2])
            try $0.add("single", floats: [1, 2], shape: [1, 2])
        }
        defer { try? FileManager.default.removeItem(at: url) }
        let perLevel = try Codebook(contentsOf: url, tensorName: "rq", metric: .l2, droppingPaddingRow: true)
        #expect(perLevel.depth == 2 && perLevel.entries == 2)
        #expect(perLevel.hash == (try Codebook(values: level0 + level1, entries: 2, dimension: 2, depth: 2, metric: .l2)).hash)
        let shared = try Codebook(contentsOf: url, tensorName: "shared", metric: .l2, sharedDepth: 4, droppingPaddingRow: true)
        #expect(shared.depth == 4 && shared.entries == 2)
        #expect(shared.hash == (try Codebook(values: Codebook.sharedLevels(level0, depth: 4), entries: 2, dimension: 2, depth: 4, metric: .l2)).hash)
        expectError(.malformed) { _ = try Codebook(contentsOf: url, tensorName: "single", metric: .l2, droppingPaddingRow: true) }
    }

    @Test func reportsMissingFilesTensorsAndBadShapes() throws {
        expectError(.notFound) { _ = try Codebook(contentsOf: URL(fileURLWithPath: "/nonexistent/x.safetensors"), metric: .l2) }
        let url = try write {
            try $0.add("vector", floats: [1, 2, 3], shape: [3])
            try $0.add("ids", int32s: [1, 2], shape: [1, 2])
            try $0.add("bad", floats: [1, .nan], shape: [1, 2])
            try $0.add("empty", floats: [], shape: [0, 2])
        }
        defer { try? FileManager.default.removeItem(at: url) }
        expectError(.notFound) { _ = try Codebook(contentsOf: url, metric: .l2) }
        expectError(.malformed) { _ = try Codebook(contentsOf: url, tensorName: "vector", metric: .l2) }
        expectError(.malformed) { _ = try Codebook(contentsOf: url, tensorName: "ids", metric: .l2) }
        expectError(.invalidCodebook) { _ = try Codebook(contentsOf: url, tensorName: "bad", metric: .l2) }
        expectError(.invalidCodebook) { _ = try Codebook(contentsOf: url, tensorName: "empty", metric: .l2) }
        let garbage = FileManager.default.temporaryDirectory.appendingPathComponent("garbage-\(UUID().uuidString).safetensors")
        try Data([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]).write(to: garbage)
        defer { try? FileManager.default.removeItem(at: garbage) }
        expectError(.malformed) { _ = try Codebook(contentsOf: garbage, metric: .l2) }
    }
}
