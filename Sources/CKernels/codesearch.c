// The int8 first pass of the exact nearest-code search (CraftCore's Codebook.quantize); the contract
// is in include/CKernels.h. Codes and queries are rounded to int8 with one scale per vector; their
// integer dot products are exact (int32), and the scores built from them are within a bound the
// caller computes from the rounding errors this file reports, so the caller can re-rank every code
// that might be the nearest and return exactly what the float32 pass returns. Three paths: AVX-512
// VNNI (VPDPBUSD, 64 multiply-adds per instruction), AVX2 (VPMADDUBSW + VPMADDWD, queries within ±63)
// and portable C; they write the same bits. Also the candidate selection of both passes
// (craft_nearest_candidates) and the float32 dot product of the int8 pass's second filter.
#include "CKernels.h"
#include "internal.h"

#include <math.h>
#include <string.h>

size_t craft_int8_padded_dimension(size_t dimension) { return (dimension + 3) & ~(size_t)3; }

size_t craft_int8_padded_entries(size_t entries) {
    return (entries + CRAFT_INT8_PANEL - 1) / CRAFT_INT8_PANEL * CRAFT_INT8_PANEL;
}

void craft_int8_quantize_rows(const float *x, size_t rows, size_t dimension, size_t ldx, int limit, int8_t *q,
                              float *scales, int32_t *sums, double *rounded_norms, double *error_norms) {
    const float top = (float)limit;
    size_t padded = craft_int8_padded_dimension(dimension);
    for (size_t row = 0; row < rows; row++) {
        const float *v = x + row * ldx;
        int8_t *out = q + row * padded;
        float largest = 0;
        for (size_t i = 0; i < dimension; i++) {
            float a = fabsf(v[i]);
            if (a > largest) largest = a;
        }
        // q_i = round(v_i · limit / max|v|); the reconstruction is scale · q_i with scale = max|v| / limit.
        // Whatever the rounding, the errors below are measured, not assumed.
        float scale = largest / top, inverse = largest > 0 ? top / largest : 0.0f;
        int32_t sum = 0;
        double rounded = 0, error = 0;
        for (size_t i = 0; i < dimension; i++) {
            long value = lrintf(v[i] * inverse);
            if (value > limit) value = limit;
            if (value < -limit) value = -limit;
            out[i] = (int8_t)value;
            sum += (int32_t)value;
            double reconstructed = (double)scale * (double)value;  // exact: 24 × 8 bits
            double difference = (double)v[i] - reconstructed;      // exact or nearly: both near v_i
            rounded += reconstructed * reconstructed;
            error += difference * difference;
        }
        for (size_t i = dimension; i < padded; i++) out[i] = 0;
        scales[row] = scale;
        sums[row] = sum;
        // Rounded up past float64's own summation error (under D · 2⁻⁵³ relative).
        rounded_norms[row] = sqrt(rounded) * (1 + 1e-9);
        error_norms[row] = sqrt(error) * (1 + 1e-9);
    }
}

void craft_int8_pack_codes(const int8_t *q, size_t entries, size_t dimension, uint8_t *packed) {
    size_t padded = craft_int8_padded_dimension(dimension), groups = padded / 4;
    size_t panels = craft_int8_padded_entries(entries) / CRAFT_INT8_PANEL;
    // Panel p, group g: 256 bytes; byte 64·b + 4·l + k is component 4g + k of code 64p + 16b + l,
    // offset by 128 into an unsigned byte. Padding codes are 128 (zero).
    memset(packed, 128, panels * groups * 256);
    for (size_t code = 0; code < entries; code++) {
        size_t panel = code / CRAFT_INT8_PANEL, within = code % CRAFT_INT8_PANEL;
        size_t block = within / 16, lane = within % 16;
        for (size_t g = 0; g < groups; g++) {
            uint8_t *destination = packed + (panel * groups + g) * 256 + block * 64 + lane * 4;
            for (size_t k = 0; k < 4; k++) destination[k] = (uint8_t)((int)q[code * padded + 4 * g + k] + 128);
        }
    }
}

// MARK: - Portable

