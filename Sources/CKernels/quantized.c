// Kernels over ggml's quantized blocks other than Q8_0 (Q4_0, Q4_K, Q5_K, Q6_K); the contract is in
// include/CKernels.h. Block layouts follow ggml (ggml-common.h) and gguf-py's reference dequantizer.
#include "CKernels.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

// Dequantization must give gguf-py's values bit for bit: no fused multiply-add contraction here.
#pragma STDC FP_CONTRACT OFF

static inline float f16_at(const uint8_t *p) { return craft_f16_to_float((uint16_t)(p[0] | (p[1] << 8))); }

/// The 12 packed scale bytes of Q4_K/Q5_K as 8 six-bit scales then 8 six-bit minimums, one per
/// sub-block of 32 (llama.cpp's unpacking with 32-bit masks).
static inline void unpack_k4_scales(const uint8_t *packed, uint8_t out[16]) {
    uint32_t u[4];
    memcpy(u, packed, 12);
    const uint32_t mask1 = 0x3f3f3f3f, mask2 = 0x0f0f0f0f, mask3 = 0x03030303;
    u[3] = ((u[2] >> 4) & mask2) | (((u[1] >> 6) & mask3) << 4);
    const uint32_t minimums = u[1] & mask1;
    u[1] = (u[2] & mask2) | (((u[0] >> 6) & mask3) << 4);
    u[2] = minimums;
    u[0] &= mask1;
    memcpy(out, u, 16);
}

size_t craft_quant_block_values(int format) {
    switch (format) {
    case CRAFT_QUANT_Q8_0: case CRAFT_QUANT_Q4_0: return 32;
    default: return 256;
    }
}

size_t craft_quant_block_bytes(int format) {
    switch (format) {
    case CRAFT_QUANT_Q8_0: return CRAFT_Q8_0_BLOCK_BYTES;
    case CRAFT_QUANT_Q4_0: return 18;
    case CRAFT_QUANT_Q4_K: return 144;
    case CRAFT_QUANT_Q5_K: return 176;
    default: return 210;
    }
}

// MARK: - Dequantization (exact, gguf-py's operations in its order)

static void q4_0_to_float(const uint8_t *block, float *out) {
    const float d = f16_at(block);
    for (int i = 0; i < 16; i++) {
        out[i] = d * (float)((int)(block[2 + i] & 0x0F) - 8);
        out[16 + i] = d * (float)((int)(block[2 + i] >> 4) - 8);
    }
}

static void q4_k_to_float(const uint8_t *block, float *out, int fifth_bits) {
    const float d = f16_at(block), dmin = f16_at(block + 2);
    const uint8_t *qh = block + 16, *qs = block + (fifth_bits ? 48 : 16);
    uint8_t sm[16];
    unpack_k4_scales(block + 4, sm);
    for (int s = 0; s < 8; s++) {
        const float factor = d * (float)sm[s], offset = dmin * (float)sm[8 + s];
        const uint8_t *group = qs + (s / 2) * 32;
        const int shift = (s % 2) * 4;
        for (int i = 0; i < 32; i++) {
            int q = (group[i] >> shift) & 0x0F;
            if (fifth_bits) q |= ((qh[i] >> s) & 1) << 4;
            const float product = factor * (float)q;
            out[s * 32 + i] = product - offset;
        }
    }
}

static void q6_k_to_float(const uint8_t *block, float *out) {
    const float d = f16_at(block + 208);
    for (int half = 0; half < 2; half++) {
        for (int i = 0; i < 128; i++) {
            const int position = half * 128 + i;
            const int low = (block[half * 64 + i % 64] >> ((i / 64) * 4)) & 0x0F;
            const int high = (block[128 + half * 32 + i % 32] >> ((i / 32) * 2)) & 0x03;
            const float scale = (float)(int8_t)block[192 + position / 16];
            const float factor = d * scale;
            out[position] = factor * (float)((low | (high << 4)) - 32);
        }
    }
}

void craft_quant_to_float(int format, const uint8_t *source, float *destination, size_t blocks) {
    if (format == CRAFT_QUANT_Q8_0) {
        craft_q8_0_to_float(source, destination, blocks);
        return;
    }
    const size_t values = craft_quant_block_values(format), bytes = craft_quant_block_bytes(format);
    for (size_t b = 0; b < blocks; b++) {
        const uint8_t *block = source + b * bytes;
        float *out = destination + b * values;
        switch (format) {
        case CRAFT_QUANT_Q4_0: q4_0_to_float(block, out); break;
        case CRAFT_QUANT_Q4_K: q4_k_to_float(block, out, 0); break;
        case CRAFT_QUANT_Q5_K: q4_k_to_float(block, out, 1); break;
        default: q6_k_to_float(block, out); break;
        }
    }
}

