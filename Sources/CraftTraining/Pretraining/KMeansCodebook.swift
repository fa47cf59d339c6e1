// k-means codebooks: k-means++ seeding (Arthur & Vassilvitskii 2007) and Lloyd iterations as
// sklearn.cluster.KMeans(algorithm="lloyd", tol=0) runs them (stop when no assignment changes; empty
// clusters moved to the points farthest from their centres; a final assignment to the final centres).
import CraftCore
import Foundation
import TensorCore

/// The outcome of a k-means run.
public struct KMeansResult: Sendable {
    /// The centres as a codebook (depth 1) of the requested metric.
    public var codebook: Codebook
    /// The centres `[K, D]`.
    public var centres: Tensor
    /// The code of each vector (its nearest centre), `N` values.
    public var assignments: [Int32]
    /// The sum over the vectors of the squared distance to their centre (sklearn's `inertia_`), on
    /// the normalised vectors for the cosine metric.
    public var inertia: Double
    /// The Lloyd iterations run (fewer than asked when the assignments stopped changing).
    public var iterations: Int
}

/// Fits a codebook to feature vectors with k-means.
///
/// Seeding is k-means++ (the first centre a uniformly drawn vector, each next one drawn with
/// probability proportional to the squared distance to the nearest centre chosen so far; sklearn's
/// extra local trials are not used), from a ``SplitMix64`` stream of `seed`. Each Lloyd iteration
/// assigns every vector to its nearest centre with ``Codebook``'s exact search (lowest index wins
/// ties), then moves each centre to the mean of its vectors (accumulated in Double). A centre left
/// without vectors moves to the vector farthest from its own centre (then the next farthest, for a
/// second empty cluster), which is deterministic. The loop stops when no assignment changes.
///
/// For the cosine metric the vectors are L2-normalised first and each centre is normalised after its
/// mean (spherical k-means); the codebook is then searched by cosine.
///
/// ```swift
/// let codebook = try KMeansCodebook.fit(vectors: features, entries: 256, iterations: 25, seed: 1)
/// ```
public enum KMeansCodebook {
    /// A codebook of `entries` centres fitted to `vectors`.
    ///
    /// - Parameters:
    ///   - vectors: `[N, D]` finite values with `N ≥ entries`.
    ///   - entries: K, the number of codes.
    ///   - iterations: the most Lloyd iterations.
    ///   - seed: the seed of the k-means++ draws.
    ///   - metric: `.l2` (default) or `.cosine`.
    /// - Throws: ``TrainingError`` (`invalidConfiguration`) for a wrong shape, too few vectors, a
    ///   non-finite value or a negative iteration count.
    public static func fit(
        vectors: Tensor, entries: Int, iterations: Int, seed: UInt64, metric: CodebookMetric = .l2
    ) throws -> Codebook {
        try run(vectors: vectors, entries: entries, iterations: iterations, seed: seed, metric: metric).codebook
    }

    /// k-means++ seeding then Lloyd iterations, with the details of the run.
    ///
    /// - Throws: as ``fit(vectors:entries:iterations:seed:metric:)``.
    public static func run(
        vectors: Tensor, entries: Int, iterations: Int, seed: UInt64, metric: CodebookMetric = .l2
    ) throws -> KMeansResult {
        let data = try prepared(vectors, entries: entries, metric: metric)
        let initial = plusPlusCentres(data.values, count: data.count, dimension: data.dimension, entries: entries, seed: seed)
        return try lloyd(data.values, count: data.count, dimension: data.dimension, centres: initial, entries: entries,
                         iterations: iterations, metric: metric)
    }