void craft_int8_scores_portable(const int8_t *queries, const int32_t *query_sums, const float *query_scales,
                                size_t rows, const uint8_t *packed, const float *code_scales, size_t code_begin,
                                size_t code_count, size_t dimension, float *tile, size_t ldt) {
    size_t padded = craft_int8_padded_dimension(dimension), groups = padded / 4;
    for (size_t row = 0; row < rows; row++) {
        const int8_t *query = queries + row * padded;
        float factor = -2.0f * query_scales[row];
        for (size_t j = 0; j < code_count; j++) {
            size_t code = code_begin + j;
            size_t panel = code / CRAFT_INT8_PANEL, within = code % CRAFT_INT8_PANEL;
            const uint8_t *column = packed + panel * groups * 256 + (within / 16) * 64 + (within % 16) * 4;
            int32_t accumulator = 0;
            for (size_t g = 0; g < groups; g++)
                for (size_t k = 0; k < 4; k++)
                    accumulator += (int32_t)column[g * 256 + k] * (int32_t)query[4 * g + k];
            float value = (float)(accumulator - 128 * query_sums[row]);
            value = value * factor;
            tile[row * ldt + j] = value * code_scales[code];
        }
    }
}

// MARK: - AVX-512 VNNI

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#define CRAFT_CODESEARCH_X86 1
#define VNNI_ATTR __attribute__((target("avx512f,avx512vnni")))

static int has_vnni(void) {
    static int cached = -1;
    int value = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (value < 0) {
        __builtin_cpu_init();
        value = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vnni") && craft_max_isa() >= CRAFT_PATH_AVX512;
        __atomic_store_n(&cached, value, __ATOMIC_RELAXED);
    }
    return value;
}

/// `ROWS` query rows against one panel of 64 codes: 4·ROWS accumulators of 16 int32 lanes.
#define VNNI_PANEL_KERNEL(ROWS)                                                                        \
    VNNI_ATTR static void vnni_panel_##ROWS(const int8_t *queries, size_t padded, const int32_t *sums,   \
                                            const float *scales, const uint8_t *panel, size_t groups,   \
                                            const float *code_scales, size_t count, float *tile,        \
                                            size_t ldt) {                                               \
        __m512i accumulators[ROWS][4];                                                                  \
        for (int r = 0; r < ROWS; r++)                                                                  \
            for (int b = 0; b < 4; b++) accumulators[r][b] = _mm512_setzero_si512();                     \
        for (size_t g = 0; g < groups; g++) {                                                           \
            const uint8_t *source = panel + g * 256;                                                    \
            __m512i c0 = _mm512_loadu_si512(source), c1 = _mm512_loadu_si512(source + 64);              \
            __m512i c2 = _mm512_loadu_si512(source + 128), c3 = _mm512_loadu_si512(source + 192);       \
            for (int r = 0; r < ROWS; r++) {                                                            \
                int32_t word;                                                                           \
                memcpy(&word, queries + r * padded + 4 * g, 4);                                         \
                __m512i q = _mm512_set1_epi32(word);                                                    \
                accumulators[r][0] = _mm512_dpbusd_epi32(accumulators[r][0], c0, q);                    \
                accumulators[r][1] = _mm512_dpbusd_epi32(accumulators[r][1], c1, q);                    \
                accumulators[r][2] = _mm512_dpbusd_epi32(accumulators[r][2], c2, q);                    \
                accumulators[r][3] = _mm512_dpbusd_epi32(accumulators[r][3], c3, q);                    \
            }                                                                                           \
        }                                                                                               \
        for (int r = 0; r < ROWS; r++) {                                                                \
            __m512i offset = _mm512_set1_epi32(128 * sums[r]);                                          \
            __m512 factor = _mm512_set1_ps(-2.0f * scales[r]);                                          \
            for (int b = 0; b < 4; b++) {                                                               \
                size_t first = (size_t)b * 16;                                                          \
                if (first >= count) break;                                                              \
                size_t lanes = count - first < 16 ? count - first : 16;                                 \
                __mmask16 mask = (__mmask16)((1u << lanes) - 1u);                                       \
                __m512 value = _mm512_cvtepi32_ps(_mm512_sub_epi32(accumulators[r][b], offset));        \
                value = _mm512_mul_ps(value, factor);                                                   \
                value = _mm512_mul_ps(value, _mm512_loadu_ps(code_scales + first));                    \
                _mm512_mask_storeu_ps(tile + r * ldt + first, mask, value);                             \
            }                                                                                           \
        }                                                                                               \
    }

VNNI_PANEL_KERNEL(4)
VNNI_PANEL_KERNEL(1)
#define ROWS_WIDE 4
#define VNNI_WIDE vnni_panel_4

