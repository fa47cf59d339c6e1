// Matrix-vector kernels over half-precision and float32 weights; the contract is in include/CKernels.h.
#include "CKernels.h"
#include "internal.h"

#include <string.h>

// MARK: - Portable versions

static inline float bfloat_to_float(uint16_t bits) {
    uint32_t word = (uint32_t)bits << 16;
    float value;
    memcpy(&value, &word, sizeof value);
    return value;
}

static inline float half_to_float(uint16_t bits) {
    uint32_t sign = (uint32_t)(bits & 0x8000) << 16;
    uint32_t exponent = (bits >> 10) & 0x1F;
    uint32_t mantissa = bits & 0x3FF;
    uint32_t word;
    if (exponent == 0) {
        if (mantissa == 0) {
            word = sign;
        } else {
            // Subnormal: mantissa × 2^-24, exact in float32.
            float magnitude = (float)mantissa * 0x1p-24f;
            memcpy(&word, &magnitude, sizeof word);
            word |= sign;
        }
    } else if (exponent == 0x1F) {
        word = sign | 0x7F800000u | (mantissa << 13);
    } else {
        word = sign | ((exponent + 112) << 23) | (mantissa << 13);
    }
    float value;
    memcpy(&value, &word, sizeof value);
    return value;
}

static inline float to_float(int format, uint16_t bits) {
    return format == CRAFT_HALF_BFLOAT16 ? bfloat_to_float(bits) : half_to_float(bits);
}

static void portable_to_float(int format, const uint16_t *source, float *destination, size_t count) {
    if (format == CRAFT_HALF_BFLOAT16) {
        for (size_t i = 0; i < count; i++) destination[i] = bfloat_to_float(source[i]);
    } else {
        for (size_t i = 0; i < count; i++) destination[i] = half_to_float(source[i]);
    }
}

static inline uint16_t float_to_bfloat(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return 0x7FC0;  // NaN, as torch
    return (uint16_t)((bits + ((bits >> 16) & 1) + 0x7FFF) >> 16);
}

// Round to nearest even (F. Giesen's float_to_half_fast3_rtne).
static inline uint16_t float_to_half(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    uint32_t sign = bits & 0x80000000u;
    bits ^= sign;
    uint16_t result;
    if (bits >= 0x47800000u) {
        result = bits > 0x7F800000u ? 0x7E00 : 0x7C00;  // NaN stays NaN; overflow goes to infinity
    } else if (bits < 0x38800000u) {
        // Subnormal or zero: let the float adder round, with 0.5 as the magic bias.
        float magnitude, magic = 0.5f;
        memcpy(&magnitude, &bits, sizeof magnitude);
        magnitude += magic;
        uint32_t rounded;
        memcpy(&rounded, &magnitude, sizeof rounded);
        result = (uint16_t)(rounded - 0x3F000000u);
    } else {
        uint32_t odd = (bits >> 13) & 1;
        bits += ((uint32_t)(15 - 127) << 23) + 0xFFF + odd;
        result = (uint16_t)(bits >> 13);
    }
    return result | (uint16_t)(sign >> 16);
}

void craft_float_to_half(int format, const float *source, uint16_t *destination, size_t count) {
    if (format == CRAFT_HALF_BFLOAT16) {
        for (size_t i = 0; i < count; i++) destination[i] = float_to_bfloat(source[i]);
    } else {
        for (size_t i = 0; i < count; i++) destination[i] = float_to_half(source[i]);
    }
}

// Float32 weights are format CRAFT_FLOAT32_WEIGHTS (-1) here and in the AVX2 versions below.

static inline float weight_at(int format, const void *weight, size_t index) {
    if (format == CRAFT_FLOAT32_WEIGHTS) return ((const float *)weight)[index];
    return to_float(format, ((const uint16_t *)weight)[index]);
}

