import Foundation
import Testing
import TestSupport
@testable import TensorCore

@Suite("Tensor values, views and copy-on-write")
struct TensorBasicsTests {
    @Test func creationAndReading() {
        let t = Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3])
        #expect(t.shape == [2, 3] && t.rank == 2 && t.scalarCount == 6 && t.isContiguous)
        #expect(Tensor.zeros([2, 2]).scalars == [0, 0, 0, 0])
        #expect(Tensor.ones([3]).scalars == [1, 1, 1])
        #expect(Tensor.full([2], 7).scalars == [7, 7])
        #expect(Tensor(3.5).shape == [] && Tensor(3.5).scalar == 3.5)
    }

    @Test func viewsShareStorageWithoutCopying() {
        let t = Tensor(Array(0..<24).map(Float.init), shape: [2, 3, 4])
        let transposed = t.transposed()
        #expect(transposed.storage === t.storage && !transposed.isContiguous)
        #expect(transposed.shape == [2, 4, 3])
        #expect(transposed.scalars.prefix(6) == [0, 4, 8, 1, 5, 9])
        let permuted = t.permuted([2, 0, 1])
        #expect(permuted.storage === t.storage && permuted.shape == [4, 2, 3])
        #expect(permuted.scalars.prefix(4) == [0, 4, 8, 12])
        let slice = t.sliced(along: 1, 1..<3)
        #expect(slice.storage === t.storage && slice.scalars == [4, 5, 6, 7, 8, 9, 10, 11, 16, 17, 18, 19, 20, 21, 22, 23])
        let reshaped = t.reshaped([6, -1])
        #expect(reshaped.storage === t.storage && reshaped.shape == [6, 4])
        let expanded = Tensor([1, 2, 3], shape: [3, 1]).expanded(to: [2, 3, 2])
        #expect(expanded.strides == [0, 1, 0] && expanded.scalars == [1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3])
        // Reshaping a non-contiguous view copies.
        #expect(transposed.reshaped([24]).storage !== t.storage)
        #expect(t.unsqueezed(0).shape == [1, 2, 3, 4] && t.unsqueezed(-1).shape == [2, 3, 4, 1])
        #expect(t.unsqueezed(1).squeezed(1).scalars == t.scalars)
    }

    @Test func writesCopyOnWrite() {
        let original = Tensor([1, 2, 3, 4], shape: [2, 2])
        var copy = original
        copy.withUnsafeMutableScalars { $0[0] = 10 }
        #expect(original.scalars == [1, 2, 3, 4] && copy.scalars == [10, 2, 3, 4])
        var view = original.transposed()
        view.withUnsafeMutableScalars { $0[1] = 20 }
        #expect(original.scalars == [1, 2, 3, 4] && view.scalars == [1, 20, 2, 4])
        var unique = Tensor([1, 2], shape: [2])
        let before = ObjectIdentifier(unique.storage)
        unique.withUnsafeMutableScalars { $0[1] = 5 }
        #expect(ObjectIdentifier(unique.storage) == before && unique.scalars == [1, 5])
    }

    @Test func broadcastingArithmeticValues() {
        let a = Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3])
        #expect((a + Tensor([10, 20, 30], shape: [3])).scalars == [11, 22, 33, 14, 25, 36])
        #expect((a * Tensor([2, 3], shape: [2, 1])).scalars == [2, 4, 6, 12, 15, 18])
        #expect((Tensor([1, 2], shape: [2, 1]) - Tensor([1, 2, 3], shape: [3])).scalars == [0, -1, -2, 1, 0, -1])
        #expect((a.transposed() / 2).scalars == [0.5, 2, 1, 2.5, 1.5, 3])
        #expect(Tensor.broadcastShape([2, 1, 4], [3, 1]) == [2, 3, 4])
    }

    @Test func reductionValues() {
        let a = Tensor([1, 5, 3, 4, 2, 6], shape: [2, 3])
        #expect(a.sum().scalar == 21)
        #expect(a.sum(along: 0).scalars == [5, 7, 9])
        #expect(a.sum(along: 1, keepingDimensions: true).shape == [2, 1])
        #expect(a.mean(along: 1).scalars == [3, 4])
        #expect(a.max(along: 1).scalars == [5, 6])
        #expect(a.max().scalar == 6)
        #expect(a.argmax(along: 1) == IndexTensor([1, 2]))
        #expect(a.argmax(along: 0) == IndexTensor([1, 0, 1]))
    }

    @Test func matmulValues() {
        let a = Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3])
        let b = Tensor([1, 0, 0, 1, 1, 1], shape: [3, 2])
        #expect(a.matmul(b).scalars == [4, 5, 10, 11])
        #expect(a.matmul(a.transposed()).scalars == [14, 32, 32, 77])
        #expect(a.transposed().matmul(a).shape == [3, 3])
        // Batched over a permuted view read with a leading dimension of 6 (no copy).
        let batchView = Tensor(Array(0..<12).map(Float.init), shape: [2, 2, 3]).permuted([1, 0, 2])
        let expectedBatch: [Float] = [2, 3, 14, 15, 8, 9, 20, 21]
        #expect(batchView.matmul(b).scalars == expectedBatch)
        // A view that is neither row- nor column-major is copied first.
        let strided = Tensor(Array(0..<12).map(Float.init), shape: [3, 2, 2]).permuted([2, 0, 1])
        #expect(strided.strides == [1, 4, 2])
        let square = Tensor([1, 2, 3, 4], shape: [2, 2])
        #expect(strided.matmul(square).scalars == strided.contiguous().matmul(square).scalars)
        let expectedFirst: [Float] = [0 * 1 + 2 * 3, 0 * 2 + 2 * 4]
        #expect(Array(strided.matmul(square).scalars.prefix(2)) == expectedFirst)
    }

    @Test func seededRandomIsReproducible() {
        var first = SplitMix64(seed: 42), second = SplitMix64(seed: 42)
        let a = Tensor(randomNormal: [1000], generator: &first)
        let b = Tensor(randomNormal: [1000], generator: &second)
        #expect(a.scalars == b.scalars)
        let mean = a.mean().scalar, std = (a - mean).squared().mean().scalar.squareRoot()
        #expect(Swift.abs(mean) < 0.1 && Swift.abs(std - 1) < 0.1)
        var generator = SplitMix64(seed: 1)
        let u = Tensor(randomUniform: [1000], in: -2..<3, generator: &generator)
        #expect(u.scalars.allSatisfy { $0 >= -2 && $0 < 3 })
        // The documented SplitMix64 sequence for seed 0.
        var reference = SplitMix64(seed: 0)
        #expect(reference.next() == 0xE220_A839_7B1D_CDAF)
    }

    @Test func badIndicesThrow() {
        let table = Tensor.zeros([4, 2])
        #expect(throws: TensorError.self) { try table.rows(at: IndexTensor([1, 4])) }
        #expect(throws: TensorError.self) { try table.rows(at: IndexTensor([-1])) }
        do {
            _ = try Tensor.crossEntropy(logits: Tensor.zeros([2, 3]), targets: IndexTensor([0, 3]))
            Issue.record("an out-of-range target did not throw")
        } catch {
            #expect(error.code == .indexOutOfRange)
        }
        #expect(throws: TensorError.self) {
            try Tensor.crossEntropy(logits: Tensor.zeros([2, 3]), targets: IndexTensor([0, 1, 2]))
        }
    }

    @Test func crossEntropyIgnoresTargets() throws {
        let logits = Tensor([0, 0, 0, 1, 2, 3], shape: [2, 3])
        let loss = try Tensor.crossEntropy(logits: logits, targets: IndexTensor([-100, 2]))
        let expected = Float(Foundation.log(exp(1.0) + exp(2.0) + exp(3.0)) - 3)
        #expect(Swift.abs(loss.scalar - expected) < 1e-6)
        #expect(try Tensor.crossEntropy(logits: logits, targets: IndexTensor([-100, -100])).scalar.isNaN)
    }
}