VNNI_ATTR static void vnni_scores(const int8_t *queries, const int32_t *query_sums, const float *query_scales,
                                  size_t rows, const uint8_t *packed, const float *code_scales, size_t code_begin,
                                  size_t code_count, size_t dimension, float *tile, size_t ldt) {
    size_t padded = craft_int8_padded_dimension(dimension), groups = padded / 4;
    size_t first_panel = code_begin / CRAFT_INT8_PANEL;
    size_t panels = (code_count + CRAFT_INT8_PANEL - 1) / CRAFT_INT8_PANEL;
    for (size_t row = 0; row < rows;) {
        // Groups of ROWS_WIDE rows share each load of a code panel; the last rows go one by one.
        size_t take = rows - row >= ROWS_WIDE ? ROWS_WIDE : 1;
        for (size_t p = 0; p < panels; p++) {
            size_t count = code_count - p * CRAFT_INT8_PANEL;
            if (count > CRAFT_INT8_PANEL) count = CRAFT_INT8_PANEL;
            (take == ROWS_WIDE ? VNNI_WIDE : vnni_panel_1)(
                queries + row * padded, padded, query_sums + row, query_scales + row,
                packed + (first_panel + p) * groups * 256, groups, code_scales + code_begin + p * CRAFT_INT8_PANEL,
                count, tile + row * ldt + p * CRAFT_INT8_PANEL, ldt);
        }
        row += take;
    }
}

// MARK: - AVX2

// VPMADDUBSW multiplies unsigned code bytes by signed query bytes and adds pairs into 16 bits with
// saturation; with query values within ±63 a pair is at most 2 · 255 · 63 = 32 130, so it never
// saturates (craft_int8_query_limit). VPMADDWD by ones then adds the pairs of pairs into the same
// 32-bit sums VPDPBUSD makes. A micro-kernel: 2 rows × 32 codes, 8 accumulators.
#define AVX2_INT8_ATTR __attribute__((target("avx2,fma")))

#define AVX2_PANEL_KERNEL(ROWS)                                                                        \
    AVX2_INT8_ATTR static void avx2_int8_block_##ROWS(const int8_t *queries, size_t padded, const int32_t *sums, \
                                                      const float *scales, const uint8_t *panel, size_t half,     \
                                                      size_t groups, const float *code_scales, size_t count,      \
                                                      float *tile, size_t ldt) {                                  \
        __m256i accumulators[ROWS][4];                                                                  \
        const __m256i ones = _mm256_set1_epi16(1);                                                      \
        for (int r = 0; r < ROWS; r++)                                                                  \
            for (int b = 0; b < 4; b++) accumulators[r][b] = _mm256_setzero_si256();                     \
        for (size_t g = 0; g < groups; g++) {                                                           \
            const uint8_t *source = panel + g * 256 + half * 128;                                       \
            __m256i c[4];                                                                               \
            for (int b = 0; b < 4; b++) c[b] = _mm256_loadu_si256((const __m256i *)(source + 32 * b));   \
            for (int r = 0; r < ROWS; r++) {                                                            \
                int32_t word;                                                                           \
                memcpy(&word, queries + r * padded + 4 * g, 4);                                         \
                const __m256i q = _mm256_set1_epi32(word);                                              \
                for (int b = 0; b < 4; b++)                                                             \
                    accumulators[r][b] = _mm256_add_epi32(                                              \
                        accumulators[r][b], _mm256_madd_epi16(_mm256_maddubs_epi16(c[b], q), ones));     \
            }                                                                                           \
        }                                                                                               \
        for (int r = 0; r < ROWS; r++) {                                                                \
            const __m256i offset = _mm256_set1_epi32(128 * sums[r]);                                    \
            const __m256 factor = _mm256_set1_ps(-2.0f * scales[r]);                                    \
            for (int b = 0; b < 4; b++) {                                                               \
                size_t first = (size_t)b * 8;                                                           \
                if (first >= count) break;                                                              \
                float values[8];                                                                        \
                __m256 value = _mm256_cvtepi32_ps(_mm256_sub_epi32(accumulators[r][b], offset));        \
                value = _mm256_mul_ps(value, factor);                                                   \
                value = _mm256_mul_ps(value, _mm256_loadu_ps(code_scales + first));                     \
                if (count - first >= 8) {                                                               \
                    _mm256_storeu_ps(tile + r * ldt + first, value);                                    \
                } else {                                                                                \
                    _mm256_storeu_ps(values, value);                                                    \
                    memcpy(tile + r * ldt + first, values, (count - first) * sizeof(float));            \
                }                                                                                       \
            }                                                                                           \
        }                                                                                               \
    }

AVX2_PANEL_KERNEL(2)
AVX2_PANEL_KERNEL(1)

