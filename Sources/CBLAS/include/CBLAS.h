// Craft's door to OpenBLAS: the few BLAS routines Craft uses, loaded at run time by loader.c after
// choosing kernels that match the CPU. Imported only by TensorCore (Sources/TensorCore/BLAS.swift).
#ifndef CRAFT_CBLAS_H
#define CRAFT_CBLAS_H

/// Transposition flags, with the values of the CBLAS standard (CblasNoTrans, CblasTrans).
enum { CRAFT_BLAS_NO_TRANSPOSE = 111, CRAFT_BLAS_TRANSPOSE = 112 };

/// Row-major `cblas_sgemm`. Loads OpenBLAS on first use.
void craft_blas_sgemm(int transposeA, int transposeB, int m, int n, int k, float alpha,
                      const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);

/// Row-major `cblas_sgemv`.
void craft_blas_sgemv(int transpose, int rows, int columns, float alpha, const float *a, int lda,
                      const float *x, int incrementX, float beta, float *y, int incrementY);

/// `openblas_get_num_threads` / `openblas_set_num_threads`.
int craft_blas_get_threads(void);
void craft_blas_set_threads(int threads);

/// The kernel family OpenBLAS runs (`openblas_get_corename`), for example "SkylakeX".
const char *craft_blas_core(void);
/// OpenBLAS's build description (`openblas_get_config`).
const char *craft_blas_config(void);
/// How the kernels were chosen: "environment", "craft" or "openblas".
const char *craft_blas_selection(void);
/// The core type Craft asked for when it chose ("" otherwise), and why (the CPU features).
const char *craft_blas_requested_core(void);
const char *craft_blas_cpu_features(void);
/// The file that was loaded.
const char *craft_blas_library(void);
/// OPENBLAS_THREAD_TIMEOUT in effect (the exponent n: idle workers spin 2^n cycles), and who set it:
/// "environment" (the user; never changed) or "craft" (the user had not set it).
const char *craft_blas_thread_timeout(void);
const char *craft_blas_thread_timeout_selection(void);

/// The core type Craft would choose for a CPU with these features (NULL: leave it to OpenBLAS).
/// `vendor` is the 12-character cpuid vendor string.
const char *craft_blas_choose_core(const char *vendor, int avx2, int fma, int avx512, int osAVX, int osAVX512);

#endif