// MARK: - Portable products
//
// Per (row, vector), blocks in order; within a block the integer-valued weights' products are
// summed per scale group and scaled once: Q4_0 `d · Σ (q − 8) x`; Q4_K/Q5_K per sub-block of 32
// `(d · scale) · Σ q x − (dmin · min) · Σ x`; Q6_K per group of 16 `(d · scale) · Σ (q − 32) x`.

static float portable_q4_0_row(const uint8_t *w, size_t blocks, const float *x) {
    float total = 0;
    for (size_t b = 0; b < blocks; b++) {
        const uint8_t *block = w + b * 18;
        const float *v = x + b * 32;
        float sum = 0;
        for (int i = 0; i < 16; i++) sum += (float)((int)(block[2 + i] & 0x0F) - 8) * v[i];
        for (int i = 0; i < 16; i++) sum += (float)((int)(block[2 + i] >> 4) - 8) * v[16 + i];
        total += f16_at(block) * sum;
    }
    return total;
}

static float portable_q4_k_row(const uint8_t *w, size_t blocks, const float *x, int fifth_bits) {
    const size_t bytes = fifth_bits ? 176 : 144;
    float total = 0;
    for (size_t b = 0; b < blocks; b++) {
        const uint8_t *block = w + b * bytes;
        const float d = f16_at(block), dmin = f16_at(block + 2);
        const uint8_t *qh = block + 16, *qs = block + (fifth_bits ? 48 : 16);
        uint8_t sm[16];
        unpack_k4_scales(block + 4, sm);
        for (int s = 0; s < 8; s++) {
            const float scale = (float)sm[s], minimum = (float)sm[8 + s];
            const uint8_t *group = qs + (s / 2) * 32;
            const int shift = (s % 2) * 4;
            const float *v = x + b * 256 + s * 32;
            float products = 0, sum = 0;
            for (int i = 0; i < 32; i++) {
                int q = (group[i] >> shift) & 0x0F;
                if (fifth_bits) q |= ((qh[i] >> s) & 1) << 4;
                products += (float)q * v[i];
                sum += v[i];
            }
            total += (d * scale) * products - (dmin * minimum) * sum;
        }
    }
    return total;
}

static float portable_q6_k_row(const uint8_t *w, size_t blocks, const float *x) {
    float total = 0;
    for (size_t b = 0; b < blocks; b++) {
        const uint8_t *block = w + b * 210;
        const float d = f16_at(block + 208);
        for (int group = 0; group < 16; group++) {
            float products = 0;
            for (int j = 0; j < 16; j++) {
                const int position = group * 16 + j, half = position / 128, i = position % 128;
                const int low = (block[half * 64 + i % 64] >> ((i / 64) * 4)) & 0x0F;
                const int high = (block[128 + half * 32 + i % 32] >> ((i / 32) * 2)) & 0x03;
                products += (float)((low | (high << 4)) - 32) * x[b * 256 + position];
            }
            total += (d * (float)(int8_t)block[192 + group]) * products;
        }
    }
    return total;
}

static void portable_quant_matvec(int format, const uint8_t *weight, size_t columns, size_t row_begin, size_t row_end,
                                  const float *x, size_t m, size_t ldx, float *y, size_t ldy) {
    const size_t blocks = columns / craft_quant_block_values(format), row_bytes = blocks * craft_quant_block_bytes(format);
    for (size_t row = row_begin; row < row_end; row++) {
        const uint8_t *w = weight + row * row_bytes;
        for (size_t i = 0; i < m; i++) {
            const float *v = x + i * ldx;
            float total;
            switch (format) {
            case CRAFT_QUANT_Q4_0: total = portable_q4_0_row(w, blocks, v); break;
            case CRAFT_QUANT_Q4_K: total = portable_q4_k_row(w, blocks, v, 0); break;
            case CRAFT_QUANT_Q5_K: total = portable_q4_k_row(w, blocks, v, 1); break;
            default: total = portable_q6_k_row(w, blocks, v); break;
            }
            y[i * ldy + row] += total;
        }
    }
}