AVX2_INT8_ATTR static void avx2_int8_scores(const int8_t *queries, const int32_t *query_sums, const float *query_scales,
                                            size_t rows, const uint8_t *packed, const float *code_scales,
                                            size_t code_begin, size_t code_count, size_t dimension, float *tile,
                                            size_t ldt) {
    size_t padded = craft_int8_padded_dimension(dimension), groups = padded / 4;
    size_t first_panel = code_begin / CRAFT_INT8_PANEL;
    size_t blocks = (code_count + 31) / 32;  // half panels of 32 codes
    for (size_t row = 0; row < rows;) {
        size_t take = rows - row >= 2 ? 2 : 1;
        for (size_t b = 0; b < blocks; b++) {
            size_t count = code_count - b * 32;
            if (count > 32) count = 32;
            (take == 2 ? avx2_int8_block_2 : avx2_int8_block_1)(
                queries + row * padded, padded, query_sums + row, query_scales + row,
                packed + (first_panel + b / 2) * groups * 256, b % 2, groups, code_scales + code_begin + b * 32,
                count, tile + row * ldt + b * 32, ldt);
        }
        row += take;
    }
}

#define AVX512_ATTR __attribute__((target("avx512f")))

AVX512_ATTR static size_t avx512_candidates(const float *scores, const float *norms, size_t count, float *best,
                                            float margin, uint32_t *indices) {
    __m512 lanes = _mm512_set1_ps(INFINITY);
    size_t i = 0;
    for (; i + 16 <= count; i += 16) {
        __m512 value = _mm512_add_ps(_mm512_loadu_ps(scores + i), _mm512_loadu_ps(norms + i));
        lanes = _mm512_mask_mov_ps(lanes, _mm512_cmp_ps_mask(value, lanes, _CMP_LT_OQ), value);
    }
    float minimum = _mm512_reduce_min_ps(lanes);
    for (size_t j = i; j < count; j++) {
        float value = scores[j] + norms[j];
        if (value < minimum) minimum = value;
    }
    float threshold = (minimum < *best ? minimum : *best) + margin;
    if (!(minimum <= threshold)) return 0;
    if (minimum < *best) *best = minimum;
    size_t found = 0;
    __m512 limit = _mm512_set1_ps(threshold);
    __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (i = 0; i + 16 <= count; i += 16) {
        __m512 value = _mm512_add_ps(_mm512_loadu_ps(scores + i), _mm512_loadu_ps(norms + i));
        __mmask16 mask = _mm512_cmp_ps_mask(value, limit, _CMP_LE_OQ);
        if (mask) {
            _mm512_mask_compressstoreu_epi32(indices + found, mask, _mm512_add_epi32(lane, _mm512_set1_epi32((int)i)));
            found += (size_t)__builtin_popcount(mask);
        }
    }
    for (; i < count; i++)
        if (scores[i] + norms[i] <= threshold) indices[found++] = (uint32_t)i;
    return found;
}

AVX512_ATTR static float avx512_dot(const float *a, const float *b, size_t count) {
    __m512 sum = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= count; i += 16) sum = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), sum);
    float result = _mm512_reduce_add_ps(sum);
    for (; i < count; i++) result += a[i] * b[i];
    return result;
}
#endif

// Four lanes of the compiler's generic vectors (SSE2 on x86-64, NEON on arm64): compare and select,
// so NaN sums are skipped as in the AVX-512 path.
typedef float craft_f4 __attribute__((vector_size(16)));
typedef int32_t craft_i4 __attribute__((vector_size(16)));

