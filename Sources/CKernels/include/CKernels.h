// Craft's own kernels: matrix-vector products over weights stored in half precision (IEEE binary16
// or bfloat16) or float32, computed in float32, and the conversions. Each public function picks,
// once per process, an AVX2+FMA+F16C version on CPUs that have those instructions and a portable
// version elsewhere; both give the same values up to float32 summation order. Every output is one
// row's dot product in a fixed order, whatever the number of vectors: a sequence decoded in a batch
// gets the same bits as decoded alone. Used only by TensorCore; see docs/tensorcore.md.
#ifndef CRAFT_KERNELS_H
#define CRAFT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/// The storage format of a half-precision weight.
enum {
    CRAFT_HALF_FLOAT16 = 0,   ///< IEEE 754 binary16
    CRAFT_HALF_BFLOAT16 = 1,  ///< bfloat16 (the upper 16 bits of a float32)
    CRAFT_FLOAT32_WEIGHTS = -1,  ///< float32 (``craft_matvec_on`` only)
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

/// As ``craft_half_matvec`` for a row-major float32 `[rows, columns]` weight.
void craft_float_matvec(const float *weight, size_t columns, size_t row_begin, size_t row_end,
                        const float *x, size_t m, size_t ldx, float *y, size_t ldy);

/// For the output columns `column_begin..<column_end` of a row-major float32 `[rows, columns]` weight
/// read as `x · weight` (GPT-2's `Conv1D` layout) and each of the `m` vectors `x + i * ldx` of
/// length `rows`: `y[i * ldy + c] += Σ_k x[i][k] · weight[k][c]`, summed in `k` order.
void craft_float_vecmat(const float *weight, size_t rows, size_t columns, size_t column_begin, size_t column_end,
                        const float *x, size_t m, size_t ldx, float *y, size_t ldy);

/// ggml's Q8_0 blocks: 32 values as an IEEE binary16 scale `d` (2 bytes) and 32 signed bytes `q`;
/// a value is `q · d`. A row of `columns` values (a multiple of 32) is `columns / 32` blocks.
enum { CRAFT_Q8_0_BLOCK_VALUES = 32, CRAFT_Q8_0_BLOCK_BYTES = 34 };

/// Dequantizes `blocks` Q8_0 blocks at `source` into `blocks · 32` float32 values (`q · d`, exact
/// as gguf-py computes it).
void craft_q8_0_to_float(const uint8_t *source, float *destination, size_t blocks);

/// As ``craft_half_matvec`` for a row-major Q8_0 `[rows, columns]` weight: for each row and vector,
/// `Σ_b d_b · (Σ_{i<32} q_{b,i} · x_{b,i})`, blocks summed in a fixed order, so a vector's result has
/// the same bits alone or with others.
void craft_q8_0_matvec(const uint8_t *weight, size_t columns, size_t row_begin, size_t row_end,
                       const float *x, size_t m, size_t ldx, float *y, size_t ldy);

/// ggml's quantized block formats that Craft computes on directly.
enum {
    CRAFT_QUANT_Q8_0 = 0,  ///< 32 values: f16 `d`, 32 int8 `q`; `q · d`
    CRAFT_QUANT_Q4_0 = 1,  ///< 32 values: f16 `d`, 16 bytes of nibbles; `d · (q − 8)`
    CRAFT_QUANT_Q4_K = 2,  ///< 256 values: f16 `d`, `dmin`, 12 bytes of 6-bit scales/minimums, 128 of nibbles
    CRAFT_QUANT_Q5_K = 3,  ///< as Q4_K with 32 bytes of fifth bits before the nibbles
    CRAFT_QUANT_Q6_K = 4,  ///< 256 values: 128 bytes of low nibbles, 64 of high pairs, 16 int8 scales, f16 `d`
};

/// Values per block of `format` (32 or 256).
size_t craft_quant_block_values(int format);

/// Bytes per block of `format` (34, 18, 144, 176 or 210).
size_t craft_quant_block_bytes(int format);

/// Dequantizes `blocks` blocks of `format` at `source` into float32, bit for bit as gguf-py's
/// reference (`gguf.quants.dequantize`) computes them.
void craft_quant_to_float(int format, const uint8_t *source, float *destination, size_t blocks);

/// As ``craft_q8_0_matvec`` for a row-major `[rows, columns]` weight of any `format` (`columns` a
/// multiple of its block values), on the blocks: per (row, vector), blocks in order, each scale
/// group's integer weights multiplied with the vector and scaled once (Q4_K/Q5_K: `(d · scale) ·
/// Σ q x − (dmin · min) · Σ x` per sub-block of 32; Q6_K: `(d · scale) · Σ (q − 32) x` per 16;
/// Q4_0: `d · Σ (q − 8) x`). A vector's result has the same bits alone or with others.
void craft_quant_matvec(int format, const uint8_t *weight, size_t columns, size_t row_begin, size_t row_end,
                        const float *x, size_t m, size_t ldx, float *y, size_t ldy);

/// ``craft_quant_matvec`` without the AVX2 path (for tests that compare the two).
void craft_quant_matvec_portable(int format, const uint8_t *weight, size_t columns, size_t row_begin, size_t row_end,
                                 const float *x, size_t m, size_t ldx, float *y, size_t ldy);

/// The activation group of `format`'s int8 products: 32 values for Q8_0, 256 for the K-quants.
size_t craft_quant_activation_group(int format);

/// Rounds `m` float32 vectors `x + i * ldx` of `columns` values (a multiple of `group` and of 16)
/// to int8 per group, as llama.cpp rounds activations: `q = round(x · 127 / max|x|)` (half to even)
/// into `q[i * columns + j]`, the group's scale `max|x| / 127` into `scales[i * columns / group + g]`,
/// and the sums of every 16 rounded values into `sums[i * columns / 16 + k]`.
void craft_quantize_activations(const float *x, size_t m, size_t ldx, size_t columns, size_t group,
                                int8_t *q, float *scales, int16_t *sums);

/// Whether ``craft_quant_matvec_int8`` computes on `format` (Q8_0, Q4_K and Q6_K).
int craft_quant_has_int8(int format);

/// As ``craft_quant_matvec`` over activations rounded by ``craft_quantize_activations`` with
/// `craft_quant_activation_group(format)`: a block's products with the int8 activations, times the
/// weights' integer sub-block scales, are exact integer sums, scaled once in float32 by the block
/// scale times the activation scale (llama.cpp's arithmetic). A vector's result has the same bits
/// alone or with others.
void craft_quant_matvec_int8(int format, const uint8_t *weight, size_t columns, size_t row_begin, size_t row_end,
                             const int8_t *q, const float *scales, const int16_t *sums, size_t m, float *y, size_t ldy);

/// ``craft_quant_matvec_int8`` without the AVX2 path (for tests that compare the two).
void craft_quant_matvec_int8_portable(int format, const uint8_t *weight, size_t columns, size_t row_begin, size_t row_end,
                                      const int8_t *q, const float *scales, const int16_t *sums, size_t m, float *y, size_t ldy);

/// The name of the matrix-vector kernels chosen for this CPU: "avx2-fma-f16c" or "portable". Each
/// path has its own canonical order per (row, vector), the same alone or in a batch (matvec.c). (An
/// AVX-512F version taking two rows and 8 vectors at a time was measured slower from memory on Zen 4:
/// docs/benchmarks.md.)
const char *craft_half_kernel_name(void);

/// The path ``craft_half_matvec`` and ``craft_float_matvec`` run on this CPU: CRAFT_PATH_AVX2 or
/// CRAFT_PATH_PORTABLE (declared with the elementwise kernels).
int craft_matvec_path(void);

/// ``craft_half_matvec`` (`format` a half format) or ``craft_float_matvec`` (`format`
/// CRAFT_FLOAT32_WEIGHTS) on a given path, which must be available (for tests and benchmarks).
void craft_matvec_on(int path, int format, const void *weight, size_t columns, size_t row_begin, size_t row_end,
                     const float *x, size_t m, size_t ldx, float *y, size_t ldy);

// MARK: - Elementwise kernels (elementwise.c)
//
// Activations, softmax rows and normalisation rows over contiguous float32, each in three versions
// chosen once per process: AVX-512F (16 lanes), AVX2+FMA (8 lanes) and a portable one (4 lanes of the
// compiler's generic vectors). All compute the same formulas (exp as Cephes' expf: range reduction by
// ln 2 in two parts, a degree-6 polynomial, 2^n in two factors, no subnormal intermediate; erf as
// Abramowitz & Stegun 7.1.26), so they agree to a few ulps (fused multiply-adds and lane counts differ).
// Every element and every row is computed alone: the result does not depend on how rows are split
// across threads.

/// The instruction sets of the elementwise kernels.
enum {
    CRAFT_PATH_PORTABLE = 0,  ///< generic 4-lane vectors (SSE2 on x86-64, NEON on arm64)
    CRAFT_PATH_AVX2 = 1,      ///< AVX2 + FMA, 8 lanes
    CRAFT_PATH_AVX512 = 2,    ///< AVX-512F, 16 lanes
};

/// The widest path Craft's kernels may take: ``CRAFT_PATH_AVX512`` (no cap) unless the environment
/// variable `CRAFT_MAX_ISA` says `avx2` or `portable` (case-insensitive; `avx512` is no cap). Read
/// once per process, before the first kernel chooses its path; a value not understood caps nothing
/// and is reported once on stderr. Every `*_path()` below and the BLAS loader's choice of OpenBLAS
/// kernels stay within it.
int craft_max_isa(void);

/// A `CRAFT_MAX_ISA` value as a path (NULL or "" → ``CRAFT_PATH_AVX512``), or −1 when not understood.
int craft_max_isa_parse(const char *value);

/// The text of `CRAFT_MAX_ISA` as ``craft_max_isa`` read it ("" when unset; at most 63 bytes).
const char *craft_max_isa_setting(void);

/// One part of a parallel loop: `body(context, part)`.
typedef void (*craft_parallel_body)(void *context, size_t part);

/// Runs `body(context, part)` for every `part < parts`, part 0 on the calling thread and the others
/// on the pool's worker threads (started on first use, one per extra part, kept for the process),
/// and returns when all are done: 1. Returns 0 without running anything when the pool is busy with
/// another loop (a loop started inside a part, or from another thread at the same moment) or cannot
/// start enough threads; the caller then runs the loop another way. Waiting workers spin briefly
/// (0.1–0.2 ms, yielding to other runnable threads) before they sleep, so loops that follow each
/// other closely (decoding) start without a kernel wake-up. Which thread runs which part does not
/// change any part's result.
int craft_parallel_run(size_t parts, craft_parallel_body body, void *context);

/// The elementwise functions of ``craft_activation``.
enum {
    CRAFT_EXP = 0,        ///< e^x (0 below −86.5, +∞ above 88.72, NaN kept)
    CRAFT_SIGMOID = 1,    ///< 1 / (1 + e^−x)
    CRAFT_SILU = 2,       ///< x · sigmoid(x)
    CRAFT_GELU_ERF = 3,   ///< 0.5 · x · (1 + erf(x / √2)), as `F.gelu(x)`
    CRAFT_GELU_TANH = 4,  ///< 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 x³))), as `F.gelu(x, approximate="tanh")`
    /// e^x for x ≤ 0 or NaN only (other x: unspecified), as softmax rows and attention compute it (a
    /// row's values minus their maximum): the same bits as CRAFT_EXP there, with less work.
    CRAFT_EXP_NONPOSITIVE = 5,
};

/// The path this CPU runs: the widest of ``CRAFT_PATH_AVX512``, ``CRAFT_PATH_AVX2`` it supports, else portable.
int craft_elementwise_path(void);

/// Whether this CPU (and this build) can run `path`.
int craft_elementwise_path_available(int path);

/// The name of ``craft_elementwise_path()``: "avx512f", "avx2-fma" or "portable".
const char *craft_elementwise_kernel_name(void);

/// `y[i] = function(x[i])` for `i < count` (`x` and `y` may be the same buffer).
void craft_activation(int function, const float *x, float *y, size_t count);

/// Softmax of each of the `rows` contiguous rows of `n` values at `x` into `y`: the row's maximum
/// subtracted, exponentials summed, multiplied by the reciprocal of the sum.
void craft_softmax_rows(const float *x, float *y, size_t rows, size_t n);

/// Layer normalisation of `rows` contiguous rows of `n` values, as `F.layer_norm(x, [n], weight,
/// bias, epsilon)`: `(x − mean) · rstd · weight + bias` with `rstd = 1 / √(var + epsilon)`, the biased
/// variance from the centred values. `weight` and `bias` (`n` values) may be NULL. When `statistics`
/// is not NULL, it receives each row's mean and rstd (2 values per row).
void craft_layer_norm_rows(const float *x, float *y, size_t rows, size_t n, const float *weight,
                           const float *bias, float epsilon, float *statistics);

/// RMS normalisation as transformers' `LlamaRMSNorm`: `x · rstd · weight` with `rstd = 1 / √(mean(x²)
/// + epsilon)`; `weight` may be NULL; `statistics` (if not NULL) receives 0 and rstd per row.
void craft_rms_norm_rows(const float *x, float *y, size_t rows, size_t n, const float *weight, float epsilon,
                         float *statistics);

/// ``craft_activation`` on a given path (which must be available; for tests and benchmarks).
void craft_activation_on(int path, int function, const float *x, float *y, size_t count);

/// ``craft_softmax_rows`` on a given path (which must be available).
void craft_softmax_rows_on(int path, const float *x, float *y, size_t rows, size_t n);

/// ``craft_layer_norm_rows`` (`centered` 1) or ``craft_rms_norm_rows`` (`centered` 0, `bias` ignored)
/// on a given path (which must be available).
void craft_norm_rows_on(int path, int centered, const float *x, float *y, size_t rows, size_t n,
                        const float *weight, const float *bias, float epsilon, float *statistics);

// MARK: - Fused attention (attention.c)
//
// Scaled dot-product attention `softmax(q·kᵀ·scale + mask)·v` for inference, flash-attention style:
// per (batch entry, key/value head, block of query positions), the keys are walked in blocks of 64
// with an online softmax (a running maximum and sum per query row, the accumulator rescaled when the
// maximum grows), so the scores of a whole head are never stored. Three versions chosen once per
// process: AVX-512F (16 lanes), AVX2+FMA (8 lanes) and a portable one (4 lanes of the compiler's
// generic vectors); they compute the same formulas (exp as the elementwise kernels' Cephes expf) and agree to a few ulps.
// Every output row depends only on its own query row, the keys, values and mask it reads, and is
// computed in a fixed order (keys in blocks from the first): a sequence gets the same bits alone or
// in a batch, whatever the split into work items across threads.

/// One attention problem. Tensors are addressed by element strides (a view needs no copy; a stride
/// may be 0 to broadcast); the last dimension of query, key, value and output is contiguous.
typedef struct {
    size_t batch;         ///< B
    size_t query_heads;   ///< Hq, a multiple of kv_heads: query head h reads key/value head h / (Hq / Hkv)
    size_t kv_heads;      ///< Hkv
    size_t query_length;  ///< T
    size_t key_length;    ///< S
    size_t depth;         ///< D, of queries and keys
    size_t value_depth;   ///< Dv, of values and outputs
    const float *query;   ///< [B, Hq, T, D]
    ptrdiff_t query_stride_batch, query_stride_head, query_stride_row;
    const float *key;     ///< [B, Hkv, S, D]
    ptrdiff_t key_stride_batch, key_stride_head, key_stride_row;
    const float *value;   ///< [B, Hkv, S, Dv]
    ptrdiff_t value_stride_batch, value_stride_head, value_stride_row;
    /// An additive mask read as [B, Hq, T, S] (any strides, 0 to broadcast), or NULL.
    const float *mask;
    ptrdiff_t mask_stride_batch, mask_stride_head, mask_stride_row, mask_stride_column;
    float *output;        ///< [B, Hq, T, Dv] by these strides (a [B, T, Hq, Dv] buffer works too)
    ptrdiff_t output_stride_batch, output_stride_head, output_stride_row;
    float scale;          ///< multiplies the scores (applied to the query rows)
    /// Nonzero: query i sees key j only when j ≤ i + S − T; a removed key's score gets
    /// min(mask, −FLT_MAX) added, as an additive causal mask (a row that sees no key attends uniformly).
    int causal;
} craft_attention_problem;

/// The query positions per work item (a function of the group size Hq / Hkv and T).
size_t craft_attention_query_block(const craft_attention_problem *problem);

/// The number of work items: B · Hkv · ⌈T / craft_attention_query_block⌉. Each writes the output
/// rows of its batch entry, key/value head group and positions only.
size_t craft_attention_items(const craft_attention_problem *problem);

/// Computes the output rows of the work items `first..<end` (threads take disjoint ranges).
void craft_attention(const craft_attention_problem *problem, size_t first, size_t end);

/// ``craft_attention`` on a given path, ``CRAFT_PATH_PORTABLE``, ``CRAFT_PATH_AVX2`` or
/// ``CRAFT_PATH_AVX512`` (which must be available; for tests and benchmarks).
void craft_attention_on(int path, const craft_attention_problem *problem, size_t first, size_t end);

/// The path ``craft_attention`` runs: ``CRAFT_PATH_AVX512`` where the CPU has AVX-512F,
/// ``CRAFT_PATH_AVX2`` where it has AVX2 and FMA, else portable.
int craft_attention_path(void);

/// The name of ``craft_attention_path()``: "avx512f", "avx2-fma" or "portable".
const char *craft_attention_kernel_name(void);

// MARK: - Int8 first pass of the nearest-code search (codesearch.c)
//
// Vectors are rounded to int8 with one scale per vector (scale = max|v| / 127); the dot products of
// two rounded vectors are exact int32 sums. Codes are packed in panels of 64 codes for VPDPBUSD
// (unsigned code bytes, offset by 128, times signed query bytes). The scores are approximations whose
// error the caller bounds from the norms reported by craft_int8_quantize_rows (docs/codebook.md).

/// Codes per packed panel.
enum { CRAFT_INT8_PANEL = 64 };

/// `dimension` rounded up to a multiple of 4 (the row length of rounded vectors).
size_t craft_int8_padded_dimension(size_t dimension);

/// `entries` rounded up to a multiple of CRAFT_INT8_PANEL (the codes a packing holds).
size_t craft_int8_padded_entries(size_t entries);

/// Rounds `rows` vectors of `dimension` floats (row `i` at `x + i·ldx`) to integers within ±`limit`
/// (at most 127; codes use 127, queries craft_int8_query_limit): `q` receives
/// `[rows][craft_int8_padded_dimension(dimension)]` values (padding 0), `scales` the scale `s` of
/// each row (its vector is approximated by `s·q`, `s = max|v| / limit`), `sums` the sum of its values,
/// `rounded_norms` an upper bound of `‖s·q‖` and `error_norms` an upper bound of `‖v − s·q‖` (both in
/// float64, rounded up past their own summation error).
void craft_int8_quantize_rows(const float *x, size_t rows, size_t dimension, size_t ldx, int limit, int8_t *q,
                              float *scales, int32_t *sums, double *rounded_norms, double *error_norms);

/// Packs `entries` int8 codes `[entries][padded dimension]` (as craft_int8_quantize_rows writes
/// them) into `packed`, which holds `craft_int8_padded_entries(entries) · padded dimension` bytes.
void craft_int8_pack_codes(const int8_t *q, size_t entries, size_t dimension, uint8_t *packed);

/// The approximate scores `tile[r·ldt + j] = ((float)(q_r·q_c) · (−2·s_r)) · s_c` of query rows
/// `0..<rows` (`queries`, `query_sums`, `query_scales` as craft_int8_quantize_rows writes them) and
/// codes `code_begin + j` for `j < code_count` (`code_begin` a multiple of CRAFT_INT8_PANEL;
/// `code_scales` holds a scale for every packed code, padding included). The products are exact for
/// `dimension` below 65 536; the two roundings of the multiplications are the only others.
void craft_int8_scores(const int8_t *queries, const int32_t *query_sums, const float *query_scales, size_t rows,
                       const uint8_t *packed, const float *code_scales, size_t code_begin, size_t code_count,
                       size_t dimension, float *tile, size_t ldt);

/// ``craft_int8_scores`` in portable C (the same bits; for tests).
void craft_int8_scores_portable(const int8_t *queries, const int32_t *query_sums, const float *query_scales,
                                size_t rows, const uint8_t *packed, const float *code_scales, size_t code_begin,
                                size_t code_count, size_t dimension, float *tile, size_t ldt);

/// The candidates of one row of a score tile: with `m` the smallest `scores[j] + norms[j]` (NaN
/// ignored), sets `*best` to `min(*best, m)` and writes to `indices` (room for `count`) every `j`
/// with `scores[j] + norms[j] <= *best + margin` in increasing order; returns how many. Nothing is
/// written, and `*best` is unchanged, when `m > *best + margin`. AVX-512F where the CPU has it, else
/// portable; the same results.
size_t craft_nearest_candidates(const float *scores, const float *norms, size_t count, float *best, float margin,
                                uint32_t *indices);

/// ``craft_nearest_candidates`` in portable C (for tests).
size_t craft_nearest_candidates_portable(const float *scores, const float *norms, size_t count, float *best,
                                         float margin, uint32_t *indices);

/// The float32 dot product of `count` values (16-lane fused multiply-adds with AVX-512F, else 4
/// lanes); within the classical `(count + 1)·2⁻²⁴·Σ|a_i·b_i|` of the exact value in either order.
float craft_dot(const float *a, const float *b, size_t count);

/// The path ``craft_int8_scores`` runs on this CPU: CRAFT_PATH_AVX512 (AVX-512 VNNI, VPDPBUSD),
/// CRAFT_PATH_AVX2 (VPMADDUBSW + VPMADDWD) or CRAFT_PATH_PORTABLE.
int craft_int8_search_path(void);

/// ``craft_int8_scores`` on a given path, which must be available (for tests and benchmarks); the
/// same bits on every path.
void craft_int8_scores_on(int path, const int8_t *queries, const int32_t *query_sums, const float *query_scales,
                          size_t rows, const uint8_t *packed, const float *code_scales, size_t code_begin,
                          size_t code_count, size_t dimension, float *tile, size_t ldt);

/// The largest query value the `path` takes: 63 for CRAFT_PATH_AVX2 (VPMADDUBSW adds pairs of
/// products in 16 bits with saturation: 2 · 255 · 63 fits), 127 otherwise.
int craft_int8_query_limit(int path);

/// Whether ``craft_int8_scores`` has a SIMD path on this CPU (AVX-512 VNNI or AVX2); the portable
/// C path is slower than a float32 GEMM, and the automatic search does not use it.
int craft_int8_search_fast(void);

/// "avx512-vnni", "avx2" or "portable".
const char *craft_int8_search_kernel_name(void);

#endif