// MARK: - AVX2 + FMA + F16C products
//
// The same decomposition, 8 values per vector register: a group's weights are unpacked once to
// float and used by up to 4 vectors while in registers; each vector's products go into its own
// accumulators in a fixed order, so a vector's result has the same bits alone or with others.
// Q4_K/Q5_K's `Σ x` per sub-block is computed once per call for every vector.

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#define hsum8 craft_sum8

/// Σ q_t · x_t over four 8-lane groups, as two independent multiply-add pairs and an add (a short
/// dependency chain: decoding one vector is bound by latency otherwise).
CRAFT_AVX2 __attribute__((always_inline)) static inline __m256 products32(
    __m256 q0, __m256 q1, __m256 q2, __m256 q3, const float *x0, const float *x1, const float *x2, const float *x3) {
    const __m256 a = _mm256_fmadd_ps(q1, _mm256_loadu_ps(x1), _mm256_mul_ps(q0, _mm256_loadu_ps(x0)));
    const __m256 b = _mm256_fmadd_ps(q3, _mm256_loadu_ps(x3), _mm256_mul_ps(q2, _mm256_loadu_ps(x2)));
    return _mm256_add_ps(a, b);
}

/// 8 bytes at `p` as eight 32-bit integers.
CRAFT_AVX2 static inline __m256i bytes8(const uint8_t *p) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)); }

CRAFT_AVX2 __attribute__((always_inline)) static inline void avx2_q4_0_rows(
    const uint8_t *w, size_t blocks, const float *x, size_t ldx, int V, float *y, size_t ldy, size_t row) {
    __m256 acc[4];
    for (int v = 0; v < V; v++) acc[v] = _mm256_setzero_ps();
    const __m256i mask = _mm256_set1_epi32(0x0F), eight = _mm256_set1_epi32(8);
    for (size_t b = 0; b < blocks; b++) {
        const uint8_t *block = w + b * 18;
        const __m256i first = bytes8(block + 2), second = bytes8(block + 10);
        const __m256 q0 = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(first, mask), eight));
        const __m256 q1 = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(second, mask), eight));
        const __m256 q2 = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(first, 4), eight));
        const __m256 q3 = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(second, 4), eight));
        const __m256 d = _mm256_set1_ps(_cvtsh_ss((unsigned short)(block[0] | (block[1] << 8))));
        for (int v = 0; v < V; v++) {
            const float *xv = x + v * ldx + b * 32;
            acc[v] = _mm256_fmadd_ps(d, products32(q0, q1, q2, q3, xv, xv + 8, xv + 16, xv + 24), acc[v]);
        }
    }
    for (int v = 0; v < V; v++) y[v * ldy + row] += hsum8(acc[v]);
}

CRAFT_AVX2 __attribute__((always_inline)) static inline void avx2_q4_k_rows(
    const uint8_t *w, size_t blocks, const float *x, size_t ldx, const float *sums, size_t lds, int V, int fifth_bits,
    float *y, size_t ldy, size_t row) {
    const size_t bytes = fifth_bits ? 176 : 144;
    // Two accumulators per vector (even and odd sub-blocks): short dependency chains.
    __m256 even[4], odd[4];
    float offsets[4] = {0, 0, 0, 0};
    for (int v = 0; v < V; v++) even[v] = odd[v] = _mm256_setzero_ps();
    const __m256i mask = _mm256_set1_epi32(0x0F), one = _mm256_set1_epi32(1);
    for (size_t b = 0; b < blocks; b++) {
        const uint8_t *block = w + b * bytes;
        const float d = _cvtsh_ss((unsigned short)(block[0] | (block[1] << 8)));
        const float dmin = _cvtsh_ss((unsigned short)(block[2] | (block[3] << 8)));
        const uint8_t *qh = block + 16, *qs = block + (fifth_bits ? 48 : 16);
        uint8_t sm[16];
        unpack_k4_scales(block + 4, sm);
        for (int j = 0; j < 4; j++) {
            const float scale0 = (float)sm[2 * j], minimum0 = (float)sm[8 + 2 * j];
            const float scale1 = (float)sm[2 * j + 1], minimum1 = (float)sm[8 + 2 * j + 1];
            __m256 qa[4], qc[4];
            for (int t = 0; t < 4; t++) {
                const __m256i packed = bytes8(qs + j * 32 + t * 8);
                __m256i a = _mm256_and_si256(packed, mask), c = _mm256_srli_epi32(packed, 4);
                if (fifth_bits) {
                    const __m256i h = bytes8(qh + t * 8);
                    a = _mm256_or_si256(a, _mm256_slli_epi32(_mm256_and_si256(_mm256_srl_epi32(h, _mm_cvtsi32_si128(2 * j)), one), 4));
                    c = _mm256_or_si256(c, _mm256_slli_epi32(_mm256_and_si256(_mm256_srl_epi32(h, _mm_cvtsi32_si128(2 * j + 1)), one), 4));
                }
                qa[t] = _mm256_cvtepi32_ps(a);
                qc[t] = _mm256_cvtepi32_ps(c);
            }
            const __m256 factor0 = _mm256_set1_ps(d * scale0), factor1 = _mm256_set1_ps(d * scale1);
            const float offset0 = dmin * minimum0, offset1 = dmin * minimum1;
            for (int v = 0; v < V; v++) {
                const float *xv = x + v * ldx + b * 256 + j * 64;
                even[v] = _mm256_fmadd_ps(factor0, products32(qa[0], qa[1], qa[2], qa[3], xv, xv + 8, xv + 16, xv + 24), even[v]);
                odd[v] = _mm256_fmadd_ps(factor1, products32(qc[0], qc[1], qc[2], qc[3], xv + 32, xv + 40, xv + 48, xv + 56), odd[v]);
                const float *s = sums + v * lds + b * 8 + 2 * j;
                offsets[v] += offset0 * s[0] + offset1 * s[1];
            }
        }
    }
    for (int v = 0; v < V; v++) y[v * ldy + row] += hsum8(_mm256_add_ps(even[v], odd[v])) - offsets[v];
}

