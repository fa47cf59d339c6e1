// The one place Craft talks to OpenBLAS. C types never leave this file: transposes are a Swift enum,
// sizes are `Int` converted to `blasint` with a checked conversion here.
import CBLAS

/// Matrix kernels from OpenBLAS, and the library's thread count.
public enum BLAS {
    /// Whether a matrix operand is read as stored or transposed (a flag, never a copy).
    public enum Transpose: Sendable {
        case none
        case transposed

        var cValue: CBLAS_TRANSPOSE { self == .none ? CblasNoTrans : CblasTrans }
    }

    /// The number of threads OpenBLAS uses. Results are deterministic for a given thread count.
    ///
    /// The corresponding C functions are `openblas_get_num_threads` and `openblas_set_num_threads`.
    public static var threadCount: Int {
        get { Int(openblas_get_num_threads()) }
        set { openblas_set_num_threads(Int32(clamping: max(1, newValue))) }
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
        cblas_sgemm(
            CblasRowMajor, transposeA.cValue, transposeB.cValue,
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
        cblas_sgemv(
            CblasRowMajor, transpose.cValue, blasInt(rows), blasInt(columns), alpha, a, blasInt(lda),
            x, blasInt(incrementX), beta, y, blasInt(incrementY))
    }

    /// Converts a size to OpenBLAS's integer type.
    ///
    /// - Precondition: `value` fits (OpenBLAS built with 32-bit integers takes sizes below 2³¹).
    static func blasInt(_ value: Int) -> blasint {
        guard let converted = blasint(exactly: value) else {
            preconditionFailure("size \(value) does not fit OpenBLAS's integer type")
        }
        return converted
    }
}