static void portable_matvec(int format, const void *weight, size_t columns, size_t row_begin, size_t row_end,
                            const float *x, size_t m, size_t ldx, float *y, size_t ldy) {
    for (size_t row = row_begin; row < row_end; row++) {
        for (size_t i = 0; i < m; i++) {
            const float *v = x + i * ldx;
            float sums[4] = {0, 0, 0, 0};
            size_t k = 0;
            for (; k + 4 <= columns; k += 4) {
                for (size_t lane = 0; lane < 4; lane++) sums[lane] += weight_at(format, weight, row * columns + k + lane) * v[k + lane];
            }
            for (; k < columns; k++) sums[0] += weight_at(format, weight, row * columns + k) * v[k];
            y[i * ldy + row] += (sums[0] + sums[1]) + (sums[2] + sums[3]);
        }
    }
}

// MARK: - AVX2 + FMA + F16C versions

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>


CRAFT_AVX2 static inline __m256 load8(int format, const uint16_t *p) {
    __m128i bits = _mm_loadu_si128((const __m128i *)p);
    if (format == CRAFT_HALF_BFLOAT16) {
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(bits), 16));
    }
    return _mm256_cvtph_ps(bits);
}

#define sum8 craft_sum8

CRAFT_AVX2 static void avx2_to_float(int format, const uint16_t *source, float *destination, size_t count) {
    size_t i = 0;
    for (; i + 8 <= count; i += 8) _mm256_storeu_ps(destination + i, load8(format, source + i));
    for (; i < count; i++) destination[i] = to_float(format, source[i]);
}

// Weight rows are streamed once, a tile of R consecutive rows at a time (8 for one vector, 4 for two,
// 2 for three or four), and multiplied by up to 4 vectors at a time while their chunks are in
// registers or L1. Every (row, vector) pair is computed in the same canonical order whatever the
// number of vectors, the rows beside it or the split of rows across threads: one 8-lane accumulator
// over k in steps of 8 (fused multiply-add), its horizontal sum, then the remaining k one by one
// (fused). So a row's result has the same bits alone or in a batch. A tile of R rows and V vectors
// runs R·V independent chains (8 when R·V is 8: enough to hide the FMA latency) and loads R weight
// chunks and V vector chunks for R·V multiply-adds: 2 rows × 4 vectors are 6 loads for 8 FMAs, where
// one row × 4 vectors with two accumulators each (the previous order) were 10 loads for 8. Streaming
// the ~110M Llama's weights on Zen 3, 8 vectors took ~18 % less time, 4 vectors ~25 % less
// (docs/benchmarks.md).

CRAFT_AVX2 static inline __m256 load_weight8(int format, const void *w, size_t k) {
    if (format == CRAFT_FLOAT32_WEIGHTS) return _mm256_loadu_ps((const float *)w + k);
    return load8(format, (const uint16_t *)w + k);
}

CRAFT_AVX2 static inline float fused(float a, float b, float c) {
    return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c)));
}

/// The rows of a tile for groups of up to `vectors` vectors: 8 chains (6 for three vectors).
static inline size_t tile_rows(size_t vectors) { return vectors == 1 ? 8 : vectors == 2 ? 4 : 2; }

// The canonical order of a tile's pairs, in two steps: the accumulators acc[r * V + v] over the
// 8-column steps of [0, steps_end) for the R rows at `w` (`row_bytes` apart) and the V vectors at `x`
// (`ldx` apart); then (finish) each pair's horizontal sum and its remaining columns one by one.
// `ahead`, when not null, is a later tile's start: each step that starts a cache line of a row asks
// for the same line of that tile's row (into L2), so the later tile arrives spread over this one's
// work.
CRAFT_AVX2 __attribute__((always_inline)) static inline void avx2_tile_steps(
    int format, const char *w, size_t row_bytes, size_t steps_end, const float *x, size_t ldx, int R, int V,
    __m256 *acc, const char *ahead) {
    const size_t element = format == CRAFT_FLOAT32_WEIGHTS ? sizeof(float) : sizeof(uint16_t);
    for (size_t k = 0; k < steps_end; k += 8) {
        if (ahead && (k * element) % 64 == 0)
            for (int r = 0; r < R; r++) _mm_prefetch(ahead + r * row_bytes + k * element, _MM_HINT_T1);
        __m256 weights[8];
        for (int r = 0; r < R; r++) weights[r] = load_weight8(format, w + r * row_bytes, k);
        for (int v = 0; v < V; v++) {
            const __m256 chunk = _mm256_loadu_ps(x + v * ldx + k);
            for (int r = 0; r < R; r++) acc[r * V + v] = _mm256_fmadd_ps(weights[r], chunk, acc[r * V + v]);
        }
    }
}

