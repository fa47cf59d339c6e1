// K-means for the miniature's codebook: k-means++ seeding (SplitMix64) and Lloyd iterations whose
// assignment step is the codebook's own blocked nearest-code search, so the codebook is the one the
// encoder then quantizes with. An empty cluster is re-seeded with the point farthest from its code.
import CraftCore
import Foundation
import TensorCore

enum KMeans {
    /// Fits `entries` L2 centroids to `vectors` (`count` rows of `dimension`).
    static func fit(vectors: [Float], count: Int, dimension: Int, entries: Int, iterations: Int, seed: UInt64) throws -> Codebook {
        guard count >= entries, entries > 0 else {
            throw ExperimentError("k-means needs at least \(entries) vectors for \(entries) codes but got \(count); use more training images or a smaller codebook")
        }
        var generator = SplitMix64(seed: seed)
        func uniform() -> Double { Double(generator.next() >> 11) / Double(1 << 53) }
        func row(_ index: Int) -> ArraySlice<Float> { vectors[(index * dimension)..<((index + 1) * dimension)] }
        func distance(_ index: Int, _ centroid: [Float], _ offset: Int) -> Float {
            var sum: Float = 0
            for d in 0..<dimension { let x = vectors[index * dimension + d] - centroid[offset + d]; sum += x * x }
            return sum
        }
        // k-means++ seeding.
        var centroids = [Float](); centroids.reserveCapacity(entries * dimension)
        centroids += row(Int(generator.next() % UInt64(count)))
        var nearest = (0..<count).map { distance($0, centroids, 0) }
        for k in 1..<entries {
            let total = nearest.reduce(0, +)
            var target = uniform() * Double(total)
            var chosen = count - 1
            for (index, value) in nearest.enumerated() {
                target -= Double(value)
                if target <= 0 { chosen = index; break }
            }
            centroids += row(chosen)
            for index in 0..<count { nearest[index] = min(nearest[index], distance(index, centroids, k * dimension)) }
        }
        for _ in 0..<iterations {
            let codebook = try Codebook(values: centroids, entries: entries, dimension: dimension, metric: .l2)
            let assignment = try codebook.quantize(vectors, count: count)
            var sums = [Double](repeating: 0, count: entries * dimension)
            var sizes = [Int](repeating: 0, count: entries)
            for index in 0..<count {
                let code = Int(assignment.codes[index])
                sizes[code] += 1
                for d in 0..<dimension { sums[code * dimension + d] += Double(vectors[index * dimension + d]) }
            }
            var farthest = (0..<count).sorted { assignment.residualNorms[$0] > assignment.residualNorms[$1] }.makeIterator()
            for code in 0..<entries {
                if sizes[code] == 0, let index = farthest.next() {
                    for d in 0..<dimension { centroids[code * dimension + d] = vectors[index * dimension + d] }
                } else if sizes[code] > 0 {
                    for d in 0..<dimension { centroids[code * dimension + d] = Float(sums[code * dimension + d] / Double(sizes[code])) }
                }
            }
        }
        return try Codebook(values: centroids, entries: entries, dimension: dimension, metric: .l2)
    }
}
