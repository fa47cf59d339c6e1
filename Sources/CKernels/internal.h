// Helpers shared by the kernel files of CKernels; not part of the module's interface.
#ifndef CRAFT_KERNELS_INTERNAL_H
#define CRAFT_KERNELS_INTERNAL_H

#include <stdint.h>

/// Whether this CPU runs the AVX2+FMA+F16C kernels (asked once per process).
int craft_cpu_has_avx2(void);

/// An IEEE binary16 value as float32 (exact).
float craft_f16_to_float(uint16_t bits);

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

/// The attribute of functions compiled for AVX2, FMA and F16C (called only after the CPU check).
#define CRAFT_AVX2 __attribute__((target("avx2,fma,f16c")))

/// The sum of an 8-lane vector: halves added, then pairs, then the last two.
CRAFT_AVX2 static inline float craft_sum8(__m256 v) {
    __m128 low = _mm256_castps256_ps128(v), high = _mm256_extractf128_ps(v, 1);
    __m128 s = _mm_add_ps(low, high);
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}
#endif

#endif