CRAFT_AVX2 __attribute__((always_inline)) static inline void avx2_q6_k_rows(
    const uint8_t *w, size_t blocks, const float *x, size_t ldx, int V, float *y, size_t ldy, size_t row) {
    // One accumulator per quarter and vector: short dependency chains.
    __m256 acc[4][4];
    for (int quarter = 0; quarter < 4; quarter++) {
        for (int v = 0; v < V; v++) acc[quarter][v] = _mm256_setzero_ps();
    }
    const __m256i mask = _mm256_set1_epi32(0x0F), three = _mm256_set1_epi32(3), bias = _mm256_set1_epi32(32);
    for (size_t b = 0; b < blocks; b++) {
        const uint8_t *block = w + b * 210;
        const float d = _cvtsh_ss((unsigned short)(block[208] | (block[209] << 8)));
        for (int half = 0; half < 2; half++) {
            const uint8_t *ql = block + half * 64, *qh = block + 128 + half * 32;
            const int8_t *scales = (const int8_t *)(block + 192 + half * 8);
            // Groups of 16: l in {0, 16} picks the group within each quarter of 32 values.
            for (int l = 0; l < 32; l += 16) {
                __m256 p[4][4];
                for (int quarter = 0; quarter < 4; quarter++) {
                    for (int v = 0; v < V; v++) p[quarter][v] = _mm256_setzero_ps();
                }
                for (int u = 0; u < 16; u += 8) {
                    const __m256i a = bytes8(ql + l + u), c = bytes8(ql + 32 + l + u), h = bytes8(qh + l + u);
                    __m256 q[4];
                    q[0] = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_or_si256(_mm256_and_si256(a, mask), _mm256_slli_epi32(_mm256_and_si256(h, three), 4)), bias));
                    q[1] = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_or_si256(_mm256_and_si256(c, mask), _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(h, 2), three), 4)), bias));
                    q[2] = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_or_si256(_mm256_srli_epi32(a, 4), _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(h, 4), three), 4)), bias));
                    q[3] = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_or_si256(_mm256_srli_epi32(c, 4), _mm256_slli_epi32(_mm256_srli_epi32(h, 6), 4)), bias));
                    for (int v = 0; v < V; v++) {
                        const float *xv = x + v * ldx + b * 256 + half * 128 + l + u;
                        for (int quarter = 0; quarter < 4; quarter++) {
                            p[quarter][v] = _mm256_fmadd_ps(q[quarter], _mm256_loadu_ps(xv + quarter * 32), p[quarter][v]);
                        }
                    }
                }
                for (int quarter = 0; quarter < 4; quarter++) {
                    const __m256 factor = _mm256_set1_ps(d * (float)scales[quarter * 2 + l / 16]);
                    for (int v = 0; v < V; v++) acc[quarter][v] = _mm256_fmadd_ps(factor, p[quarter][v], acc[quarter][v]);
                }
            }
        }
    }
    for (int v = 0; v < V; v++) {
        y[v * ldy + row] += hsum8(_mm256_add_ps(_mm256_add_ps(acc[0][v], acc[1][v]), _mm256_add_ps(acc[2][v], acc[3][v])));
    }
}