CRAFT_AVX2 __attribute__((always_inline)) static inline void avx2_tile_finish(
    int format, const char *w, size_t row_bytes, size_t columns, const float *x, size_t ldx, int R, int V,
    const __m256 *acc, float *y, size_t ldy, size_t row) {
    for (int r = 0; r < R; r++) {
        const void *weights = w + r * row_bytes;
        for (int v = 0; v < V; v++) {
            float total = sum8(acc[r * V + v]);
            for (size_t tail = columns / 8 * 8; tail < columns; tail++)
                total = fused(weight_at(format, weights, tail), x[v * ldx + tail], total);
            y[v * ldy + row + r] += total;
        }
    }
}

// avx2_tile_steps with the (R, V) of tile_rows' tiles and of single rows turned into constants; any
// other pair (R·V ≤ 8) runs the same steps with R and V as variables (slower, same bits).
CRAFT_AVX2 __attribute__((always_inline)) static inline void avx2_tile_steps_any(
    int format, const char *w, size_t row_bytes, size_t steps_end, const float *x, size_t ldx, size_t R, size_t V,
    __m256 *acc, const char *ahead) {
#define MV_STEPS(r, v) avx2_tile_steps(format, w, row_bytes, steps_end, x, ldx, r, v, acc, ahead)
    switch (R * 8 + V) {
    case 9: MV_STEPS(1, 1); break;
    case 10: MV_STEPS(1, 2); break;
    case 11: MV_STEPS(1, 3); break;
    case 12: MV_STEPS(1, 4); break;
    case 17: MV_STEPS(2, 1); break;
    case 18: MV_STEPS(2, 2); break;
    case 19: MV_STEPS(2, 3); break;
    case 20: MV_STEPS(2, 4); break;
    case 33: MV_STEPS(4, 1); break;
    case 34: MV_STEPS(4, 2); break;
    case 65: MV_STEPS(8, 1); break;
    default: MV_STEPS((int)R, (int)V); break;
    }
#undef MV_STEPS
}

CRAFT_AVX2 __attribute__((always_inline)) static inline void avx2_matvec_any(
    int format, const void *weight, size_t columns, size_t row_begin, size_t row_end, const float *x, size_t m,
    size_t ldx, float *y, size_t ldy) {
    const size_t element = format == CRAFT_FLOAT32_WEIGHTS ? sizeof(float) : sizeof(uint16_t);
    const size_t row_bytes = columns * element, tile = tile_rows(m < 4 ? m : 4);
    for (size_t row = row_begin; row < row_end;) {
        const size_t R = row_end - row >= tile ? tile : 1;
        const char *w = (const char *)weight + row * row_bytes;
        // The hardware prefetchers fall behind a tile's arithmetic: the first group's pass asks for a
        // later tile, line by line as it reads its own: the one after next with several vectors, the
        // next one (as far ahead in bytes) with one. Over the ~110M Llama's 440 MB of weights on
        // Zen 3, 8 vectors took 1.4x as long without it, and 4 vectors 5-10 % longer asking for the
        // next tile only (docs/benchmarks.md). Long rows (a down projection's 2048 columns and more)
        // take the same path: with these tiles it was faster on Zen 3 than the column blocks that had
        // kept 8 vectors' pieces in L1 for one-row tiles (8 vectors, 768 × 2048: 9.2 GB/s against 6.0).
        const size_t distance = m == 1 ? 1 : 2;
        const char *ahead = row + (distance + 1) * R <= row_end ? w + distance * R * row_bytes : NULL;
        for (size_t g = 0; g < m; g += 4) {
            const size_t V = m - g < 4 ? m - g : 4;
            __m256 acc[8];
            for (size_t i = 0; i < R * V; i++) acc[i] = _mm256_setzero_ps();
            avx2_tile_steps_any(format, w, row_bytes, columns / 8 * 8, x + g * ldx, ldx, R, V, acc, g == 0 ? ahead : NULL);
            avx2_tile_finish(format, w, row_bytes, columns, x + g * ldx, ldx, (int)R, (int)V, acc, y + g * ldy, ldy, row);
        }
        row += R;
    }
}