    /// Lloyd iterations from given initial centres (as sklearn's `KMeans(init=centres, n_init=1)`).
    ///
    /// - Parameter initialCentres: `[K, D]` finite values; normalised first for the cosine metric.
    /// - Throws: as ``fit(vectors:entries:iterations:seed:metric:)``, and when the centres' shape does
    ///   not match the vectors.
    public static func run(
        vectors: Tensor, initialCentres: Tensor, iterations: Int, metric: CodebookMetric = .l2
    ) throws -> KMeansResult {
        guard initialCentres.rank == 2, vectors.rank == 2, initialCentres.shape[1] == vectors.shape[1] else {
            throw TrainingError(.invalidConfiguration, "k-means initial centres have shape \(initialCentres.shape) but must be [K, \(vectors.rank == 2 ? vectors.shape[1] : 0)] for vectors of shape \(vectors.shape)")
        }
        let entries = initialCentres.shape[0]
        let data = try prepared(vectors, entries: entries, metric: metric)
        var centres = initialCentres.scalars
        guard centres.allSatisfy(\.isFinite) else {
            throw TrainingError(.invalidConfiguration, "k-means initial centres hold a non-finite value; pass finite centres")
        }
        if metric == .cosine { normalizeRows(&centres, dimension: data.dimension) }
        return try lloyd(data.values, count: data.count, dimension: data.dimension, centres: centres, entries: entries,
                         iterations: iterations, metric: metric)
    }

    /// k-means++ initial centres `[K, D]` chosen among `vectors` (normalised first for cosine).
    ///
    /// - Throws: as ``fit(vectors:entries:iterations:seed:metric:)``.
    public static func plusPlusCentres(vectors: Tensor, entries: Int, seed: UInt64, metric: CodebookMetric = .l2) throws -> Tensor {
        let data = try prepared(vectors, entries: entries, metric: metric)
        let centres = plusPlusCentres(data.values, count: data.count, dimension: data.dimension, entries: entries, seed: seed)
        return Tensor(centres, shape: [entries, data.dimension])
    }

    // MARK: - Steps