#define CRAFT_BY_VECTORS(call) \
    switch (count) { \
    case 1: { const int V = 1; call; break; } \
    case 2: { const int V = 2; call; break; } \
    case 3: { const int V = 3; call; break; } \
    default: { const int V = 4; call; break; } \
    }

CRAFT_AVX2 static void avx2_quant_matvec(int format, const uint8_t *weight, size_t columns, size_t row_begin, size_t row_end,
                                         const float *x, size_t m, size_t ldx, float *y, size_t ldy) {
    const size_t blocks = columns / craft_quant_block_values(format), row_bytes = blocks * craft_quant_block_bytes(format);
    // Q4_K/Q5_K: Σ x per sub-block of 32, for every vector, once for all rows.
    float *sums = NULL;
    const size_t lds = columns / 32;
    if (format == CRAFT_QUANT_Q4_K || format == CRAFT_QUANT_Q5_K) {
        sums = malloc(sizeof(float) * (m * lds + 1));
        for (size_t i = 0; i < m; i++) {
            for (size_t s = 0; s < lds; s++) {
                const float *v = x + i * ldx + s * 32;
                __m256 total = _mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(v), _mm256_loadu_ps(v + 8)),
                                             _mm256_add_ps(_mm256_loadu_ps(v + 16), _mm256_loadu_ps(v + 24)));
                sums[i * lds + s] = hsum8(total);
            }
        }
    }
    for (size_t row = row_begin; row < row_end; row++) {
        const uint8_t *w = weight + row * row_bytes;
        for (size_t g = 0; g < m; g += 4) {
            const float *v = x + g * ldx;
            float *out = y + g * ldy;
            const size_t count = m - g < 4 ? m - g : 4;
            switch (format) {
            case CRAFT_QUANT_Q4_0: CRAFT_BY_VECTORS(avx2_q4_0_rows(w, blocks, v, ldx, V, out, ldy, row)); break;
            case CRAFT_QUANT_Q4_K: CRAFT_BY_VECTORS(avx2_q4_k_rows(w, blocks, v, ldx, sums + g * lds, lds, V, 0, out, ldy, row)); break;
            case CRAFT_QUANT_Q5_K: CRAFT_BY_VECTORS(avx2_q4_k_rows(w, blocks, v, ldx, sums + g * lds, lds, V, 1, out, ldy, row)); break;
            default: CRAFT_BY_VECTORS(avx2_q6_k_rows(w, blocks, v, ldx, V, out, ldy, row)); break;
            }
        }
    }
    free(sums);
}
#endif

void craft_quant_matvec(int format, const uint8_t *weight, size_t columns, size_t row_begin, size_t row_end,
                        const float *x, size_t m, size_t ldx, float *y, size_t ldy) {
    if (format == CRAFT_QUANT_Q8_0) {
        craft_q8_0_matvec(weight, columns, row_begin, row_end, x, m, ldx, y, ldy);
        return;
    }
#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
    if (craft_cpu_has_avx2()) {
        avx2_quant_matvec(format, weight, columns, row_begin, row_end, x, m, ldx, y, ldy);
        return;
    }
#endif
    portable_quant_matvec(format, weight, columns, row_begin, row_end, x, m, ldx, y, ldy);
}

void craft_quant_matvec_portable(int format, const uint8_t *weight, size_t columns, size_t row_begin, size_t row_end,
                                 const float *x, size_t m, size_t ldx, float *y, size_t ldy) {
    if (format == CRAFT_QUANT_Q8_0) {
        craft_q8_0_matvec(weight, columns, row_begin, row_end, x, m, ldx, y, ldy);
        return;
    }
    portable_quant_matvec(format, weight, columns, row_begin, row_end, x, m, ldx, y, ldy);
}

// MARK: - Integer products over int8 activations
//
// As llama.cpp computes quantized products: each vector is rounded to int8 per group (32 values
// for Q8_0 weights, 256 for the K-quants: `q = round(x · 127 / max|x|)`, scale `max|x| / 127`),
// then the integer products with a block's weights, times the weights' integer sub-block scales,
// are exact 32-bit sums, scaled once per block in float32 by the block scale times the activation
// scale. Q4_K's minimums and Q6_K's offset of 32 use the activations' integer sums per 16 values.