// Each format a constant in its own copy, so the loads are specialised.
CRAFT_AVX2 static void avx2_matvec(int format, const uint16_t *weight, size_t columns, size_t row_begin,
                                   size_t row_end, const float *x, size_t m, size_t ldx, float *y, size_t ldy) {
    if (format == CRAFT_HALF_BFLOAT16) {
        avx2_matvec_any(CRAFT_HALF_BFLOAT16, weight, columns, row_begin, row_end, x, m, ldx, y, ldy);
    } else {
        avx2_matvec_any(CRAFT_HALF_FLOAT16, weight, columns, row_begin, row_end, x, m, ldx, y, ldy);
    }
}

CRAFT_AVX2 static void avx2_float_matvec(const float *weight, size_t columns, size_t row_begin, size_t row_end,
                                         const float *x, size_t m, size_t ldx, float *y, size_t ldy) {
    avx2_matvec_any(CRAFT_FLOAT32_WEIGHTS, weight, columns, row_begin, row_end, x, m, ldx, y, ldy);
}

static int has_avx2(void) {
    // Computed once; every thread computes the same value, so a race only repeats the query.
    static int cached = -1;
    int value = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (value < 0) {
        __builtin_cpu_init();
        value = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")
              && craft_max_isa() >= CRAFT_PATH_AVX2;
        __atomic_store_n(&cached, value, __ATOMIC_RELAXED);
    }
    return value;
}
#else
static int has_avx2(void) { return 0; }
#endif

int craft_cpu_has_avx2(void) { return has_avx2(); }

float craft_f16_to_float(uint16_t bits) { return half_to_float(bits); }

// MARK: - Dispatch

void craft_half_to_float(int format, const uint16_t *source, float *destination, size_t count) {
#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
    if (has_avx2()) {
        if (format == CRAFT_HALF_BFLOAT16) avx2_to_float(CRAFT_HALF_BFLOAT16, source, destination, count);
        else avx2_to_float(CRAFT_HALF_FLOAT16, source, destination, count);
        return;
    }
#endif
    portable_to_float(format, source, destination, count);
}

int craft_matvec_path(void) {
#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
    if (has_avx2()) return CRAFT_PATH_AVX2;
#endif
    return CRAFT_PATH_PORTABLE;
}

void craft_matvec_on(int path, int format, const void *weight, size_t columns, size_t row_begin, size_t row_end,
                     const float *x, size_t m, size_t ldx, float *y, size_t ldy) {
#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
    if (path == CRAFT_PATH_AVX2) {
        if (format == CRAFT_FLOAT32_WEIGHTS) avx2_float_matvec(weight, columns, row_begin, row_end, x, m, ldx, y, ldy);
        else avx2_matvec(format, weight, columns, row_begin, row_end, x, m, ldx, y, ldy);
        return;
    }
#endif
    (void)path;
    portable_matvec(format, weight, columns, row_begin, row_end, x, m, ldx, y, ldy);
}

void craft_half_matvec(int format, const uint16_t *weight, size_t columns, size_t row_begin, size_t row_end,
                       const float *x, size_t m, size_t ldx, float *y, size_t ldy) {
    craft_matvec_on(craft_matvec_path(), format, weight, columns, row_begin, row_end, x, m, ldx, y, ldy);
}

void craft_float_matvec(const float *weight, size_t columns, size_t row_begin, size_t row_end,
                        const float *x, size_t m, size_t ldx, float *y, size_t ldy) {
    craft_matvec_on(craft_matvec_path(), CRAFT_FLOAT32_WEIGHTS, weight, columns, row_begin, row_end, x, m, ldx, y, ldy);
}

