// TensorCore: Float32 tensors on OpenBLAS with reverse-mode automatic differentiation.
// Semantics follow PyTorch (shapes, broadcasting, gradient conventions) so that models ported from
// Hugging Face checkpoints read the same; see docs/tensorcore.md.
import Foundation

/// The heap buffer behind one or more tensors: a fixed-size block of Float32 values.
///
/// Tensors share a storage when they are views of each other (reshape, transpose, slice, expand).
/// Mutation goes through `Tensor.withUnsafeMutableScalars`, which copies first unless the storage is
/// uniquely referenced (copy-on-write), so a view never sees a write made through another tensor.
@usableFromInline
final class TensorStorage: @unchecked Sendable {
    @usableFromInline let pointer: UnsafeMutablePointer<Float>
    @usableFromInline let count: Int
    /// The allocated capacity (a bucket size for large buffers, which go back to ``StorageCache``).
    let capacity: Int
    /// The object that owns borrowed memory (a memory-mapped file), or `nil` when this storage
    /// allocated its buffer. Borrowed memory is read-only: writes always go to a copy.
    let borrowedFrom: AnyObject?

    /// Allocates `count` values without initialising them; the caller writes every value before reading.
    @usableFromInline
    init(uninitializedCount count: Int) {
        self.count = count
        borrowedFrom = nil
        if count >= StorageCache.minimumCount {
            capacity = StorageCache.bucket(for: count)
            pointer = StorageCache.shared.obtain(capacity: capacity)
        } else {
            capacity = Swift.max(count, 1)
            pointer = .allocate(capacity: capacity)
        }
    }

    convenience init(repeating value: Float, count: Int) {
        self.init(uninitializedCount: count)
        pointer.initialize(repeating: value, count: count)
    }

    /// A storage over `count` values that `owner` keeps alive (never written, never freed here).
    init(borrowing pointer: UnsafePointer<Float>, count: Int, owner: AnyObject) {
        self.pointer = UnsafeMutablePointer(mutating: pointer)
        self.count = count
        capacity = count
        borrowedFrom = owner
    }

    deinit {
        if borrowedFrom != nil { return }
        if capacity >= StorageCache.minimumCount {
            StorageCache.shared.give(pointer, capacity: capacity)
        } else {
            pointer.deallocate()
        }
    }
}

/// Keeps recently freed large buffers for reuse, bounded in total size.
///
/// Training and inference allocate the same activation and gradient sizes step after step. Returning
/// those buffers to the C allocator lets it hand the pages back to the kernel, and every new buffer
/// then page-faults on first touch, the kernel zeroing each page (measured: a few milliseconds per
/// attention layer on a VM, 6 % of a CRAFT training step). Buffers of at least 64 KiB are kept here
/// by size bucket. The bound: buffers in use and buffers kept together stay within the most ever in
/// use at once (at least ``baseLimitBytes``), so a training loop reuses all of its previous step's
/// memory while the process never holds more than its own peak; on a miss, kept buffers of other
/// sizes are freed first to stay within it.
final class StorageCache: @unchecked Sendable {
    static let shared = StorageCache()
    /// Buffers below this many floats use the allocator directly (it serves them without faults).
    static let minimumCount = 16384
    /// The bytes that may always be kept, whatever the peak (512 MiB).
    static let baseLimitBytes = 512 << 20

    private let lock = NSLock()
    private var free: [Int: [UnsafeMutablePointer<Float>]] = [:]
    private var cachedBytes = 0
    private var liveBytes = 0
    private var peakLiveBytes = 0

    /// The bucket capacity for `count` floats: rounded up to a multiple of 1024 floats (4 KiB).
    static func bucket(for count: Int) -> Int { (count + 1023) / 1024 * 1024 }

    /// The bound on buffers in use plus buffers kept.
    private var limitBytes: Int { Swift.max(StorageCache.baseLimitBytes, peakLiveBytes) }