size_t craft_quant_activation_group(int format) { return format == CRAFT_QUANT_Q8_0 ? 32 : 256; }

void craft_quantize_activations(const float *x, size_t m, size_t ldx, size_t columns, size_t group,
                                int8_t *q, float *scales, int16_t *sums) {
    const size_t groups = columns / group;
    for (size_t i = 0; i < m; i++) {
        const float *v = x + i * ldx;
        int8_t *out = q + i * columns;
        for (size_t g = 0; g < groups; g++) {
            float amax = 0;
            for (size_t j = 0; j < group; j++) {
                const float a = __builtin_fabsf(v[g * group + j]);
                amax = a > amax ? a : amax;
            }
            const float inverse = amax > 0 ? 127.0f / amax : 0;
            // Round half to even (the default rounding mode); |x · inverse| ≤ 127 up to rounding.
            for (size_t j = 0; j < group; j++) out[g * group + j] = (int8_t)__builtin_rintf(v[g * group + j] * inverse);
            scales[i * groups + g] = amax / 127.0f;
        }
        for (size_t k = 0; k < columns / 16; k++) {
            int total = 0;
            for (int j = 0; j < 16; j++) total += out[k * 16 + j];
            sums[i * (columns / 16) + k] = (int16_t)total;
        }
    }
}

int craft_quant_has_int8(int format) {
    return format == CRAFT_QUANT_Q8_0 || format == CRAFT_QUANT_Q4_K || format == CRAFT_QUANT_Q6_K;
}

