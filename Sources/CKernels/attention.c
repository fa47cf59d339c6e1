// Fused scaled dot-product attention for inference; the contract is in include/CKernels.h
// (``craft_attention``). attention_impl.h holds the kernel once, written on the compiler's generic
// vectors; it is included here once per path: 4 lanes for the portable path, 8 compiled for
// AVX2+FMA and 16 for AVX-512F (the wide ones called only after the CPU check).
//
// The work: a work item is one (batch entry, key/value head, block of query positions); its rows are
// the query rows of those positions for every query head that reads that key/value head, position
// major (row r is position t0 + r / group of query head kv_head · group + r % group). The item scales
// its query rows once into a contiguous block, then walks the keys in blocks of AT_KEY_BLOCK from the
// first: packs the block transposed (depth × AT_KEY_BLOCK) so that scores are vectors along keys
// (once per key/value head when the thread's scratch holds the head's blocks: its items follow each
// other), computes the rows' scores (AT_GROUP rows at a time, an item's last group padded with zero
// rows), folds them into each row's running maximum and sum (the online softmax of flash attention:
// the accumulator is rescaled when the maximum grows; a group whose rows all take the whole block
// unmasked does its rows' steps interleaved), and adds the weighted value rows to the row's
// accumulator. Scores for a whole head are never stored; an item holds at most AT_KEY_BLOCK of them
// per row.
//
// Causal rows stop at their last visible key. A removed key would add e^(≈ −FLT_MAX − m) = 0 to a
// row that has seen a real key, so skipping it changes nothing; a row that saw none (every visible
// key masked with the lowest float, or no visible key at all) is run again over all keys with the
// removed ones at min(mask, −FLT_MAX), as an additive causal mask does: it then attends uniformly,
// as transformers' masks make fully masked rows do.
#include "CKernels.h"
#include "internal.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EW_CONCAT2(a, b) a##b
#define EW_CONCAT(a, b) EW_CONCAT2(a, b)

/// Keys per block of the online softmax (a multiple of 2 · lanes for every path; a block of fewer
/// keys, the last, is padded to whole vectors).
#define AT_KEY_BLOCK 64
/// Query rows computed together (sharing each key and value load): 6 rows × 2 vectors of keys or
/// value columns are 12 accumulators, as a GEMM micro-kernel on 16 registers.
#ifndef AT_GROUP
#define AT_GROUP 6
#endif
/// The most floats of packed keys a thread keeps, so that the items of one key/value head pack each
/// key block once (1 MiB: 4096 keys of depth 64); a head with more keys is packed block by block.
#define AT_PACKED_KEYS_LIMIT (1 << 18)
/// The most query rows an item takes (its rows share each packed key block).
#ifndef AT_ITEM_ROWS
#define AT_ITEM_ROWS 64
#endif

/// One work item's place in the problem.
struct attention_item {
    size_t batch, kv_head, first_position, rows;
    const float *key, *value;  // the item's key/value head
};

/// An item's working memory (allocated once per call, for the largest item).
struct attention_scratch {
    float *queries;            // rows (padded to groups) × depth, scaled
    float *keys;               // key_blocks × depth × AT_KEY_BLOCK: key blocks transposed
    size_t key_blocks;         // every block of a head (its items reuse them), or 1
    const float *packed_key;   // the key/value head whose blocks `keys` holds
    size_t packed_blocks;      // how many of its blocks, from the first
    float *scores;             // rows (padded to groups) × AT_KEY_BLOCK: scores, then weights
    float *acc;                // rows (padded to groups) × value_depth
    float *maximum, *sum;      // per row: the running maximum and sum of the online softmax
    size_t *visible;           // per row: how many keys it sees (from the first)
    unsigned char *again;      // per row: whether it runs again over all keys
    const float **mask_rows;   // per row: its mask row, when there is a mask
};

/// `rows` rounded up to a whole number of groups.
static size_t attention_padded_rows(size_t rows) { return (rows + AT_GROUP - 1) / AT_GROUP * AT_GROUP; }

/// Asks for the `count` floats at `row` (a value row a key block's weighted sum reads next) to be
/// brought into cache, a line at a time.
static inline void attention_prefetch_row(const float *row, size_t count) {
    for (size_t byte = 0; byte < count * sizeof(float); byte += 64) __builtin_prefetch((const char *)row + byte, 0, 3);
}

size_t craft_attention_query_block(const craft_attention_problem *p) {
    const size_t group = p->query_heads / p->kv_heads;
    size_t block = group >= AT_ITEM_ROWS ? 1 : AT_ITEM_ROWS / group;
    if (block > p->query_length) block = p->query_length;
    if (!block) return 1;
    // Blocks of about equal size (196 positions: 4 blocks, not 3 × 64 + 4), whose rows fill whole
    // groups where they can (54 + 54 + 54 + 34 rows, padded to 198, rather than 4 × 49 padded to 216).
    const size_t blocks = (p->query_length + block - 1) / block;
    block = (p->query_length + blocks - 1) / blocks;
    size_t step = AT_GROUP;
    for (size_t a = step, b = group; b;) { const size_t t = a % b; a = b; b = t; step = a; }
    step = AT_GROUP / step;  // the fewest positions whose rows are whole groups
    block = (block + step - 1) / step * step;
    return block < p->query_length ? block : p->query_length;
}