    static func prepared(_ vectors: Tensor, entries: Int, metric: CodebookMetric) throws -> (values: [Float], count: Int, dimension: Int) {
        guard vectors.rank == 2, vectors.shape[1] > 0 else {
            throw TrainingError(.invalidConfiguration, "k-means takes vectors shaped [N, D] with D > 0, got \(vectors.shape)")
        }
        let (count, dimension) = (vectors.shape[0], vectors.shape[1])
        guard entries >= 1, count >= entries else {
            throw TrainingError(.invalidConfiguration, "k-means needs at least as many vectors as codes, got \(count) vectors for \(entries) codes; gather more features or ask for fewer entries")
        }
        var values = vectors.scalars
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw TrainingError(.invalidConfiguration, "k-means vector \(bad / dimension) holds the non-finite value \(values[bad]) at component \(bad % dimension); pass finite features")
        }
        if metric == .cosine { normalizeRows(&values, dimension: dimension) }
        return (values, count, dimension)
    }

    static func normalizeRows(_ values: inout [Float], dimension: Int) {
        for row in 0..<(values.count / dimension) {
            var sum: Float = 0
            for j in 0..<dimension { sum += values[row * dimension + j] * values[row * dimension + j] }
            let norm = sum.squareRoot()
            guard norm > 0 else { continue }
            for j in 0..<dimension { values[row * dimension + j] /= norm }
        }
    }

    static func squaredDistance(_ a: UnsafeBufferPointer<Float>, _ i: Int, _ b: UnsafeBufferPointer<Float>, _ j: Int, _ dimension: Int) -> Float {
        var sum: Float = 0
        for k in 0..<dimension {
            let difference = a[i * dimension + k] - b[j * dimension + k]
            sum += difference * difference
        }
        return sum
    }

    static func plusPlusCentres(_ values: [Float], count: Int, dimension: Int, entries: Int, seed: UInt64) -> [Float] {
        var generator = SplitMix64(seed: seed)
        func unit() -> Double { Double(generator.next() >> 11) * 0x1.0p-53 }
        var chosen: [Int] = [Int(unit() * Double(count))]
        var nearest = [Float](repeating: .infinity, count: count)
        values.withUnsafeBufferPointer { points in
            while chosen.count < entries {
                let latest = chosen[chosen.count - 1]
                var total: Double = 0
                for i in 0..<count {
                    nearest[i] = Swift.min(nearest[i], squaredDistance(points, i, points, latest, dimension))
                    total += Double(nearest[i])
                }
                var next: Int
                if total > 0 {
                    let target = unit() * total
                    var running: Double = 0
                    next = count - 1
                    for i in 0..<count {
                        running += Double(nearest[i])
                        if running > target && nearest[i] > 0 { next = i; break }
                    }
                    if nearest[next] == 0 { next = nearest.lastIndex(where: { $0 > 0 }) ?? next }
                } else {
                    // Every vector coincides with a centre: take the first vector not chosen yet.
                    let taken = Set(chosen)
                    next = (0..<count).first { !taken.contains($0) } ?? 0
                }
                chosen.append(next)
            }
        }
        var centres: [Float] = []
        centres.reserveCapacity(entries * dimension)
        for index in chosen { centres += values[(index * dimension)..<((index + 1) * dimension)] }
        return centres
    }

    static func lloyd(
        _ values: [Float], count: Int, dimension: Int, centres initial: [Float], entries: Int, iterations: Int, metric: CodebookMetric
    ) throws -> KMeansResult {
        guard iterations >= 0 else {
            throw TrainingError(.invalidConfiguration, "k-means iterations must be at least 0, got \(iterations)")
        }
        var centres = initial
        var previous: [Int32]?
        var ran = 0
        for _ in 0..<iterations {
            let search = try Codebook(values: centres, entries: entries, dimension: dimension, metric: .l2).quantize(values, count: count)
            if search.codes == previous { break }
            ran += 1
            previous = search.codes
            centres = updatedCentres(values, count: count, dimension: dimension, codes: search.codes, distances: search.squaredDistances,
                                     old: centres, entries: entries)
            if metric == .cosine { normalizeRows(&centres, dimension: dimension) }
        }
        let final = try Codebook(values: centres, entries: entries, dimension: dimension, metric: .l2).quantize(values, count: count)
        // Exact squared distances (the search's ‖c‖² − 2x·c + ‖x‖² loses digits when ‖x‖ is large).
        var inertia: Double = 0
        for i in 0..<count {
            let code = Int(final.codes[i])
            for j in 0..<dimension {
                let difference = Double(values[i * dimension + j]) - Double(centres[code * dimension + j])
                inertia += difference * difference
            }
        }
        let codebook = try Codebook(values: centres, entries: entries, dimension: dimension, metric: metric)
        return KMeansResult(codebook: codebook, centres: Tensor(centres, shape: [entries, dimension]), assignments: final.codes,
                            inertia: inertia, iterations: ran)
    }

    /// The mean of each cluster; empty clusters take the vectors farthest from their centres.
    static func updatedCentres(
        _ values: [Float], count: Int, dimension: Int, codes: [Int32], distances: [Float], old: [Float], entries: Int
    ) -> [Float] {
        var sums = [Double](repeating: 0, count: entries * dimension)
        var sizes = [Int](repeating: 0, count: entries)
        for i in 0..<count {
            let code = Int(codes[i])
            sizes[code] += 1
            for j in 0..<dimension { sums[code * dimension + j] += Double(values[i * dimension + j]) }
        }
        var centres = old
        let empty = (0..<entries).filter { sizes[$0] == 0 }
        if !empty.isEmpty {
            // Farthest first; ties by lower index, so the choice is deterministic.
            let farthest = (0..<count).sorted { distances[$0] != distances[$1] ? distances[$0] > distances[$1] : $0 < $1 }
            for (cluster, point) in zip(empty, farthest) {
                let from = Int(codes[point])
                sizes[from] -= 1
                sizes[cluster] = 1
                for j in 0..<dimension {
                    let value = Double(values[point * dimension + j])
                    sums[from * dimension + j] -= value
                    sums[cluster * dimension + j] = value
                }
            }
        }
        for cluster in 0..<entries where sizes[cluster] > 0 {
            for j in 0..<dimension { centres[cluster * dimension + j] = Float(sums[cluster * dimension + j] / Double(sizes[cluster])) }
        }
        return centres
    }
}
