// The one place Craft talks to OpenBLAS. C types never leave this file: transposes are a Swift enum,
// sizes are `Int` converted to OpenBLAS's 32-bit integers with a checked conversion here. OpenBLAS is
// loaded on first use, with kernels chosen for the CPU (Sources/CBLAS/loader.c, docs/tensorcore.md).
import CBLAS

/// Matrix kernels from OpenBLAS, and the library's thread count.
public enum BLAS {
    /// Whether a matrix operand is read as stored or transposed (a flag, never a copy).
    public enum Transpose: Sendable {
        case none
        case transposed

        var cValue: Int32 { self == .none ? Int32(CRAFT_BLAS_NO_TRANSPOSE) : Int32(CRAFT_BLAS_TRANSPOSE) }
    }

    /// The number of threads OpenBLAS uses. Results are deterministic for a given thread count.
    ///
    /// The corresponding C functions are `openblas_get_num_threads` and `openblas_set_num_threads`.
    public static var threadCount: Int {
        get { Int(craft_blas_get_threads()) }
        set { craft_blas_set_threads(Int32(clamping: max(1, newValue))) }
    }

    /// `C = alpha * op(A) * op(B) + beta * C` on row-major Float32 matrices.
    ///
    /// `op(A)` is `m × k`, `op(B)` is `k × n`, `C` is `m × n`; `lda`, `ldb`, `ldc` are the row strides of
    /// the stored matrices. The corresponding C function is `cblas_sgemm`.
    ///
    /// - Precondition: the sizes fit in `blasint` and the buffers hold the addressed elements
    ///   (a programmer error inside the library, not a data error).
    @inlinable
    public static func sgemm(
        transposeA: Transpose, transposeB: Transpose,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        _sgemm(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    }

    @usableFromInline
    static func _sgemm(
        _ transposeA: Transpose, _ transposeB: Transpose, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
        _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int, _ beta: Float,
        _ c: UnsafeMutablePointer<Float>, _ ldc: Int
    ) {
        if k == 0 {
            // BLAS leaves C untouched for k == 0 only when beta == 1; define it as C = beta * C.
            for row in 0..<m { for column in 0..<n { c[row * ldc + column] *= beta } }
            return
        }
        craft_blas_sgemm(
            transposeA.cValue, transposeB.cValue,
            blasInt(m), blasInt(n), blasInt(k), alpha, a, blasInt(lda), b, blasInt(ldb), beta, c, blasInt(ldc))
    }

    /// `y = alpha * op(A) * x + beta * y` on a row-major Float32 matrix `A` (`rows × columns`, row
    /// stride `lda`); `op(A)` is `A` or `Aᵀ`, `x` and `y` are strided vectors.
    ///
    /// A matrix-vector product reads each element of `A` once; sgemm with one row would first pack
    /// `A` (in OpenBLAS 0.3.21), which costs a second pass over it. Single-token decoding is exactly
    /// this case: every weight matrix times one activation row. The corresponding C function is
    /// `cblas_sgemv`.
    ///
    /// - Precondition: the sizes fit in `blasint` and the buffers hold the addressed elements.
    public static func sgemv(
        transpose: Transpose, rows: Int, columns: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        x: UnsafePointer<Float>, incrementX: Int,
        beta: Float = 0,
        y: UnsafeMutablePointer<Float>, incrementY: Int
    ) {
        guard rows > 0, columns > 0 else { return }
        craft_blas_sgemv(
            transpose.cValue, blasInt(rows), blasInt(columns), alpha, a, blasInt(lda),
            x, blasInt(incrementX), beta, y, blasInt(incrementY))
    }

    /// Converts a size to OpenBLAS's integer type.
    ///
    /// - Precondition: `value` fits (OpenBLAS built with 32-bit integers takes sizes below 2³¹).
    static func blasInt(_ value: Int) -> Int32 {
        guard let converted = Int32(exactly: value) else {
            preconditionFailure("size \(value) does not fit OpenBLAS's integer type")
        }
        return converted
    }

    /// Which OpenBLAS kernels run, and why.
    public struct Kernels: Sendable, Equatable {
        /// How the kernel family was chosen.
        public enum Selection: String, Sendable {
            /// `OPENBLAS_CORETYPE` was set by the user (never overridden).
            case environment
            /// Craft chose the family for the CPU's features (``requestedCore``).
            case craft
            /// Neither: OpenBLAS's own detection (CPUs without AVX2).
            case openBLAS = "openblas"
        }

        /// The kernel family OpenBLAS runs, for example `SkylakeX`, `Haswell`, `Zen` or `Prescott`.
        public var core: String
        public var selection: Selection
        /// The family Craft asked for (`nil` unless ``selection`` is `.craft`).
        public var requestedCore: String?
        /// The CPU vendor and the features the choice rests on, for example `GenuineIntel avx avx2 fma avx512`.
        public var cpuFeatures: String
        /// OpenBLAS's build description, for example `OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH ...`.
        public var configuration: String
        /// The shared library loaded.
        public var library: String
        /// `OPENBLAS_THREAD_TIMEOUT` in effect: idle OpenBLAS worker threads spin 2ⁿ cycles before they
        /// sleep. Craft sets 4 (they sleep at once) unless the user set it.
        public var threadTimeout: String
        /// Who set ``threadTimeout``: `.environment` (the user) or `.craft`.
        public var threadTimeoutSelection: Selection

        /// One line for diagnostics and benchmark headers.
        public var summary: String {
            let version = configuration.split(separator: " ").prefix(2).joined(separator: " ")
            let why: String
            switch selection {
            case .environment: why = "from OPENBLAS_CORETYPE"
            case .craft: why = "chosen by Craft for this CPU" + (InstructionSetCap.effective.map { ", capped at \($0) by CRAFT_MAX_ISA" } ?? "")
            case .openBLAS: why = "OpenBLAS's own choice"
            }
            let spin = threadTimeoutSelection == .environment ? "from OPENBLAS_THREAD_TIMEOUT" : "set by Craft"
            return "\(version), \(core) kernels (\(why); CPU: \(cpuFeatures)), thread timeout 2^\(threadTimeout) cycles (\(spin))"
        }
    }

    /// The kernels of this process (loads OpenBLAS if no BLAS call has yet).
    ///
    /// The corresponding C functions are `openblas_get_corename` and `openblas_get_config`.
    public static var kernels: Kernels {
        let requested = String(cString: craft_blas_requested_core())
        return Kernels(
            core: String(cString: craft_blas_core()),
            selection: Kernels.Selection(rawValue: String(cString: craft_blas_selection())) ?? .openBLAS,
            requestedCore: requested.isEmpty ? nil : requested,
            cpuFeatures: String(cString: craft_blas_cpu_features()),
            configuration: String(cString: craft_blas_config()),
            library: String(cString: craft_blas_library()),
            threadTimeout: String(cString: craft_blas_thread_timeout()),
            threadTimeoutSelection: Kernels.Selection(rawValue: String(cString: craft_blas_thread_timeout_selection())) ?? .environment)
    }

    /// The kernel family Craft chooses for a CPU (nil: OpenBLAS decides): `SkylakeX` with AVX-512
    /// (F, DQ, CD, BW, VL) saved by the OS, else `Zen` (AMD) or `Haswell` with AVX2 and FMA.
    public static func chosenCore(
        vendor: String, avx2: Bool, fma: Bool, avx512: Bool, osSavesAVX: Bool, osSavesAVX512: Bool
    ) -> String? {
        craft_blas_choose_core(vendor, avx2 ? 1 : 0, fma ? 1 : 0, avx512 ? 1 : 0, osSavesAVX ? 1 : 0, osSavesAVX512 ? 1 : 0)
            .map { String(cString: $0) }
    }
}