// One pass over the weight's rows per block of columns: each row's slice is used by every vector
// while it is in cache, and each output sums its terms in k order (the compiler vectorises across
// columns, which does not reorder any one output's sum).
void craft_float_vecmat(const float *weight, size_t rows, size_t columns, size_t column_begin, size_t column_end,
                        const float *x, size_t m, size_t ldx, float *y, size_t ldy) {
    const size_t block = 512;
    for (size_t start = column_begin; start < column_end; start += block) {
        size_t end = start + block < column_end ? start + block : column_end;
        for (size_t k = 0; k < rows; k++) {
            const float *w = weight + k * columns;
            for (size_t i = 0; i < m; i++) {
                float scale = x[i * ldx + k];
                float *out = y + i * ldy;
                for (size_t c = start; c < end; c++) out[c] += scale * w[c];
            }
        }
    }
}

const char *craft_half_kernel_name(void) {
    return craft_matvec_path() == CRAFT_PATH_AVX2 ? "avx2-fma-f16c" : "portable";
}

// MARK: - Q8_0 (ggml's 8-bit blocks)

static inline float q8_0_scale(const uint8_t *block) {
    uint16_t bits = (uint16_t)(block[0] | (block[1] << 8));
    return to_float(CRAFT_HALF_FLOAT16, bits);
}

void craft_q8_0_to_float(const uint8_t *source, float *destination, size_t blocks) {
    for (size_t b = 0; b < blocks; b++) {
        const uint8_t *block = source + b * CRAFT_Q8_0_BLOCK_BYTES;
        const float d = q8_0_scale(block);
        for (size_t i = 0; i < CRAFT_Q8_0_BLOCK_VALUES; i++) destination[b * 32 + i] = (float)(int8_t)block[2 + i] * d;
    }
}

static void portable_q8_0_matvec(const uint8_t *weight, size_t columns, size_t row_begin, size_t row_end,
                                 const float *x, size_t m, size_t ldx, float *y, size_t ldy) {
    const size_t blocks = columns / CRAFT_Q8_0_BLOCK_VALUES;
    for (size_t row = row_begin; row < row_end; row++) {
        const uint8_t *w = weight + row * blocks * CRAFT_Q8_0_BLOCK_BYTES;
        for (size_t i = 0; i < m; i++) {
            const float *v = x + i * ldx;
            float total = 0;
            for (size_t b = 0; b < blocks; b++) {
                const uint8_t *block = w + b * CRAFT_Q8_0_BLOCK_BYTES;
                float sum = 0;
                for (size_t j = 0; j < 32; j++) sum += (float)(int8_t)block[2 + j] * v[b * 32 + j];
                total += q8_0_scale(block) * sum;
            }
            y[i * ldy + row] += total;
        }
    }
}

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
// Per (row, vector): each block's 32 products summed into one 8-lane vector (two multiply-add pairs
// and an add), scaled by the block's d into one of two running totals
// (even and odd blocks: two independent chains), then the two totals added and summed across lanes.
// The block's values are converted once and used by up to 4 vectors while in registers.
// One block's 32 products with vector `xv`, summed into 8 lanes: two independent multiply-add pairs
// (values 0-15 and 16-31) and an add, a short dependency chain (decoding one vector is bound by
// latency otherwise).
CRAFT_AVX2 __attribute__((always_inline)) static inline __m256 q8_0_block_products(
    __m256 q0, __m256 q1, __m256 q2, __m256 q3, const float *xv) {
    const __m256 a = _mm256_fmadd_ps(q1, _mm256_loadu_ps(xv + 8), _mm256_mul_ps(q0, _mm256_loadu_ps(xv)));
    const __m256 b = _mm256_fmadd_ps(q3, _mm256_loadu_ps(xv + 24), _mm256_mul_ps(q2, _mm256_loadu_ps(xv + 16)));
    return _mm256_add_ps(a, b);
}

