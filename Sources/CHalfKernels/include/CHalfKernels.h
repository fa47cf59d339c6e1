// Kernels for weights stored in half precision (IEEE binary16 or bfloat16) and computed in float32.
// Each public function picks, once per process, an AVX2+FMA+F16C version on CPUs that have those
// instructions and a portable version elsewhere; both give the same values up to float32 summation
// order. Used only by TensorCore (Sources/TensorCore/HalfMatrix.swift); see docs/tensorcore.md.
#ifndef CRAFT_HALF_KERNELS_H
#define CRAFT_HALF_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/// The storage format of a half-precision weight.
enum {
    CRAFT_HALF_FLOAT16 = 0,   ///< IEEE 754 binary16
    CRAFT_HALF_BFLOAT16 = 1,  ///< bfloat16 (the upper 16 bits of a float32)
};

/// Converts `count` half-precision values at `source` to float32 at `destination` (exact).
void craft_half_to_float(int format, const uint16_t *source, float *destination, size_t count);

/// Rounds `count` float32 values to half precision, to nearest even (as torch and numpy do; a NaN
/// becomes a quiet NaN).
void craft_float_to_half(int format, const float *source, uint16_t *destination, size_t count);

/// For the weight rows `row_begin..<row_end` of a row-major `[rows, columns]` half-precision matrix
/// `weight` and each of the `m` float32 vectors `x + i * ldx` (i < m), adds the dot product of the
/// row and the vector to `y[i * ldy + row]`.
void craft_half_matvec(int format, const uint16_t *weight, size_t columns, size_t row_begin, size_t row_end,
                       const float *x, size_t m, size_t ldx, float *y, size_t ldy);

/// The name of the kernel set chosen for this CPU: "avx2-fma-f16c" or "portable".
const char *craft_half_kernel_name(void);

#endif
