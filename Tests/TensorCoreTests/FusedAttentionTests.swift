import CKernels
import Foundation
import Testing
@testable import TensorCore

/// The fused attention kernel (CKernels' `craft_attention`, behind `Tensor.scaledDotProductAttention`
/// when no gradient is recorded) against the matrix-product path it replaces, on the AVX2 path (where
/// the CPU has it) and the portable one: no mask, causal blocks at the end of a longer cache, one
/// query row, grouped-query heads, padding masks with fully masked rows, views with strides, head
/// dimensions 32/64/80 and lengths that are not multiples of the kernel's blocks. Rows computed
/// alone give the same bits as in a batch, and on any thread count.
@Suite struct FusedAttentionTests {
    /// The paths this CPU can run: portable, and AVX2 and AVX-512F where available.
    static let paths: [Int32] = [Int32(CRAFT_PATH_PORTABLE)]
        + [Int32(CRAFT_PATH_AVX2), Int32(CRAFT_PATH_AVX512)].filter { craft_elementwise_path_available($0) != 0 }

    /// What masks a case: nothing, an additive padding mask (with a fully masked batch entry), or both.
    enum Masking: String, Sendable { case none, padding }

    struct Case: Sendable, CustomStringConvertible {
        var batch = 2
        var queryHeads = 8
        var keyHeads = 2
        var queryLength: Int
        var keyLength: Int
        var depth = 64
        var valueDepth: Int? = nil
        var masking = Masking.none
        var causal = false
        var description: String {
            "B\(batch) Hq\(queryHeads) Hkv\(keyHeads) T\(queryLength) S\(keyLength) D\(depth) Dv\(valueDepth ?? depth) \(masking.rawValue)\(causal ? " causal" : "")"
        }
    }

    static let cases: [Case] = [
        // SigLIP-like: no mask, one head per key/value head.
        Case(batch: 2, queryHeads: 6, keyHeads: 6, queryLength: 196, keyLength: 196),
        // Prefill: causal with T == S, grouped heads.
        Case(queryLength: 7, keyLength: 7, causal: true),
        Case(batch: 1, queryHeads: 4, keyHeads: 1, queryLength: 513, keyLength: 513, depth: 32, causal: true),
        Case(queryLength: 196, keyLength: 196, depth: 80, causal: true),
        // A block of new rows at the end of a cache (T < S), and T > S (rows that see no key).
        Case(queryLength: 7, keyLength: 196, causal: true),
        Case(queryLength: 65, keyLength: 513, depth: 80, causal: true),
        Case(queryLength: 20, keyLength: 7, depth: 32, causal: true),
        // One query row against a cache (decoding), with and without the causal flag.
        Case(queryLength: 1, keyLength: 513, causal: true),
        Case(batch: 3, queryHeads: 8, keyHeads: 8, queryLength: 1, keyLength: 7, depth: 80),
        Case(queryLength: 1, keyLength: 1, depth: 32),
        // Padding masks (one batch entry fully masked), alone and with the causal flag.
        Case(batch: 3, queryLength: 7, keyLength: 196, depth: 32, masking: .padding),
        Case(batch: 3, queryLength: 196, keyLength: 196, masking: .padding, causal: true),
        Case(batch: 3, queryLength: 1, keyLength: 513, depth: 80, masking: .padding),
        // Value and query/key depths that differ, odd sizes.
        Case(batch: 1, queryHeads: 3, keyHeads: 1, queryLength: 13, keyLength: 70, depth: 5, valueDepth: 19, causal: true),
    ]

    /// Deterministic normal values of `shape`.
    static func random(_ shape: [Int], seed: UInt64) -> Tensor {
        var generator = SplitMix64(seed: seed)
        return Tensor(randomNormal: shape, generator: &generator)
    }