    /// A buffer of `capacity` floats: a kept one of that bucket, else a new one (after freeing kept
    /// buffers of other sizes as far as the bound requires).
    func obtain(capacity: Int) -> UnsafeMutablePointer<Float> {
        let bytes = capacity * 4
        var evicted: [UnsafeMutablePointer<Float>] = []
        lock.lock()
        liveBytes += bytes
        peakLiveBytes = Swift.max(peakLiveBytes, liveBytes)
        if let pointer = free[capacity]?.popLast() {
            cachedBytes -= bytes
            lock.unlock()
            return pointer
        }
        while cachedBytes > 0 && liveBytes + cachedBytes > limitBytes, let bucket = free.first(where: { !$0.value.isEmpty })?.key {
            let pointer = free[bucket]!.removeLast()
            if free[bucket]!.isEmpty { free[bucket] = nil }
            cachedBytes -= bucket * 4
            evicted.append(pointer)
        }
        lock.unlock()
        for pointer in evicted { pointer.deallocate() }
        return .allocate(capacity: capacity)
    }

    /// Takes back a buffer from ``obtain(capacity:)`` no longer in use. (It moves from in use to kept,
    /// so the bound still holds.)
    func give(_ pointer: UnsafeMutablePointer<Float>, capacity: Int) {
        let bytes = capacity * 4
        lock.lock()
        defer { lock.unlock() }
        liveBytes -= bytes
        free[capacity, default: []].append(pointer)
        cachedBytes += bytes
    }

    /// Frees every kept buffer and forgets the peak (the bound falls back to what is in use now).
    func removeAll() {
        lock.lock()
        let buffers = free.values.flatMap { $0 }
        free = [:]
        cachedBytes = 0
        peakLiveBytes = liveBytes
        lock.unlock()
        for pointer in buffers { pointer.deallocate() }
    }

    /// The bytes currently held for reuse.
    var heldBytes: Int {
        lock.lock()
        defer { lock.unlock() }
        return cachedBytes
    }

    /// The bytes of cached-size buffers in use, and the most ever in use at once.
    var usage: (live: Int, peak: Int) {
        lock.lock()
        defer { lock.unlock() }
        return (liveBytes, peakLiveBytes)
    }
}

/// An n-dimensional array of `Float` values that can record operations for reverse-mode differentiation.
///
/// A `Tensor` is a value: assigning it never shares mutations. Its storage is shared by reference
/// between views and copied on write, so reshaping a contiguous tensor, transposing, permuting,
/// slicing and broadcasting (`expanded(to:)`) cost no copy. Operations return new tensors laid out
/// contiguously in row-major order.
///
/// Shapes follow PyTorch: a rank-0 tensor is a scalar (`shape == []`), elementwise operations broadcast
/// NumPy-style, reductions take a dimension and `keepingDimensions`. Negative dimensions count from the end.
///
/// ```swift
/// var generator = SplitMix64(seed: 7)
/// let weight = Tensor(randomNormal: [3, 4], generator: &generator).requiringGradient()
/// let input = Tensor([1, 2, 3, 4], shape: [1, 4])
/// let loss = input.matmul(weight.transposed()).sum()
/// let gradient = loss.gradients(withRespectTo: [weight])[0]   // shape [3, 4]
/// ```
///
/// Programmer errors inside a computation (mismatched shapes, an out-of-range dimension) stop the
/// program with a precondition failure that names the shapes; data read from files never reaches
/// these preconditions unchecked: loaders validate it first and throw ``TensorError``.
public struct Tensor: Sendable {
    @usableFromInline var storage: TensorStorage
    /// The size of each dimension, outermost first.
    public private(set) var shape: [Int]
    /// The distance in elements between neighbours along each dimension (0 for broadcast dimensions).
    public private(set) var strides: [Int]
    /// The index in the storage of the first element.
    @usableFromInline private(set) var offset: Int
    /// Whether the elements are laid out densely in row-major order starting at `offset`.
    public private(set) var isContiguous: Bool
    /// The node that records how this tensor was computed, when it takes part in differentiation.
    var node: GradientNode?

    // MARK: - Creation

    init(storage: TensorStorage, shape: [Int], strides: [Int], offset: Int, node: GradientNode? = nil) {
        self.storage = storage
        self.shape = shape
        self.strides = strides
        self.offset = offset
        self.isContiguous = Tensor.isContiguous(shape: shape, strides: strides)
        self.node = node
    }