static void portable_int8_matvec(int format, const uint8_t *weight, size_t columns, size_t row_begin, size_t row_end,
                                 const int8_t *q, const float *scales, const int16_t *sums, size_t m, float *y, size_t ldy) {
    const size_t blocks = columns / craft_quant_block_values(format), row_bytes = blocks * craft_quant_block_bytes(format);
    const size_t groups = columns / craft_quant_activation_group(format);
    for (size_t row = row_begin; row < row_end; row++) {
        const uint8_t *w = weight + row * row_bytes;
        for (size_t i = 0; i < m; i++) {
            const int8_t *xq = q + i * columns;
            const float *dx = scales + i * groups;
            const int16_t *bsum = sums + i * (columns / 16);
            float total = 0;
            for (size_t b = 0; b < blocks; b++) {
                if (format == CRAFT_QUANT_Q8_0) {
                    const uint8_t *block = w + b * CRAFT_Q8_0_BLOCK_BYTES;
                    int32_t dot = 0;
                    for (int j = 0; j < 32; j++) dot += (int8_t)block[2 + j] * xq[b * 32 + j];
                    total += (f16_at(block) * dx[b]) * (float)dot;
                } else if (format == CRAFT_QUANT_Q4_K) {
                    const uint8_t *block = w + b * 144;
                    uint8_t sm[16];
                    unpack_k4_scales(block + 4, sm);
                    int32_t dot = 0, minimums = 0;
                    for (int s = 0; s < 8; s++) {
                        const uint8_t *group = block + 16 + (s / 2) * 32;
                        int32_t sub = 0;
                        for (int j = 0; j < 32; j++) sub += ((group[j] >> ((s % 2) * 4)) & 0x0F) * xq[b * 256 + s * 32 + j];
                        dot += sm[s] * sub;
                        minimums += sm[8 + s] * (bsum[b * 16 + 2 * s] + bsum[b * 16 + 2 * s + 1]);
                    }
                    total += (f16_at(block) * dx[b]) * (float)dot - (f16_at(block + 2) * dx[b]) * (float)minimums;
                } else {
                    const uint8_t *block = w + b * 210;
                    int32_t dot = 0, offset = 0;
                    for (int g16 = 0; g16 < 16; g16++) {
                        const int scale = (int8_t)block[192 + g16];
                        int32_t sub = 0;
                        for (int j = 0; j < 16; j++) {
                            const int position = g16 * 16 + j, half = position / 128, k = position % 128;
                            const int low = (block[half * 64 + k % 64] >> ((k / 64) * 4)) & 0x0F;
                            const int high = (block[128 + half * 32 + k % 32] >> ((k / 32) * 2)) & 0x03;
                            sub += (low | (high << 4)) * xq[b * 256 + position];
                        }
                        dot += scale * sub;
                        offset += scale * bsum[b * 16 + g16];
                    }
                    total += (f16_at(block + 208) * dx[b]) * (float)(dot - 32 * offset);
                }
            }
            y[i * ldy + row] += total;
        }
    }
}

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
// One weight row against V (1-4) vectors: a block's weights are unpacked once and used by every
// vector while in registers; each vector's sums go into its own accumulators in a fixed order.
CRAFT_AVX2 __attribute__((always_inline)) static inline void avx2_int8_rows(
    int format, const uint8_t *w, size_t blocks, const int8_t *q, size_t columns, const float *scales, size_t groups,
    const int16_t *sums, int V, float *y, size_t ldy, size_t row) {
    const __m256i low_mask = _mm256_set1_epi8(0x0F), two_bits = _mm256_set1_epi8(0x03), ones = _mm256_set1_epi16(1);
    __m256 acc[4], other[4];
    for (int v = 0; v < V; v++) acc[v] = other[v] = _mm256_setzero_ps();
    if (format == CRAFT_QUANT_Q8_0) {
        for (size_t b = 0; b < blocks; b++) {
            const uint8_t *block = w + b * CRAFT_Q8_0_BLOCK_BYTES;
            const __m256i wq = _mm256_loadu_si256((const __m256i *)(block + 2));
            const __m256i magnitude = _mm256_sign_epi8(wq, wq);
            const float d = _cvtsh_ss((unsigned short)(block[0] | (block[1] << 8)));
            for (int v = 0; v < V; v++) {
                const __m256i xv = _mm256_loadu_si256((const __m256i *)(q + v * columns + b * 32));
                const __m256i dot = _mm256_madd_epi16(_mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(xv, wq)), ones);
                const __m256 scale = _mm256_set1_ps(d * scales[v * groups + b]);
                // Even and odd blocks in two accumulators: short dependency chains.
                if (b % 2 == 0) acc[v] = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(dot), acc[v]);
                else other[v] = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(dot), other[v]);
            }
        }
        for (int v = 0; v < V; v++) y[v * ldy + row] += hsum8(_mm256_add_ps(acc[v], other[v]));
    } else if (format == CRAFT_QUANT_Q4_K) {
        // `other` holds the minimums' corrections.
        for (size_t b = 0; b < blocks; b++) {
            const uint8_t *block = w + b * 144;
            uint8_t sm[16];
            unpack_k4_scales(block + 4, sm);
            __m256i lo[4], hi[4];
            for (int j = 0; j < 4; j++) {
                const __m256i packed = _mm256_loadu_si256((const __m256i *)(block + 16 + j * 32));
                lo[j] = _mm256_and_si256(packed, low_mask);
                hi[j] = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low_mask);
            }
            const __m128i m8 = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)(sm + 8)));
            const __m256i mins = _mm256_set_m128i(_mm_unpackhi_epi16(m8, m8), _mm_unpacklo_epi16(m8, m8));
            const float d = _cvtsh_ss((unsigned short)(block[0] | (block[1] << 8)));
            const float dmin = _cvtsh_ss((unsigned short)(block[2] | (block[3] << 8)));
            for (int v = 0; v < V; v++) {
                const int8_t *xv = q + v * columns + b * 256;
                __m256i dot = _mm256_setzero_si256();
                for (int j = 0; j < 4; j++) {
                    const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo[j], _mm256_loadu_si256((const __m256i *)(xv + j * 64))), _mm256_set1_epi16(sm[2 * j]));
                    const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi[j], _mm256_loadu_si256((const __m256i *)(xv + j * 64 + 32))), _mm256_set1_epi16(sm[2 * j + 1]));
                    dot = _mm256_add_epi32(dot, _mm256_add_epi32(p0, p1));
                }
                // Σ_s min_s · (bsum_2s + bsum_2s+1): each minimum twice against the sums of 16.
                const __m256i minimums = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(sums + v * (columns / 16) + b * 16)), mins);
                const float dx = scales[v * groups + b];
                acc[v] = _mm256_fmadd_ps(_mm256_set1_ps(d * dx), _mm256_cvtepi32_ps(dot), acc[v]);
                other[v] = _mm256_fmadd_ps(_mm256_set1_ps(dmin * dx), _mm256_cvtepi32_ps(minimums), other[v]);
            }
        }
        for (int v = 0; v < V; v++) y[v * ldy + row] += hsum8(_mm256_sub_ps(acc[v], other[v]));
    } else {
        for (size_t b = 0; b < blocks; b++) {
            const uint8_t *block = w + b * 210;
            __m256i quarter[8], scale16[8];
            for (int half = 0; half < 2; half++) {
                const uint8_t *ql = block + half * 64, *qh = block + 128 + half * 32;
                const int8_t *sc = (const int8_t *)(block + 192 + half * 8);
                const __m256i a = _mm256_loadu_si256((const __m256i *)ql), c = _mm256_loadu_si256((const __m256i *)(ql + 32));
                const __m256i h = _mm256_loadu_si256((const __m256i *)qh);
                __m256i *out = quarter + half * 4;
                out[0] = _mm256_or_si256(_mm256_and_si256(a, low_mask), _mm256_slli_epi16(_mm256_and_si256(h, two_bits), 4));
                out[1] = _mm256_or_si256(_mm256_and_si256(c, low_mask), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), two_bits), 4));
                out[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(a, 4), low_mask), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), two_bits), 4));
                out[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(c, 4), low_mask), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), two_bits), 4));
                // Values 0-15 of a quarter take the first of its two scales, 16-31 the second.
                for (int k = 0; k < 4; k++) scale16[half * 4 + k] = _mm256_set_m128i(_mm_set1_epi16(sc[2 * k + 1]), _mm_set1_epi16(sc[2 * k]));
            }
            const __m256i block_scales = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(block + 192)));
            const float d = _cvtsh_ss((unsigned short)(block[208] | (block[209] << 8)));
            for (int v = 0; v < V; v++) {
                const int8_t *xv = q + v * columns + b * 256;
                __m256i dot = _mm256_setzero_si256();
                for (int k = 0; k < 8; k++) {
                    dot = _mm256_add_epi32(dot, _mm256_madd_epi16(_mm256_maddubs_epi16(quarter[k], _mm256_loadu_si256((const __m256i *)(xv + k * 32))), scale16[k]));
                }
                // The offset of 32: Σ_g scale_g · bsum_g.
                const __m256i offset = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(sums + v * (columns / 16) + b * 16)), block_scales);
                const __m256 scale = _mm256_set1_ps(d * scales[v * groups + b]);
                const __m256 value = _mm256_cvtepi32_ps(_mm256_sub_epi32(dot, _mm256_slli_epi32(offset, 5)));
                if (b % 2 == 0) acc[v] = _mm256_fmadd_ps(scale, value, acc[v]);
                else other[v] = _mm256_fmadd_ps(scale, value, other[v]);
            }
        }
        for (int v = 0; v < V; v++) y[v * ldy + row] += hsum8(_mm256_add_ps(acc[v], other[v]));
    }
}

