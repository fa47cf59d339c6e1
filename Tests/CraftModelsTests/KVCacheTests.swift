import Foundation
import TensorCore
import Testing
import TestSupport
@testable import CraftModels

/// The cache appends into buffers with spare room; these check that what it hands back always equals
/// the plain concatenation of everything appended, that copies branch independently, and that
/// gradients still flow through a cached prefix.
@Suite struct KVCacheTests {
    static func positions(_ first: Int, _ count: Int, heads: Int = 2, depth: Int = 3, scale: Float = 1) -> Tensor {
        // Position p of head h holds values scale * (1000 h + 10 p + d): easy to check, [1, heads, count, depth].
        var values: [Float] = []
        for h in 0..<heads {
            for p in first..<(first + count) { for d in 0..<depth { values.append(scale * Float(1000 * h + 10 * p + d)) } }
        }
        return Tensor(values, shape: [1, heads, count, depth])
    }

    @Test func appendsPastSeveralGrowthsEqualTheConcatenation() {
        var cache = KVCache(layers: 1)
        _ = cache.update(layer: 0, keys: Self.positions(0, 5), values: Self.positions(0, 5, scale: -1))
        var total = 5
        // Single positions and a block, past the first buffer's room (growthStep) and a doubling.
        for step in 0..<(KVCache.growthStep + 300) {
            let added = step == 40 ? 7 : 1
            let (keys, values) = cache.update(layer: 0, keys: Self.positions(total, added), values: Self.positions(total, added, scale: -1))
            total += added
            if step % 97 == 0 || step == KVCache.growthStep + 299 {
                #expect(keys.shape == [1, 2, total, 3] && values.shape == [1, 2, total, 3])
                #expect(keys.scalars == Self.positions(0, total).scalars)
                #expect(values.scalars == Self.positions(0, total, scale: -1).scalars)
            }
        }
    }

    @Test func copiesBranchWithoutSeeingEachOthersAppends() {
        var first = KVCache(layers: 1)
        _ = first.update(layer: 0, keys: Self.positions(0, 3), values: Self.positions(0, 3))
        _ = first.update(layer: 0, keys: Self.positions(3, 1), values: Self.positions(3, 1))  // now in a roomy buffer
        var second = first
        let (a, _) = first.update(layer: 0, keys: Self.positions(4, 1), values: Self.positions(4, 1))
        let (b, _) = second.update(layer: 0, keys: Self.positions(4, 1, scale: 2), values: Self.positions(4, 1, scale: 2))
        #expect(a.scalars == Self.positions(0, 5).scalars)
        #expect(Array(b.scalars.suffix(3)) == Self.positions(4, 1, heads: 2, scale: 2).scalars.suffix(3))
        #expect(Array(b.scalars.prefix(12)) == Array(Self.positions(0, 4).scalars.prefix(12)))
        // The first branch's view still holds its own values after the second appended.
        #expect(a.scalars == Self.positions(0, 5).scalars)
    }

    @Test func gradientsFlowThroughTheCachedPrefix() {
        var cache = KVCache(layers: 1)
        let prefix = Self.positions(0, 2).requiringGradient()
        _ = cache.update(layer: 0, keys: prefix, values: prefix)
        let (keys, _) = cache.update(layer: 0, keys: Self.positions(2, 1), values: Self.positions(2, 1))
        let gradient = keys.sum().gradients(withRespectTo: [prefix])[0]
        #expect(gradient.scalars == [Float](repeating: 1, count: 12))
    }
}