    /// A contiguous tensor on fresh, uninitialised storage; the caller fills every element.
    init(uninitializedShape shape: [Int]) {
        let count = Tensor.elementCount(shape)
        self.init(storage: TensorStorage(uninitializedCount: count), shape: shape,
                  strides: Tensor.contiguousStrides(shape), offset: 0)
    }

    /// Creates a tensor from row-major scalars.
    ///
    /// - Parameters:
    ///   - scalars: the values, last dimension fastest.
    ///   - shape: the dimensions; `[]` makes a scalar.
    /// - Precondition: `scalars.count` is the product of `shape` and no dimension is negative.
    public init(_ scalars: [Float], shape: [Int]) {
        Tensor.checkShape(shape)
        let count = Tensor.elementCount(shape)
        precondition(scalars.count == count,
                     "Tensor(_:shape:): \(scalars.count) scalars do not fill shape \(shape) (\(count) elements)")
        self.init(uninitializedShape: shape)
        scalars.withUnsafeBufferPointer { source in
            if count > 0 { storage.pointer.update(from: source.baseAddress!, count: count) }
        }
    }

    /// A contiguous tensor whose values are not initialised: for buffers the caller fills before
    /// reading (a key/value cache with spare capacity). Its pages are not touched until written.
    ///
    /// - Precondition: every element is written (through ``withUnsafeMutableScalars(_:)``) before it is read.
    public init(unsafeUninitializedShape shape: [Int]) {
        Tensor.checkShape(shape)
        self.init(uninitializedShape: shape)
    }

    /// A tensor over memory someone else owns, without copying it: a float32 weight in a
    /// memory-mapped file, for example.
    ///
    /// The tensor keeps `owner` alive and never writes to `pointer`: mutating the tensor copies first.
    ///
    /// - Precondition: `pointer` holds `shape`'s element count of float32 values, aligned, that stay
    ///   valid and unchanged for as long as `owner` lives.
    public init(borrowing pointer: UnsafePointer<Float>, shape: [Int], owner: AnyObject) {
        Tensor.checkShape(shape)
        let count = Tensor.elementCount(shape)
        self.init(storage: TensorStorage(borrowing: pointer, count: count, owner: owner), shape: shape,
                  strides: Tensor.contiguousStrides(shape), offset: 0)
    }

    /// Whether the tensor reads memory it does not own (see ``init(borrowing:shape:owner:)``).
    public var isBorrowed: Bool { storage.borrowedFrom != nil }

    /// Creates a rank-0 tensor holding one value.
    public init(_ scalar: Float) {
        self.init([scalar], shape: [])
    }

    /// Creates a tensor whose elements all equal `value`.
    public init(shape: [Int], repeating value: Float) {
        Tensor.checkShape(shape)
        let count = Tensor.elementCount(shape)
        self.init(storage: TensorStorage(repeating: value, count: count), shape: shape,
                  strides: Tensor.contiguousStrides(shape), offset: 0)
    }

    /// A tensor of zeros.
    public static func zeros(_ shape: [Int]) -> Tensor { Tensor(shape: shape, repeating: 0) }
    /// A tensor of ones.
    public static func ones(_ shape: [Int]) -> Tensor { Tensor(shape: shape, repeating: 1) }
    /// A tensor whose elements all equal `value`.
    public static func full(_ shape: [Int], _ value: Float) -> Tensor { Tensor(shape: shape, repeating: value) }

    /// Creates a tensor of normally distributed values from a seeded generator.
    ///
    /// The same generator state always gives the same tensor on every platform (Box–Muller in Double
    /// over ``SplitMix64`` output), so initialisation and training are reproducible.
    public init<G: RandomNumberGenerator>(
        randomNormal shape: [Int], mean: Float = 0, standardDeviation: Float = 1, generator: inout G
    ) {
        Tensor.checkShape(shape)
        self.init(uninitializedShape: shape)
        let count = Tensor.elementCount(shape)
        var index = 0
        while index < count {
            let (first, second) = Tensor.standardNormalPair(&generator)
            storage.pointer[index] = mean + standardDeviation * Float(first)
            if index + 1 < count { storage.pointer[index + 1] = mean + standardDeviation * Float(second) }
            index += 2
        }
    }