CRAFT_AVX2 static void avx2_int8_matvec(int format, const uint8_t *weight, size_t columns, size_t row_begin, size_t row_end,
                                        const int8_t *q, const float *scales, const int16_t *sums, size_t m, float *y, size_t ldy) {
    const size_t blocks = columns / craft_quant_block_values(format), row_bytes = blocks * craft_quant_block_bytes(format);
    const size_t groups = columns / craft_quant_activation_group(format);
    for (size_t row = row_begin; row < row_end; row++) {
        const uint8_t *w = weight + row * row_bytes;
        for (size_t g = 0; g < m; g += 4) {
            const int8_t *vq = q + g * columns;
            const float *vs = scales + g * groups;
            const int16_t *vsum = sums + g * (columns / 16);
            float *out = y + g * ldy;
            const size_t count = m - g < 4 ? m - g : 4;
            CRAFT_BY_VECTORS(avx2_int8_rows(format, w, blocks, vq, columns, vs, groups, vsum, V, out, ldy, row));
        }
    }
}
#endif

void craft_quant_matvec_int8(int format, const uint8_t *weight, size_t columns, size_t row_begin, size_t row_end,
                             const int8_t *q, const float *scales, const int16_t *sums, size_t m, float *y, size_t ldy) {
#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
    if (craft_cpu_has_avx2()) {
        avx2_int8_matvec(format, weight, columns, row_begin, row_end, q, scales, sums, m, y, ldy);
        return;
    }
#endif
    portable_int8_matvec(format, weight, columns, row_begin, row_end, q, scales, sums, m, y, ldy);
}

void craft_quant_matvec_int8_portable(int format, const uint8_t *weight, size_t columns, size_t row_begin, size_t row_end,
                                      const int8_t *q, const float *scales, const int16_t *sums, size_t m, float *y, size_t ldy) {
    portable_int8_matvec(format, weight, columns, row_begin, row_end, q, scales, sums, m, y, ldy);
}