size_t craft_attention_items(const craft_attention_problem *p) {
    const size_t block = craft_attention_query_block(p);
    return p->batch * p->kv_heads * ((p->query_length + block - 1) / block);
}

static struct attention_item attention_item_at(const craft_attention_problem *p, size_t index) {
    const size_t block = craft_attention_query_block(p);
    const size_t blocks = (p->query_length + block - 1) / block, group = p->query_heads / p->kv_heads;
    struct attention_item it;
    it.batch = index / (p->kv_heads * blocks);
    it.kv_head = index / blocks % p->kv_heads;
    it.first_position = index % blocks * block;
    const size_t last = it.first_position + block < p->query_length ? it.first_position + block : p->query_length;
    it.rows = (last - it.first_position) * group;
    it.key = p->key + (ptrdiff_t)it.batch * p->key_stride_batch + (ptrdiff_t)it.kv_head * p->key_stride_head;
    it.value = p->value + (ptrdiff_t)it.batch * p->value_stride_batch + (ptrdiff_t)it.kv_head * p->value_stride_head;
    return it;
}

/// The element offset of the item's row `r` (position first_position + r / group of query head
/// kv_head · group + r % group) in a tensor of these batch, head and row strides (the queries, the
/// mask, the output).
static ptrdiff_t attention_row_offset(const craft_attention_problem *p, const struct attention_item *it, size_t r,
                                      ptrdiff_t stride_batch, ptrdiff_t stride_head, ptrdiff_t stride_row) {
    const size_t group = p->query_heads / p->kv_heads;
    const size_t position = it->first_position + r / group, head = it->kv_head * group + r % group;
    return (ptrdiff_t)it->batch * stride_batch + (ptrdiff_t)head * stride_head + (ptrdiff_t)position * stride_row;
}

/// The item's query row `r`.
static const float *attention_query_row(const craft_attention_problem *p, const struct attention_item *it, size_t r) {
    return p->query + attention_row_offset(p, it, r, p->query_stride_batch, p->query_stride_head, p->query_stride_row);
}

/// Scales the item's query rows into `w->queries` and resets every row's state.
static void attention_load_queries(const craft_attention_problem *p, const struct attention_item *it,
                                   struct attention_scratch *w) {
    const size_t group = p->query_heads / p->kv_heads, depth = p->depth, padded = attention_padded_rows(it->rows);
    const float scale = p->scale;
    // The rows are far apart (a head's slice of each position): asked for all at once, their cache
    // misses overlap (a causal prefill's attention 2 % faster on Zen 3).
    for (size_t r = 0; r < it->rows; r++) attention_prefetch_row(attention_query_row(p, it, r), depth);
    for (size_t r = 0; r < it->rows; r++) {
        const size_t position = it->first_position + r / group;
        const float *q = attention_query_row(p, it, r);
        float *row = w->queries + r * depth;
        for (size_t d = 0; d < depth; d++) row[d] = q[d] * scale;
        if (p->mask) {
            w->mask_rows[r] = p->mask + attention_row_offset(p, it, r, p->mask_stride_batch, p->mask_stride_head, p->mask_stride_row);
        }
        // Query `position` sees key j when j ≤ position + key_length − query_length.
        ptrdiff_t visible = (ptrdiff_t)p->key_length;
        if (p->causal) {
            visible = (ptrdiff_t)position + (ptrdiff_t)p->key_length - (ptrdiff_t)p->query_length + 1;
            if (visible < 0) visible = 0;
            if (visible > (ptrdiff_t)p->key_length) visible = (ptrdiff_t)p->key_length;
        }
        w->visible[r] = (size_t)visible;
        w->again[r] = 0;
        w->maximum[r] = -INFINITY;
        w->sum[r] = 0;
    }
    memset(w->queries + it->rows * depth, 0, (padded - it->rows) * depth * sizeof(float));
    memset(w->acc, 0, padded * p->value_depth * sizeof(float));
}

/// After the first pass: marks (and resets) the causal rows that saw no real key, whose maximum is
/// still about −FLT_MAX; returns whether there is any.
static int attention_mark_again(const craft_attention_problem *p, size_t rows, struct attention_scratch *w) {
    if (!p->causal) return 0;
    int any = 0;
    for (size_t r = 0; r < rows; r++) {
        if (w->visible[r] < p->key_length && !(w->maximum[r] > -FLT_MAX / 2)) {
            w->again[r] = 1;
            w->maximum[r] = -INFINITY;
            w->sum[r] = 0;
            memset(w->acc + r * p->value_depth, 0, p->value_depth * sizeof(float));
            any = 1;
        }
    }
    return any;
}