    /// Creates a tensor of values uniformly distributed in `range` (lower bound included) from a seeded generator.
    public init<G: RandomNumberGenerator>(
        randomUniform shape: [Int], in range: Range<Float> = 0..<1, generator: inout G
    ) {
        Tensor.checkShape(shape)
        self.init(uninitializedShape: shape)
        let count = Tensor.elementCount(shape)
        let width = Double(range.upperBound - range.lowerBound)
        for index in 0..<count {
            let unit = Double(generator.next() >> 11) * 0x1.0p-53
            storage.pointer[index] = Swift.min(range.lowerBound + Float(unit * width), range.upperBound.nextDown)
        }
    }

    static func standardNormalPair<G: RandomNumberGenerator>(_ generator: inout G) -> (Double, Double) {
        // Box–Muller; u1 in (0, 1] so the logarithm is finite.
        let u1 = (Double(generator.next() >> 11) + 1) * 0x1.0p-53
        let u2 = Double(generator.next() >> 11) * 0x1.0p-53
        let radius = (-2 * Foundation.log(u1)).squareRoot()
        let angle = 2 * Double.pi * u2
        return (radius * Foundation.cos(angle), radius * Foundation.sin(angle))
    }

    // MARK: - Reading

    /// The number of dimensions.
    public var rank: Int { shape.count }
    /// The number of elements (the product of the shape; 1 for a scalar).
    public var scalarCount: Int { Tensor.elementCount(shape) }