    /// `[B, 1, 1, S]` padding mask: batch entry `b` has its last `3·b` keys masked, and the last entry
    /// (when there are three or more) every key.
    static func paddingMask(batch: Int, keyLength: Int) -> Tensor {
        let valid = (0..<batch).map { b in
            (0..<keyLength).map { j in !(batch >= 3 && b == batch - 1) && j < keyLength - 3 * b }
        }
        return Tensor.attentionMask(keyIsValid: valid, queryLength: 1, causal: false)
    }

    /// The inputs of a case (queries, keys, values and the mask, if any).
    static func inputs(_ c: Case, seed: UInt64 = 1) -> (Tensor, Tensor, Tensor, Tensor?) {
        let q = random([c.batch, c.queryHeads, c.queryLength, c.depth], seed: seed)
        let k = random([c.batch, c.keyHeads, c.keyLength, c.depth], seed: seed + 1)
        let v = random([c.batch, c.keyHeads, c.keyLength, c.valueDepth ?? c.depth], seed: seed + 2)
        let mask = c.masking == .padding ? paddingMask(batch: c.batch, keyLength: c.keyLength) : nil
        return (q, k, v, mask)
    }

    /// max |a − b| / max |b| (∞ if any value is not finite).
    static func relativeDifference(_ a: Tensor, _ b: Tensor) -> Float {
        let (x, y) = (a.scalars, b.scalars)
        guard x.allSatisfy(\.isFinite), y.allSatisfy(\.isFinite) else { return .infinity }
        let difference = zip(x, y).map { Swift.abs($0 - $1) }.max() ?? 0
        return difference / Swift.max(y.map(Swift.abs).max() ?? 0, .leastNormalMagnitude)
    }

    static func fused(_ q: Tensor, _ k: Tensor, _ v: Tensor, mask: Tensor?, causal: Bool, scale: Float? = nil, path: Int32) -> Tensor {
        Tensor.fusedAttention(query: q, key: k, value: v, mask: mask, causal: causal,
                              scale: scale ?? 1 / Float(q.shape[3]).squareRoot(), path: path)
    }

    static func unfused(_ q: Tensor, _ k: Tensor, _ v: Tensor, mask: Tensor?, causal: Bool, scale: Float? = nil) -> Tensor {
        Tensor.unfusedAttention(query: q, key: k, value: v, mask: mask, causal: causal,
                                scale: scale ?? 1 / Float(q.shape[3]).squareRoot())
    }

    @Test func pathIsReportedConsistently() {
        let path = craft_attention_path()
        let names = [Int32(CRAFT_PATH_PORTABLE): "portable", Int32(CRAFT_PATH_AVX2): "avx2-fma", Int32(CRAFT_PATH_AVX512): "avx512f"]
        #expect(Tensor.fusedAttentionKernelName == names[path])
        // The widest path the CPU has.
        #expect(path == Self.paths.last)
    }

    @Test(arguments: cases) func fusedEqualsUnfused(_ c: Case) {
        let (q, k, v, mask) = Self.inputs(c)
        let reference = Self.unfused(q, k, v, mask: mask, causal: c.causal)
        for path in Self.paths {
            let output = Self.fused(q, k, v, mask: mask, causal: c.causal, path: path)
            #expect(output.shape == reference.shape)
            let difference = Self.relativeDifference(output, reference)
            #expect(difference < 1e-5, "\(c) path \(path): max |diff| / max |ref| = \(difference)")
        }
    }

    /// A causal flag equals the additive causal mask it stands for, through the public function, with
    /// and without gradients recorded (the matrix-product path then runs).
    @Test func causalFlagEqualsTheCausalMask() {
        let c = Case(queryLength: 9, keyLength: 40, depth: 32, causal: true)
        let (q, k, v, _) = Self.inputs(c, seed: 11)
        let mask = Tensor.causalMask(queryLength: 9, keyLength: 40)
        let byMask = Self.unfused(q, k, v, mask: mask, causal: false)
        let byFlag = Tensor.scaledDotProductAttention(query: q, key: k, value: v, causal: true)
        #expect(Self.relativeDifference(byFlag, byMask) < 1e-5)
        let parameter = q.requiringGradient()
        let recorded = Tensor.scaledDotProductAttention(query: parameter, key: k, value: v, causal: true)
        #expect(Self.relativeDifference(recorded, byMask) < 1e-6)
        let gradient = recorded.sum().gradients(withRespectTo: [parameter])
        #expect(gradient[0].shape == q.shape)
    }