@Suite("No-gradient mode and determinism")
struct RecordingAndDeterminismTests {
    @Test func noGradientModeRecordsNothing() {
        let weight = Tensor.ones([3, 3]).requiringGradient()
        let recorded = Tensor.ones([2, 3]).matmul(weight).softmax()
        #expect(recorded.requiresGradient && recorded.node != nil)
        let plain = withoutGradients { () -> Tensor in
            #expect(!isRecordingGradients)
            return Tensor.ones([2, 3]).matmul(weight).softmax().layerNorm(weight: nil, bias: nil).sum()
        }
        #expect(!plain.requiresGradient && plain.node == nil)
        #expect(isRecordingGradients)
        #expect(!weight.detached().requiresGradient)
    }

    @Test func resultsAreBitIdenticalRunToRunAndAcrossThreadCounts() {
        // TensorCore's own kernels only (no BLAS call), with the thread count set for this task: the
        // shared count, which parallel tests comparing BLAS results read, is left alone.
        func run() -> [Float] {
            let x = randomTensor([64, 300], seed: 3).requiringGradient()
            let w = randomTensor([300], seed: 4).requiringGradient()
            let y = (x.layerNorm(weight: w, bias: nil).gelu().softmax() * x).sum(along: 0)
            let loss = y.squared().sum()
            let gradients = loss.gradients(withRespectTo: [x, w])
            return y.scalars + gradients[0].scalars + gradients[1].scalars
        }
        let single = ThreadSettings.$taskOverride.withValue(1) { run() }
        #expect(single == ThreadSettings.$taskOverride.withValue(1) { run() })
        let double = ThreadSettings.$taskOverride.withValue(2) { run() }
        #expect(double == ThreadSettings.$taskOverride.withValue(2) { run() })
        // TensorCore's own kernels assign every output to one thread in a fixed order.
        #expect(single == double)
    }
}