/// Writes each row's accumulator divided by its sum to the output.
static void attention_store(const craft_attention_problem *p, const struct attention_item *it,
                            const struct attention_scratch *w) {
    const size_t dv = p->value_depth;
    for (size_t r = 0; r < it->rows; r++) {
        float *out = p->output + attention_row_offset(p, it, r, p->output_stride_batch, p->output_stride_head, p->output_stride_row);
        const float inverse = 1.0f / w->sum[r];
        for (size_t c = 0; c < dv; c++) out[c] = w->acc[r * dv + c] * inverse;
    }
}

// MARK: - Portable

#define EW_LANES 4
#define EW_ATTR
#define EW_NAME(name) EW_CONCAT(portable_, name)
#include "vector_impl.h"
#include "attention_impl.h"
#undef VF
#undef VI
#undef EW_INLINE
#undef EW_LANES
#undef EW_ATTR
#undef EW_NAME

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#define CRAFT_HAS_AVX2_ATTENTION 1

// MARK: - AVX2 + FMA

#define EW_LANES 8
#define EW_ATTR __attribute__((target("avx2,fma")))
#define EW_NAME(name) EW_CONCAT(avx2_, name)
#include "vector_impl.h"
#include "attention_impl.h"
#undef VF
#undef VI
#undef EW_INLINE
#undef EW_LANES
#undef EW_ATTR
#undef EW_NAME

// MARK: - AVX-512F

#define EW_LANES 16
#define EW_ATTR __attribute__((target("avx512f,avx2,fma")))
#define EW_NAME(name) EW_CONCAT(avx512_, name)
#include "vector_impl.h"
#include "attention_impl.h"
#undef VF
#undef VI
#undef EW_INLINE
#undef EW_LANES
#undef EW_ATTR
#undef EW_NAME
#endif

// MARK: - Dispatch

int craft_attention_path(void) {
#ifdef CRAFT_HAS_AVX2_ATTENTION
    if (craft_elementwise_path_available(CRAFT_PATH_AVX512)) return CRAFT_PATH_AVX512;
    if (craft_cpu_has_avx2()) return CRAFT_PATH_AVX2;
#endif
    return CRAFT_PATH_PORTABLE;
}

const char *craft_attention_kernel_name(void) {
    switch (craft_attention_path()) {
    case CRAFT_PATH_AVX512: return "avx512f";
    case CRAFT_PATH_AVX2: return "avx2-fma";
    default: return "portable";
    }
}

void craft_attention_on(int path, const craft_attention_problem *p, size_t first, size_t end) {
    if (first >= end) return;
    const size_t group = p->query_heads / p->kv_heads, positions = craft_attention_query_block(p);
    const size_t rows = positions * group, padded = attention_padded_rows(rows);
    // Packed blocks are kept for the next item only when a head has several items of several rows
    // (not when decoding: one item per head, or single rows that read keys in place).
    const size_t blocks = (p->key_length + AT_KEY_BLOCK - 1) / AT_KEY_BLOCK;
    const int shared = rows > 1 && positions < p->query_length;
    const size_t key_blocks = shared && blocks > 1 && blocks * AT_KEY_BLOCK * p->depth <= AT_PACKED_KEYS_LIMIT ? blocks : 1;
    const size_t floats = padded * p->depth + key_blocks * p->depth * AT_KEY_BLOCK + padded * AT_KEY_BLOCK
                        + padded * p->value_depth + 2 * padded;
    float *memory = malloc(floats * sizeof(float) + padded * (sizeof(size_t) + sizeof(const float *) + 1));
    if (!memory) {
        fprintf(stderr, "craft_attention: cannot allocate %zu bytes of scratch\n", floats * sizeof(float));
        abort();
    }
    struct attention_scratch w;
    w.queries = memory;
    w.keys = w.queries + padded * p->depth;
    w.key_blocks = key_blocks;
    w.packed_key = NULL;
    w.packed_blocks = 0;
    w.scores = w.keys + key_blocks * p->depth * AT_KEY_BLOCK;
    w.acc = w.scores + padded * AT_KEY_BLOCK;
    w.maximum = w.acc + padded * p->value_depth;
    w.sum = w.maximum + padded;
    // `padded` is even, so the floats before `visible` are an even count: it is 8-byte aligned.
    w.visible = (size_t *)(w.sum + padded);
    w.mask_rows = (const float **)(w.visible + padded);
    w.again = (unsigned char *)(w.mask_rows + padded);
#ifdef CRAFT_HAS_AVX2_ATTENTION
    if (path == CRAFT_PATH_AVX512) {
        avx512_attention_items(p, first, end, &w);
        free(memory);
        return;
    }
    if (path == CRAFT_PATH_AVX2) {
        avx2_attention_items(p, first, end, &w);
        free(memory);
        return;
    }
#endif
    (void)path;
    portable_attention_items(p, first, end, &w);
    free(memory);
}

void craft_attention(const craft_attention_problem *p, size_t first, size_t end) {
    craft_attention_on(craft_attention_path(), p, first, end);
}