    /// The elements in row-major order (a contiguous copy).
    public var scalars: [Float] {
        let source = contiguousStorage()
        let count = scalarCount
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            if count > 0 { buffer.baseAddress!.update(from: source.pointer, count: count) }
            initialized = count
        }
    }

    /// The single element of a one-element tensor.
    ///
    /// - Precondition: the tensor holds exactly one element.
    public var scalar: Float {
        precondition(scalarCount == 1, "Tensor.scalar: shape \(shape) holds \(scalarCount) elements, not 1")
        return storage.pointer[offset]
    }

    /// Calls `body` with the elements in row-major order, copying only when the tensor is not contiguous.
    public func withUnsafeScalars<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        let source = contiguousStorage()
        return try withExtendedLifetime(source) {
            try body(UnsafeBufferPointer(start: source.pointer, count: scalarCount))
        }
    }

    /// Calls `body` with writable, contiguous, uniquely owned elements (copy-on-write).
    ///
    /// Writing through `body` changes only this tensor: views and copies made earlier keep their values.
    /// The tensor keeps its differentiation record; do not modify a tensor whose value a recorded
    /// operation still needs for its gradient (update parameters between training steps).
    public mutating func withUnsafeMutableScalars<R>(
        _ body: (UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        if !(isContiguous && offset == 0 && storage.count == scalarCount && storage.borrowedFrom == nil
             && isKnownUniquelyReferenced(&storage)) {
            let copy = contiguousCopyStorage()
            storage = copy
            strides = Tensor.contiguousStrides(shape)
            offset = 0
            isContiguous = true
        }
        return try body(UnsafeMutableBufferPointer(start: storage.pointer, count: scalarCount))
    }

    /// A storage holding this tensor's elements contiguously from index 0 (the tensor's own when possible).
    ///
    /// The returned storage's first `scalarCount` values are the elements when `offset` is zero; callers
    /// use `contiguousPointer` to get the right start.
    func contiguousStorage() -> (pointer: UnsafeMutablePointer<Float>, owner: TensorStorage) {
        if isContiguous { return (storage.pointer + offset, storage) }
        let copy = contiguousCopyStorage()
        return (copy.pointer, copy)
    }

    /// A fresh storage with this tensor's elements in row-major order.
    func contiguousCopyStorage() -> TensorStorage {
        let copy = TensorStorage(uninitializedCount: scalarCount)
        Tensor.stridedCopy(from: storage.pointer, shape: shape, strides: strides, offset: offset, to: copy.pointer)
        return copy
    }

    // MARK: - Shape helpers

    static func elementCount(_ shape: [Int]) -> Int {
        var count = 1
        for dimension in shape { count *= dimension }
        return count
    }

    static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var running = 1
        for index in shape.indices.reversed() {
            strides[index] = running
            running *= Swift.max(shape[index], 1)
        }
        return strides
    }

    static func isContiguous(shape: [Int], strides: [Int]) -> Bool {
        var expected = 1
        for index in shape.indices.reversed() where shape[index] != 1 {
            if shape[index] == 0 { return true }
            if strides[index] != expected { return false }
            expected *= shape[index]
        }
        return true
    }

    static func checkShape(_ shape: [Int], _ function: StaticString = #function) {
        precondition(shape.allSatisfy { $0 >= 0 }, "\(function): shape \(shape) has a negative dimension")
    }

    /// Resolves a possibly negative dimension index against `rank`.
    static func normalize(dimension: Int, rank: Int, _ function: StaticString = #function) -> Int {
        let resolved = dimension < 0 ? dimension + rank : dimension
        precondition(resolved >= 0 && resolved < rank,
                     "\(function): dimension \(dimension) is out of range for rank \(rank)")
        return resolved
    }

    /// Copies a strided view into a dense row-major buffer, coalescing dimensions where it can.
    static func stridedCopy(
        from source: UnsafePointer<Float>, shape: [Int], strides: [Int], offset: Int,
        to destination: UnsafeMutablePointer<Float>
    ) {
        let count = elementCount(shape)
        if count == 0 { return }
        let (dims, steps) = coalesce(shape: shape, strideSets: [strides])
        let rank = dims.count
        let inner = dims[rank - 1]
        let innerStride = steps[0][rank - 1]
        let rows = count / inner
        let strideList = steps[0]
        var index = [Int](repeating: 0, count: rank)
        var base = offset
        var written = 0
        for _ in 0..<rows {
            let from = source + base
            let to = destination + written
            if innerStride == 1 {
                to.update(from: from, count: inner)
            } else if innerStride == 0 {
                to.update(repeating: from.pointee, count: inner)
            } else {
                for column in 0..<inner { to[column] = from[column * innerStride] }
            }
            written += inner
            var dimension = rank - 2
            while dimension >= 0 {
                index[dimension] += 1
                base += strideList[dimension]
                if index[dimension] < dims[dimension] { break }
                base -= strideList[dimension] * dims[dimension]
                index[dimension] = 0
                dimension -= 1
            }
        }
    }

    /// Merges neighbouring dimensions that every operand walks as one, and drops size-1 dimensions.
    ///
    /// Returns at least one dimension so loops always have an inner row.
    static func coalesce(shape: [Int], strideSets: [[Int]]) -> (shape: [Int], strides: [[Int]]) {
        var dims: [Int] = []
        var steps: [[Int]] = Array(repeating: [], count: strideSets.count)
        for index in shape.indices where shape[index] != 1 {
            if let last = dims.last,
               strideSets.indices.allSatisfy({ steps[$0].last! == strideSets[$0][index] * shape[index] }) {
                dims[dims.count - 1] = last * shape[index]
                for set in strideSets.indices { steps[set][steps[set].count - 1] = strideSets[set][index] }
            } else {
                dims.append(shape[index])
                for set in strideSets.indices { steps[set].append(strideSets[set][index]) }
            }
        }
        if dims.isEmpty {
            return ([1], Array(repeating: [1], count: strideSets.count))
        }
        return (dims, steps)
    }
}

extension Tensor: CustomStringConvertible {
    /// The shape and, for small tensors, the values.
    public var description: String {
        let count = scalarCount
        let values = count <= 16 ? scalars.map { "\($0)" }.joined(separator: ", ")
            : scalars.prefix(8).map { "\($0)" }.joined(separator: ", ") + ", …"
        return "Tensor(shape: \(shape), [\(values)]\(requiresGradient ? ", requiresGradient" : ""))"
    }
}