static inline craft_f4 load4(const float *p) {
    craft_f4 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static size_t portable_candidates(const float *scores, const float *norms, size_t count, float *best, float margin,
                                  uint32_t *indices) {
    craft_f4 lanes0 = {INFINITY, INFINITY, INFINITY, INFINITY}, lanes1 = lanes0;
    size_t i = 0;
    for (; i + 8 <= count; i += 8) {
        craft_f4 a = load4(scores + i) + load4(norms + i), b = load4(scores + i + 4) + load4(norms + i + 4);
        craft_i4 ma = a < lanes0, mb = b < lanes1;
        lanes0 = (craft_f4)(((craft_i4)a & ma) | ((craft_i4)lanes0 & ~ma));
        lanes1 = (craft_f4)(((craft_i4)b & mb) | ((craft_i4)lanes1 & ~mb));
    }
    float minimum = INFINITY;
    for (int k = 0; k < 4; k++) {
        if (lanes0[k] < minimum) minimum = lanes0[k];
        if (lanes1[k] < minimum) minimum = lanes1[k];
    }
    for (; i < count; i++) {
        float value = scores[i] + norms[i];
        if (value < minimum) minimum = value;
    }
    float threshold = (minimum < *best ? minimum : *best) + margin;
    if (!(minimum <= threshold)) return 0;
    if (minimum < *best) *best = minimum;
    size_t found = 0;
    craft_f4 limit = {threshold, threshold, threshold, threshold};
    for (i = 0; i + 4 <= count; i += 4) {
        craft_i4 mask = (load4(scores + i) + load4(norms + i)) <= limit;
        if (!(mask[0] | mask[1] | mask[2] | mask[3])) continue;
        for (size_t k = 0; k < 4; k++)
            if (mask[k]) indices[found++] = (uint32_t)(i + k);
    }
    for (; i < count; i++)
        if (scores[i] + norms[i] <= threshold) indices[found++] = (uint32_t)i;
    return found;
}

static int use_avx512(void) {
#ifdef CRAFT_CODESEARCH_X86
    return craft_elementwise_path() == CRAFT_PATH_AVX512;
#else
    return 0;
#endif
}

size_t craft_nearest_candidates(const float *scores, const float *norms, size_t count, float *best, float margin,
                                uint32_t *indices) {
#ifdef CRAFT_CODESEARCH_X86
    if (use_avx512()) return avx512_candidates(scores, norms, count, best, margin, indices);
#endif
    return portable_candidates(scores, norms, count, best, margin, indices);
}

size_t craft_nearest_candidates_portable(const float *scores, const float *norms, size_t count, float *best,
                                         float margin, uint32_t *indices) {
    return portable_candidates(scores, norms, count, best, margin, indices);
}

float craft_dot(const float *a, const float *b, size_t count) {
#ifdef CRAFT_CODESEARCH_X86
    if (use_avx512()) return avx512_dot(a, b, count);
#endif
    float sum[4] = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= count; i += 4)
        for (int k = 0; k < 4; k++) sum[k] += a[i + k] * b[i + k];
    float result = (sum[0] + sum[1]) + (sum[2] + sum[3]);
    for (; i < count; i++) result += a[i] * b[i];
    return result;
}

// MARK: - Dispatch

int craft_int8_search_path(void) {
#ifdef CRAFT_CODESEARCH_X86
    if (has_vnni()) return CRAFT_PATH_AVX512;
    if (craft_cpu_has_avx2()) return CRAFT_PATH_AVX2;
#endif
    return CRAFT_PATH_PORTABLE;
}

int craft_int8_search_fast(void) { return craft_int8_search_path() != CRAFT_PATH_PORTABLE; }

int craft_int8_query_limit(int path) { return path == CRAFT_PATH_AVX2 ? 63 : 127; }

const char *craft_int8_search_kernel_name(void) {
    switch (craft_int8_search_path()) {
    case CRAFT_PATH_AVX512: return "avx512-vnni";
    case CRAFT_PATH_AVX2: return "avx2";
    default: return "portable";
    }
}

void craft_int8_scores_on(int path, const int8_t *queries, const int32_t *query_sums, const float *query_scales,
                          size_t rows, const uint8_t *packed, const float *code_scales, size_t code_begin,
                          size_t code_count, size_t dimension, float *tile, size_t ldt) {
#ifdef CRAFT_CODESEARCH_X86
    if (path == CRAFT_PATH_AVX512) {
        vnni_scores(queries, query_sums, query_scales, rows, packed, code_scales, code_begin, code_count,
                    dimension, tile, ldt);
        return;
    }
    if (path == CRAFT_PATH_AVX2) {
        avx2_int8_scores(queries, query_sums, query_scales, rows, packed, code_scales, code_begin, code_count,
                         dimension, tile, ldt);
        return;
    }
#endif
    (void)path;
    craft_int8_scores_portable(queries, query_sums, query_scales, rows, packed, code_scales, code_begin,
                               code_count, dimension, tile, ldt);
}

void craft_int8_scores(const int8_t *queries, const int32_t *query_sums, const float *query_scales, size_t rows,
                       const uint8_t *packed, const float *code_scales, size_t code_begin, size_t code_count,
                       size_t dimension, float *tile, size_t ldt) {
    craft_int8_scores_on(craft_int8_search_path(), queries, query_sums, query_scales, rows, packed, code_scales,
                         code_begin, code_count, dimension, tile, ldt);
}