    /// Fully masked rows attend uniformly (the mask is the lowest finite float, as in transformers):
    /// their output is the mean of the value rows, on both paths, for a padding mask and for causal
    /// rows that see no key (T > S), and for a causal row whose visible keys are all padding.
    @Test func fullyMaskedRowsAttendUniformly() {
        let (batch, heads, depth) = (1, 2, 16)
        let q = Self.random([batch, heads, 6, depth], seed: 21)
        let k = Self.random([batch, heads, 4, depth], seed: 22)
        let v = Self.random([batch, heads, 4, depth], seed: 23)
        let mean = v.mean(along: 2, keepingDimensions: true)  // [1, H, 1, D]
        let everything = Tensor(shape: [1, 1, 1, 4], repeating: Tensor.maskedScore)
        // T 6, S 4: causal row i sees keys j ≤ i − 2, so rows 0 and 1 see none. With keys 0 and 1
        // padding, rows 2 and 3 see padding only, row 4 sees key 2 alone and row 5 keys 2 and 3.
        let padding = Tensor([Tensor.maskedScore, Tensor.maskedScore, 0, 0], shape: [1, 1, 1, 4])
        for path in Self.paths {
            let all = Self.fused(q, k, v, mask: everything, causal: false, path: path)
            #expect(Self.relativeDifference(all, mean.expanded(to: [batch, heads, 6, depth])) < 1e-6, "path \(path)")
            let causal = Self.fused(q, k, v, mask: nil, causal: true, path: path)
            #expect(Self.relativeDifference(causal.sliced(along: 2, 0..<2), mean.expanded(to: [batch, heads, 2, depth])) < 1e-6)
            let both = Self.fused(q, k, v, mask: padding, causal: true, path: path)
            #expect(Self.relativeDifference(both.sliced(along: 2, 0..<4), mean.expanded(to: [batch, heads, 4, depth])) < 1e-6,
                    "rows that see only padding attend to every key, as with an additive causal mask")
            #expect(Self.relativeDifference(both, Self.unfused(q, k, v, mask: padding, causal: true)) < 1e-5)
            // Row 4 ignores the padding: its output is value row 2.
            #expect(Self.relativeDifference(both.sliced(along: 2, 4..<5), v.sliced(along: 2, 2..<3)) < 1e-6)
        }
    }

    /// Views read in place: heads split from `[B, T, H·D]` rows (as the models do), keys and values
    /// from a cache buffer with spare capacity, a mask broadcast from `[T, S]` and `[B, 1, 1, S]`, and
    /// a query whose elements are not contiguous (copied first).
    @Test func stridedInputs() {
        let (batch, heads, kvHeads, length, capacity, depth) = (2, 8, 2, 37, 100, 32)
        let rows = Self.random([batch, length, heads * depth], seed: 31)
        let q = rows.reshaped([batch, length, heads, depth]).permuted([0, 2, 1, 3])
        #expect(!q.isContiguous)
        let keyBuffer = Self.random([batch, kvHeads, capacity, depth], seed: 32)
        let valueBuffer = Self.random([batch, kvHeads, capacity, depth + 8], seed: 33)
        let k = keyBuffer.sliced(along: 2, 0..<60), v = valueBuffer.sliced(along: 2, 0..<60)
        let squareMask = Tensor.causalMask(queryLength: length, keyLength: 60) + Self.random([length, 60], seed: 34)
        let keyMask = Self.paddingMask(batch: batch, keyLength: 60)
        let transposedQuery = Self.random([batch, heads, depth, length], seed: 35).transposed(2, 3)
        for path in Self.paths {
            for (mask, causal) in [(nil, true), (squareMask, false), (keyMask, true)] as [(Tensor?, Bool)] {
                let reference = Self.unfused(q.contiguous(), k.contiguous(), v.contiguous(), mask: mask?.contiguous(), causal: causal)
                let output = Self.fused(q, k, v, mask: mask, causal: causal, path: path)
                #expect(Self.relativeDifference(output, reference) < 1e-5, "path \(path) causal \(causal)")
            }
            let reference = Self.unfused(transposedQuery.contiguous(), k, v, mask: nil, causal: false)
            #expect(Self.relativeDifference(Self.fused(transposedQuery, k, v, mask: nil, causal: false, path: path), reference) < 1e-5)
        }
    }

    /// The output is a `[B, Hq, T, Dv]` view of a `[B, T, Hq, Dv]` buffer: merging the heads needs no copy.
    @Test func outputMergesHeadsWithoutCopy() {
        let c = Case(batch: 2, queryHeads: 4, keyHeads: 4, queryLength: 5, keyLength: 5, depth: 8)
        let (q, k, v, _) = Self.inputs(c, seed: 41)
        let output = Tensor.scaledDotProductAttention(query: q, key: k, value: v)
        #expect(output.shape == [2, 4, 5, 8])
        #expect(output.permuted([0, 2, 1, 3]).isContiguous)
        #expect(Self.relativeDifference(output, Self.unfused(q, k, v, mask: nil, causal: false)) < 1e-5)
    }

    /// A batch entry's rows have the same bits computed alone as in a batch, on every path and thread
    /// count; so do a sequence's decode rows (one query against its cache) next to other sequences.
    @Test(arguments: [false, true]) func rowsHaveTheSameBitsAloneAsInABatch(masked: Bool) {
        let c = Case(batch: 3, queryLength: 70, keyLength: 133, depth: 80, masking: masked ? .padding : .none, causal: true)
        let (q, k, v, mask) = Self.inputs(c, seed: 51)
        for path in Self.paths {
            let batched = ThreadSettings.$taskOverride.withValue(2) { Self.fused(q, k, v, mask: mask, causal: true, path: path) }
            let single = ThreadSettings.$taskOverride.withValue(1) { Self.fused(q, k, v, mask: mask, causal: true, path: path) }
            #expect(batched.scalars == single.scalars, "path \(path): thread counts differ")
            for b in 0..<c.batch {
                let slice = { (t: Tensor) in t.sliced(along: 0, b..<(b + 1)) }
                let alone = Self.fused(slice(q), slice(k), slice(v), mask: mask.map(slice), causal: true, path: path)
                #expect(slice(batched).scalars == alone.scalars, "path \(path): batch entry \(b)")
                // Its last position as one query row against the keys (a decoding step).
                let last = { (t: Tensor) in t.sliced(along: 2, (c.queryLength - 1)..<c.queryLength) }
                let step = Self.fused(last(slice(q)), slice(k), slice(v), mask: mask.map(slice), causal: true, path: path)
                let stepBatched = Self.fused(last(q), k, v, mask: mask, causal: true, path: path)
                #expect(slice(stepBatched).scalars == step.scalars, "path \(path): decode row of entry \(b)")
            }
        }
    }

    /// A custom scale reaches the kernel (GPT-2 scales by 1 / (layer + 1) as well).
    @Test func customScale() {
        let c = Case(queryLength: 11, keyLength: 11, depth: 32, causal: true)
        let (q, k, v, _) = Self.inputs(c, seed: 61)
        for path in Self.paths {
            let output = Self.fused(q, k, v, mask: nil, causal: true, scale: 0.05, path: path)
            #expect(Self.relativeDifference(output, Self.unfused(q, k, v, mask: nil, causal: true, scale: 0.05)) < 1e-5)
        }
    }
}
