import CraftCore
import Foundation
import TensorCore
import Testing
import TestSupport
@testable import CraftTraining

/// kmeans.json, written by scripts/pretraining_fixtures.py (scikit-learn's KMeans).
struct KMeansFixture: Decodable {
    struct Case: Decodable {
        let name: String, entries: Int
        let initial: [Float], centres: [Float]
        let labels: [Int32]
        let inertia: Double, iterations: Int
    }
    let count: Int, dimension: Int
    let points: [Float]
    let cases: [Case]
    let best_inertia_five: Double

    static func load() throws -> KMeansFixture {
        let url = try #require(Bundle.module.url(forResource: "kmeans", withExtension: "json", subdirectory: "Fixtures/pretraining"))
        return try JSONDecoder().decode(KMeansFixture.self, from: Data(contentsOf: url))
    }
    var vectors: Tensor { Tensor(points, shape: [count, dimension]) }
}

@Suite struct PretrainingKMeansTests {
    @Test func lloydFromGivenCentresMatchesScikitLearn() throws {
        let fixture = try KMeansFixture.load()
        for reference in fixture.cases {
            let result = try KMeansCodebook.run(vectors: fixture.vectors, initialCentres: Tensor(reference.initial, shape: [reference.entries, fixture.dimension]),
                                                iterations: 100)
            #expect(abs(result.inertia - reference.inertia) <= 1e-3 * reference.inertia, "\(reference.name): inertia \(result.inertia) vs sklearn \(reference.inertia)")
            #expect(result.assignments == reference.labels, "\(reference.name): assignments differ")
            let (ok, report) = approximatelyEqual(result.centres.scalars, reference.centres, relative: 1e-4, absolute: 1e-4)
            #expect(ok, "\(reference.name) centres: \(report)")
            // sklearn counts the final pass that finds no change; ours counts only passes that moved centres.
            #expect(result.iterations == reference.iterations || result.iterations + 1 == reference.iterations,
                    "\(reference.name): \(result.iterations) iterations vs sklearn \(reference.iterations)")
            #expect(result.codebook.entries == reference.entries && result.codebook.metric == .l2)
        }
    }

    @Test func plusPlusSeedingFindsSeparatedBlobsAndIsReproducible() throws {
        let fixture = try KMeansFixture.load()
        let first = try KMeansCodebook.run(vectors: fixture.vectors, entries: 5, iterations: 100, seed: 42)
        #expect(abs(first.inertia - fixture.best_inertia_five) <= 1e-3 * fixture.best_inertia_five,
                "inertia \(first.inertia) vs sklearn's best of 10 \(fixture.best_inertia_five)")
        let again = try KMeansCodebook.run(vectors: fixture.vectors, entries: 5, iterations: 100, seed: 42)
        #expect(again.centres.scalars == first.centres.scalars && again.codebook.hash == first.codebook.hash)
        // The seeds are data points, all different.
        let seeds = try KMeansCodebook.plusPlusCentres(vectors: fixture.vectors, entries: 5, seed: 7).scalars
        let rows = (0..<5).map { Array(seeds[($0 * 6)..<(($0 + 1) * 6)]) }
        #expect(Set(rows.map { $0.description }).count == 5)
        for row in rows {
            #expect((0..<fixture.count).contains { Array(fixture.points[($0 * 6)..<(($0 + 1) * 6)]) == row })
        }
        let codebook = try KMeansCodebook.fit(vectors: fixture.vectors, entries: 5, iterations: 100, seed: 42)
        #expect(codebook.hash == first.codebook.hash)
    }

    @Test func cosineCentresAreUnitVectors() throws {
        let fixture = try KMeansFixture.load()
        let result = try KMeansCodebook.run(vectors: fixture.vectors, entries: 6, iterations: 20, seed: 3, metric: .cosine)
        #expect(result.codebook.metric == .cosine)
        let centres = result.centres.scalars
        for row in 0..<6 {
            let norm = (0..<6).map { centres[row * 6 + $0] * centres[row * 6 + $0] }.reduce(0, +).squareRoot()
            #expect(abs(norm - 1) < 1e-5)
        }
    }

    @Test func duplicatePointsAndEmptyClustersStayFinite() throws {
        // Four copies of one point and two others, three codes: seeding must still pick three centres.
        let vectors = Tensor([0, 0, 0, 0, 0, 0, 0, 0, 5, 5, -3, 2], shape: [6, 2])
        let result = try KMeansCodebook.run(vectors: vectors, entries: 3, iterations: 10, seed: 1)
        #expect(result.centres.scalars.allSatisfy { $0.isFinite })
        #expect(result.inertia < 1e-9)
        let identical = Tensor(shape: [4, 3], repeating: 2)
        let degenerate = try KMeansCodebook.run(vectors: identical, entries: 2, iterations: 5, seed: 1)
        #expect(degenerate.centres.scalars.allSatisfy { $0 == 2 })
    }

    @Test func badInputsAreErrors() throws {
        #expect(throws: TrainingError.self) { try KMeansCodebook.fit(vectors: Tensor.zeros([3, 2]), entries: 4, iterations: 1, seed: 0) }
        #expect(throws: TrainingError.self) { try KMeansCodebook.fit(vectors: Tensor.zeros([6]), entries: 2, iterations: 1, seed: 0) }
        #expect(throws: TrainingError.self) {
            try KMeansCodebook.fit(vectors: Tensor([1, .nan, 0, 0], shape: [2, 2]), entries: 1, iterations: 1, seed: 0)
        }
        #expect(throws: TrainingError.self) { try KMeansCodebook.fit(vectors: Tensor.zeros([3, 2]), entries: 2, iterations: -1, seed: 0) }
        #expect(throws: TrainingError.self) {
            try KMeansCodebook.run(vectors: Tensor.zeros([3, 2]), initialCentres: Tensor.zeros([2, 3]), iterations: 1)
        }
    }
}