@Suite("Storage reuse")
struct StorageCacheTests {
    @Test func cacheHandsBackBuffersOfTheSameBucket() {
        let cache = StorageCache()
        let capacity = StorageCache.bucket(for: StorageCache.minimumCount + 5)
        #expect(capacity % 1024 == 0 && capacity >= StorageCache.minimumCount + 5)
        let first = cache.obtain(capacity: capacity)
        #expect(cache.usage == (capacity * 4, capacity * 4) && cache.heldBytes == 0)
        cache.give(first, capacity: capacity)
        #expect(cache.usage == (0, capacity * 4) && cache.heldBytes == capacity * 4)
        // Another bucket is a new buffer (within the base bound nothing kept is freed).
        let other = cache.obtain(capacity: capacity + 1024)
        #expect(other != first && cache.heldBytes == capacity * 4)
        cache.give(other, capacity: capacity + 1024)
        // The same bucket is the kept buffer.
        #expect(cache.obtain(capacity: capacity) == first)
        #expect(cache.heldBytes == (capacity + 1024) * 4)
        cache.give(first, capacity: capacity)
        cache.removeAll()
        #expect(cache.heldBytes == 0 && cache.usage == (0, 0))
    }

    /// Buffers in use and kept stay within the most ever in use: a large buffer kept after a peak
    /// is freed when a smaller one of another size would take the total past that peak.
    @Test func keptBuffersStayWithinThePeak() {
        let cache = StorageCache()
        let large = StorageCache.bucket(for: StorageCache.baseLimitBytes / 4 + 1)   // pages never touched
        let buffer = cache.obtain(capacity: large)
        cache.give(buffer, capacity: large)
        #expect(cache.heldBytes == large * 4 && cache.usage == (0, large * 4))
        let small = StorageCache.bucket(for: StorageCache.minimumCount)
        let other = cache.obtain(capacity: small)
        #expect(cache.heldBytes == 0, "the kept buffer would have taken the total past the peak")
        cache.give(other, capacity: small)
        // Within the peak, a kept buffer of another size stays.
        let again = cache.obtain(capacity: small + 1024)
        #expect(cache.heldBytes == small * 4)
        cache.give(again, capacity: small + 1024)
        cache.removeAll()
    }

    @Test func reusedBuffersHoldTheirNewValues() {
        let count = StorageCache.minimumCount * 2 + 5
        for value in [1, 2, 3] as [Float] {
            let tensor = Tensor(shape: [count], repeating: value)
            #expect(tensor.scalars.allSatisfy { $0 == value })
        }
        Tensor.releaseCachedMemory()
    }
}

@Suite("Wide rows")
struct WideRowTests {
    @Test func crossEntropyOverAWideVocabularyMatchesADoubleReference() throws {
        let logits = randomTensor([3, 1000], seed: 50) * 4
        let targets: [Int32] = [999, 3, 512]
        let values = logits.scalars
        var expected = 0.0
        for row in 0..<3 {
            let slice = values[(row * 1000)..<((row + 1) * 1000)].map(Double.init)
            let maximum = slice.max()!
            let logSum = maximum + Foundation.log(slice.reduce(0) { $0 + Foundation.exp($1 - maximum) })
            expected += logSum - slice[Int(targets[row])]
        }
        expected /= 3
        let loss = try Tensor.crossEntropy(logits: logits, targets: IndexTensor(targets))
        #expect(Swift.abs(Double(loss.scalar) - expected) < 1e-5 * Swift.abs(expected))
    }
}