// The scale (by F16C, exact) and the 32 values of a block as four 8-lane float vectors, each 8 bytes
// sign-extended as loaded.
#define CRAFT_Q8_0_UNPACK(block, d, q0, q1, q2, q3) \
    const __m256 d = _mm256_set1_ps(_cvtsh_ss((unsigned short)((block)[0] | ((block)[1] << 8)))); \
    const __m256 q0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)((block) + 2)))); \
    const __m256 q1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)((block) + 10)))); \
    const __m256 q2 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)((block) + 18)))); \
    const __m256 q3 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)((block) + 26))))

// Per (row, vector): each block's products (q8_0_block_products) scaled by the block's d into one
// of two running totals, even blocks into the first and odd into the second (two independent chains,
// unrolled so both stay in registers), then the two totals added and summed across lanes. A block's
// values are converted once and used by up to 4 vectors while in registers.
CRAFT_AVX2 __attribute__((always_inline)) static inline void avx2_q8_0_row(
    const uint8_t *w, size_t blocks, const float *x, size_t ldx, int V, float *y, size_t ldy, size_t row) {
    __m256 even[4], odd[4];
    for (int v = 0; v < V; v++) even[v] = odd[v] = _mm256_setzero_ps();
    size_t b = 0;
    for (; b + 2 <= blocks; b += 2) {
        const uint8_t *first = w + b * CRAFT_Q8_0_BLOCK_BYTES, *second = first + CRAFT_Q8_0_BLOCK_BYTES;
        CRAFT_Q8_0_UNPACK(first, d0, a0, a1, a2, a3);
        CRAFT_Q8_0_UNPACK(second, d1, c0, c1, c2, c3);
        for (int v = 0; v < V; v++) {
            const float *xv = x + v * ldx + b * 32;
            even[v] = _mm256_fmadd_ps(d0, q8_0_block_products(a0, a1, a2, a3, xv), even[v]);
            odd[v] = _mm256_fmadd_ps(d1, q8_0_block_products(c0, c1, c2, c3, xv + 32), odd[v]);
        }
    }
    if (b < blocks) {
        const uint8_t *last = w + b * CRAFT_Q8_0_BLOCK_BYTES;
        CRAFT_Q8_0_UNPACK(last, d0, a0, a1, a2, a3);
        for (int v = 0; v < V; v++) even[v] = _mm256_fmadd_ps(d0, q8_0_block_products(a0, a1, a2, a3, x + v * ldx + b * 32), even[v]);
    }
    for (int v = 0; v < V; v++) y[v * ldy + row] += sum8(_mm256_add_ps(even[v], odd[v]));
}

CRAFT_AVX2 static void avx2_q8_0_matvec(const uint8_t *weight, size_t columns, size_t row_begin, size_t row_end,
                                        const float *x, size_t m, size_t ldx, float *y, size_t ldy) {
    const size_t blocks = columns / CRAFT_Q8_0_BLOCK_VALUES;
    for (size_t row = row_begin; row < row_end; row++) {
        const uint8_t *w = weight + row * blocks * CRAFT_Q8_0_BLOCK_BYTES;
        for (size_t g = 0; g < m; g += 4) {
            const float *v = x + g * ldx;
            float *out = y + g * ldy;
            switch (m - g < 4 ? m - g : 4) {
            case 1: avx2_q8_0_row(w, blocks, v, ldx, 1, out, ldy, row); break;
            case 2: avx2_q8_0_row(w, blocks, v, ldx, 2, out, ldy, row); break;
            case 3: avx2_q8_0_row(w, blocks, v, ldx, 3, out, ldy, row); break;
            default: avx2_q8_0_row(w, blocks, v, ldx, 4, out, ldy, row); break;
            }
        }
    }
}
#endif

void craft_q8_0_matvec(const uint8_t *weight, size_t columns, size_t row_begin, size_t row_end,
                       const float *x, size_t m, size_t ldx, float *y, size_t ldy) {
#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
    if (has_avx2()) {
        avx2_q8_0_matvec(weight, columns, row_begin, row_end, x, m, ldx, y, ldy);
        return;
    }
#endif
    portable_q8_0_matvec(weight, columns, row_begin, row_end, x, m, ldx, y, ldy);
}
