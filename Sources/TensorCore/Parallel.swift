// The library's own parallel loops and the shared thread count (OpenBLAS plus TensorCore's kernels).
import CKernels
import Dispatch
import Foundation

/// Thread count shared by OpenBLAS and TensorCore's elementwise, normalisation and reduction kernels.
final class ThreadSettings: @unchecked Sendable {
    static let shared = ThreadSettings()
    /// A thread count for TensorCore's own parallel loops in the current task only (OpenBLAS keeps
    /// the shared count): lets tests vary it without changing what tests running beside them see.
    @TaskLocal static var taskOverride: Int?
    private let lock = NSLock()
    private var count: Int

    private init() {
        count = Swift.max(1, BLAS.threadCount)
    }

    var threadCount: Int {
        get { lock.lock(); defer { lock.unlock() }; return count }
        set {
            let value = Swift.max(1, newValue)
            lock.lock(); count = value; lock.unlock()
            BLAS.threadCount = value
        }
    }
}

extension Tensor {
    /// The number of threads TensorCore uses: OpenBLAS's threads and the library's own parallel loops.
    ///
    /// Work is split into chunks whose boundaries depend only on the problem size and this count, never
    /// on timing, and every output element is computed by exactly one thread in a fixed order, so
    /// results are bit-identical run to run for a given count. TensorCore's own kernels give the same
    /// bits for any count; matrix products follow OpenBLAS, which may round differently when the count
    /// changes. Defaults to OpenBLAS's own default (the number of cores or `OPENBLAS_NUM_THREADS`).
    public static var threadCount: Int {
        get { ThreadSettings.shared.threadCount }
        set { ThreadSettings.shared.threadCount = newValue }
    }
}

extension Tensor {
    /// Frees the large buffers TensorCore keeps for reuse after tensors are released.
    ///
    /// TensorCore keeps freed buffers (64 KiB and larger) so that the next step's activations and
    /// gradients reuse warm memory instead of page-faulting fresh pages: buffers in use and kept stay
    /// within the most the process ever had in use at once (at least 512 MiB). Call this after a
    /// large computation to give that memory back; it also forgets that peak.
    public static func releaseCachedMemory() {
        StorageCache.shared.removeAll()
    }
}

/// Runs `body` over `0..<count` split into contiguous ranges of at least `grain` items.
///
/// The ranges are a function of `count`, `grain` and the thread count only. Runs inline when one
/// range covers everything.
@inline(__always)
func parallelRanges(_ count: Int, grain: Int, _ body: (Range<Int>) -> Void) {
    let threads = ThreadSettings.taskOverride ?? ThreadSettings.shared.threadCount
    if threads <= 1 || count <= grain {
        if count > 0 { body(0..<count) }
        return
    }
    let parts = Swift.min(threads, (count + grain - 1) / grain)
    if parts <= 1 {
        body(0..<count)
        return
    }
    let size = (count + parts - 1) / parts
    withoutActuallyEscaping(body) { body in
        var loop = ParallelLoop(body: body, count: count, size: size)
        // CKernels' worker pool (workers wait for the next loop spinning briefly, so the many short
        // loops of decoding start at once); Dispatch when the pool is busy (a loop inside a loop, or
        // another thread's loop).
        let ran = withUnsafeMutablePointer(to: &loop) { pointer in
            craft_parallel_run(parts, { context, part in
                context!.assumingMemoryBound(to: ParallelLoop.self).pointee.run(part)
            }, pointer)
        }
        if ran == 0 {
            let work = UncheckedSendable(loop)
            DispatchQueue.concurrentPerform(iterations: parts) { work.value.run($0) }
        }
    }
}

/// One `parallelRanges` loop: part `p` runs the range `p·size ..< min(count, (p + 1)·size)`.
private struct ParallelLoop {
    let body: (Range<Int>) -> Void
    let count: Int
    let size: Int

    func run(_ part: Int) {
        let start = part * size
        let end = Swift.min(count, start + size)
        if start < end { body(start..<end) }
    }
}

/// A pointer that may cross into `parallelRanges` chunks, each writing a disjoint part.
struct SendablePointer: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
}

/// Lets a non-Sendable closure run on `concurrentPerform` workers; every caller writes disjoint ranges.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
