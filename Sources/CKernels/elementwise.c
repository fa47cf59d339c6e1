// Elementwise kernels (activations, softmax rows, layer and RMS norm rows); the contract is in
// include/CKernels.h. elementwise_impl.h holds the kernels once, written on the compiler's generic
// vectors; it is included here once per path: 4 lanes for the portable path (SSE2 on x86-64, NEON
// on arm64), 8 lanes compiled for AVX2+FMA and 16 for AVX-512F, the wide ones called only after
// the CPU check.
#include "CKernels.h"
#include "internal.h"

#include <math.h>
#include <string.h>

#define EW_CONCAT2(a, b) a##b
#define EW_CONCAT(a, b) EW_CONCAT2(a, b)

// MARK: - Portable

#define EW_LANES 4
#define EW_ATTR
#define EW_NAME(name) EW_CONCAT(portable_, name)
#include "elementwise_impl.h"
#undef EW_LANES
#undef EW_ATTR
#undef EW_NAME

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#define CRAFT_HAS_X86_PATHS 1

// MARK: - AVX2 + FMA

#define EW_LANES 8
#define EW_ATTR __attribute__((target("avx2,fma")))
#define EW_NAME(name) EW_CONCAT(avx2_, name)
#include "elementwise_impl.h"
#undef EW_LANES
#undef EW_ATTR
#undef EW_NAME

// MARK: - AVX-512F

#define EW_LANES 16
#define EW_ATTR __attribute__((target("avx512f,avx2,fma")))
#define EW_NAME(name) EW_CONCAT(avx512_, name)
#include "elementwise_impl.h"
#undef EW_LANES
#undef EW_ATTR
#undef EW_NAME

static int has_avx512(void) {
    // Computed once; every thread computes the same value, so a race only repeats the query.
    // (__builtin_cpu_supports also checks that the OS saves the AVX-512 registers.)
    static int cached = -1;
    int value = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (value < 0) {
        __builtin_cpu_init();
        value = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
              && craft_max_isa() >= CRAFT_PATH_AVX512;
        __atomic_store_n(&cached, value, __ATOMIC_RELAXED);
    }
    return value;
}
#endif

// MARK: - Dispatch

int craft_elementwise_path_available(int path) {
    switch (path) {
    case CRAFT_PATH_PORTABLE: return 1;
#ifdef CRAFT_HAS_X86_PATHS
    case CRAFT_PATH_AVX2: return craft_cpu_has_avx2();
    case CRAFT_PATH_AVX512: return has_avx512();
#endif
    default: return 0;
    }
}

int craft_elementwise_path(void) {
    static int cached = -1;
    int value = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (value < 0) {
        value = craft_elementwise_path_available(CRAFT_PATH_AVX512) ? CRAFT_PATH_AVX512
              : craft_elementwise_path_available(CRAFT_PATH_AVX2) ? CRAFT_PATH_AVX2 : CRAFT_PATH_PORTABLE;
        __atomic_store_n(&cached, value, __ATOMIC_RELAXED);
    }
    return value;
}

const char *craft_elementwise_kernel_name(void) {
    switch (craft_elementwise_path()) {
    case CRAFT_PATH_AVX512: return "avx512f";
    case CRAFT_PATH_AVX2: return "avx2-fma";
    default: return "portable";
    }
}

void craft_activation_on(int path, int function, const float *x, float *y, size_t count) {
#ifdef CRAFT_HAS_X86_PATHS
    if (path == CRAFT_PATH_AVX512) { avx512_activation(function, x, y, count); return; }
    if (path == CRAFT_PATH_AVX2) { avx2_activation(function, x, y, count); return; }
#endif
    portable_activation(function, x, y, count);
}

void craft_softmax_rows_on(int path, const float *x, float *y, size_t rows, size_t n) {
#ifdef CRAFT_HAS_X86_PATHS
    if (path == CRAFT_PATH_AVX512) { avx512_softmax_rows(x, y, rows, n); return; }
    if (path == CRAFT_PATH_AVX2) { avx2_softmax_rows(x, y, rows, n); return; }
#endif
    portable_softmax_rows(x, y, rows, n);
}

void craft_norm_rows_on(int path, int centered, const float *x, float *y, size_t rows, size_t n,
                        const float *weight, const float *bias, float epsilon, float *statistics) {
#ifdef CRAFT_HAS_X86_PATHS
    if (path == CRAFT_PATH_AVX512) { avx512_norm_rows(centered, x, y, rows, n, weight, bias, epsilon, statistics); return; }
    if (path == CRAFT_PATH_AVX2) { avx2_norm_rows(centered, x, y, rows, n, weight, bias, epsilon, statistics); return; }
#endif
    portable_norm_rows(centered, x, y, rows, n, weight, bias, epsilon, statistics);
}

void craft_activation(int function, const float *x, float *y, size_t count) {
    craft_activation_on(craft_elementwise_path(), function, x, y, count);
}

void craft_softmax_rows(const float *x, float *y, size_t rows, size_t n) {
    craft_softmax_rows_on(craft_elementwise_path(), x, y, rows, n);
}

void craft_layer_norm_rows(const float *x, float *y, size_t rows, size_t n, const float *weight,
                           const float *bias, float epsilon, float *statistics) {
    craft_norm_rows_on(craft_elementwise_path(), 1, x, y, rows, n, weight, bias, epsilon, statistics);
}

void craft_rms_norm_rows(const float *x, float *y, size_t rows, size_t n, const float *weight, float epsilon,
                         float *statistics) {
    craft_norm_rows_on(craft_elementwise_path(), 0, x, y, rows, n, weight, NULL, epsilon, statistics);
}
