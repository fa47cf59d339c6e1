// One copy of the fused attention kernel for a vector width, included by attention.c once per path
// after vector_impl.h (the same EW_LANES, EW_ATTR and EW_NAME). The contract is in include/CKernels.h
// (``craft_attention``); the layout of the work is described in attention.c.
//
// Every value a query row gets is computed by code that depends on that row alone: a score is one
// sequence of multiply-adds over the head dimension, an output element one sequence of multiply-adds
// over the keys in order, and the softmax statistics are the row's own. Rows are grouped (AT_GROUP)
// only to share loads; a group computes each row exactly as a single row would.

typedef float EW_NAME(v8) __attribute__((vector_size(32)));

/// Keys `start..<start + n` of the item's head, transposed into `keys[d · AT_KEY_BLOCK + j]`, with
/// zeros in the columns `n..<columns`. Whole 8 × 8 tiles are transposed in registers (unpack, shuffle,
/// then swap halves: 24 shuffles for 64 values); the edges are copied one value at a time. Each tile
/// also asks for its 8 keys' value rows, which the block's weighted sums read next (as
/// attention_scores_direct does for single rows: decoding with grouped heads streams them from the
/// KV cache).
EW_ATTR static void EW_NAME(attention_pack_keys)(const craft_attention_problem *p, const struct attention_item *it,
                                                 size_t start, size_t n, size_t columns, float *keys) {
    typedef EW_NAME(v8) V8;
    const size_t depth = p->depth, tiled_keys = n / 8 * 8, tiled_depth = depth / 8 * 8;
    const ptrdiff_t stride = p->key_stride_row;
    const float *first = it->key + (ptrdiff_t)start * stride;
    const float *first_value = it->value + (ptrdiff_t)start * p->value_stride_row;
    for (size_t j = 0; j < tiled_keys; j += 8) {
        for (size_t i = 0; i < 8; i++) attention_prefetch_row(first_value + (ptrdiff_t)(j + i) * p->value_stride_row, p->value_depth);
        const float *k = first + (ptrdiff_t)j * stride;
        for (size_t d = 0; d < tiled_depth; d += 8) {
            V8 r[8];
            for (int i = 0; i < 8; i++) memcpy(&r[i], k + (ptrdiff_t)i * stride + d, sizeof(V8));
            V8 t[8], u[8];
            for (int i = 0; i < 8; i += 2) {
                t[i] = __builtin_shufflevector(r[i], r[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
                t[i + 1] = __builtin_shufflevector(r[i], r[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
            }
            for (int i = 0; i < 8; i += 4) {
                u[i] = __builtin_shufflevector(t[i], t[i + 2], 0, 1, 8, 9, 4, 5, 12, 13);
                u[i + 1] = __builtin_shufflevector(t[i], t[i + 2], 2, 3, 10, 11, 6, 7, 14, 15);
                u[i + 2] = __builtin_shufflevector(t[i + 1], t[i + 3], 0, 1, 8, 9, 4, 5, 12, 13);
                u[i + 3] = __builtin_shufflevector(t[i + 1], t[i + 3], 2, 3, 10, 11, 6, 7, 14, 15);
            }
            for (int i = 0; i < 4; i++) {
                // Column d + i is the low halves of u[i] (rows 0–3) and u[i + 4] (rows 4–7); d + i + 4
                // the high halves.
                const V8 low = __builtin_shufflevector(u[i], u[i + 4], 0, 1, 2, 3, 8, 9, 10, 11);
                const V8 high = __builtin_shufflevector(u[i], u[i + 4], 4, 5, 6, 7, 12, 13, 14, 15);
                memcpy(keys + (d + (size_t)i) * AT_KEY_BLOCK + j, &low, sizeof(V8));
                memcpy(keys + (d + (size_t)i + 4) * AT_KEY_BLOCK + j, &high, sizeof(V8));
            }
        }
        for (size_t d = tiled_depth; d < depth; d++) {
            for (size_t i = 0; i < 8; i++) keys[d * AT_KEY_BLOCK + j + i] = k[(ptrdiff_t)i * stride + (ptrdiff_t)d];
        }
    }
    for (size_t j = tiled_keys; j < n; j++) {
        const float *k = first + (ptrdiff_t)j * stride;
        // Plain stores: vectorised for AVX-512 this loop became scatters (VSCATTERQPS), microcoded
        // on AMD Zen 4.
#pragma clang loop vectorize(disable)
        for (size_t d = 0; d < depth; d++) keys[d * AT_KEY_BLOCK + j] = k[d];
    }
    for (size_t d = 0; d < depth; d++) {
        for (size_t j = n; j < columns; j++) keys[d * AT_KEY_BLOCK + j] = 0;
    }
}

/// `s[i·AT_KEY_BLOCK + j] = Σ_d q[i·depth + d] · kt[d·AT_KEY_BLOCK + j]` for the `rows` query rows at
/// `q` and the `columns` (a multiple of EW_LANES) packed keys at `kt`, summed in `d` order.
EW_INLINE void EW_NAME(attention_scores_rows)(int rows, const float *q, const float *kt, size_t depth,
                                              size_t columns, float *s) {
    size_t c = 0;
    for (; c + 2 * EW_LANES <= columns; c += 2 * EW_LANES) {
        VF low[AT_GROUP], high[AT_GROUP];
        for (int i = 0; i < rows; i++) { low[i] = EW_NAME(splat)(0); high[i] = EW_NAME(splat)(0); }
        for (size_t d = 0; d < depth; d++) {
            const float *k = kt + d * AT_KEY_BLOCK + c;
            const VF k0 = EW_NAME(load)(k), k1 = EW_NAME(load)(k + EW_LANES);
            for (int i = 0; i < rows; i++) {
                const VF x = EW_NAME(splat)(q[(size_t)i * depth + d]);
                low[i] = low[i] + x * k0;
                high[i] = high[i] + x * k1;
            }
        }
        for (int i = 0; i < rows; i++) {
            EW_NAME(store)(s + (size_t)i * AT_KEY_BLOCK + c, low[i]);
            EW_NAME(store)(s + (size_t)i * AT_KEY_BLOCK + c + EW_LANES, high[i]);
        }
    }
    if (c < columns) {
        // One vector of keys left (a key block's last few keys): the same sums, half the registers.
        VF sums[AT_GROUP];
        for (int i = 0; i < rows; i++) sums[i] = EW_NAME(splat)(0);
        for (size_t d = 0; d < depth; d++) {
            const VF k0 = EW_NAME(load)(kt + d * AT_KEY_BLOCK + c);
            for (int i = 0; i < rows; i++) sums[i] = sums[i] + EW_NAME(splat)(q[(size_t)i * depth + d]) * k0;
        }
        for (int i = 0; i < rows; i++) EW_NAME(store)(s + (size_t)i * AT_KEY_BLOCK + c, sums[i]);
    }
}

/// `s[j] = Σ_d q[d] · k_j[d]` for the `n` keys `k_j = key + j·stride` (read in place, no packing),
/// lanes over `d` then a fixed horizontal sum; `s[j] = 0` for `n ≤ j < columns`. For items of a
/// single query row (decoding without grouped heads), where packing a key block costs more than the
/// row's products with it. Such an item streams its keys and values from memory (a KV cache) with
/// little arithmetic, so each key's step also asks for the value row `value + j·value_stride`
/// (`value_depth` floats) that the block's weighted sum reads next: 8 sequences' decoding attention
/// on Zen 3, 17.6–18.3 ms per 24 layers without, 12.0–12.5 with (docs/benchmarks.md).
EW_ATTR static void EW_NAME(attention_scores_direct)(const float *q, const float *key, ptrdiff_t stride, size_t n,
                                                     size_t depth, size_t columns, float *s, const float *value,
                                                     ptrdiff_t value_stride, size_t value_depth) {
    for (size_t j = 0; j < n; j++) {
        attention_prefetch_row(value + (ptrdiff_t)j * value_stride, value_depth);
        const float *k = key + (ptrdiff_t)j * stride;
        VF acc = EW_NAME(splat)(0);
        size_t d = 0;
        for (; d + EW_LANES <= depth; d += EW_LANES) acc = acc + EW_NAME(load)(q + d) * EW_NAME(load)(k + d);
        float total = EW_NAME(sum)(acc);
        for (; d < depth; d++) total = total + q[d] * k[d];
        s[j] = total;
    }
    for (size_t j = n; j < columns; j++) s[j] = 0;
}

EW_ATTR static void EW_NAME(attention_scores_group)(const float *q, const float *kt, size_t depth, size_t columns, float *s) {
    EW_NAME(attention_scores_rows)(AT_GROUP, q, kt, depth, columns, s);
}

EW_ATTR static void EW_NAME(attention_scores1)(const float *q, const float *kt, size_t depth, size_t columns, float *s) {
    EW_NAME(attention_scores_rows)(1, q, kt, depth, columns, s);
}

/// `acc[i·dv + c] += Σ_{j < count} p[i·AT_KEY_BLOCK + j] · v[j·value_stride + c]` for the `rows` rows,
/// each element summed in `j` order.
EW_INLINE void EW_NAME(attention_values_rows)(int rows, const float *p, const float *v, ptrdiff_t value_stride,
                                              size_t count, size_t dv, float *acc) {
    size_t c = 0;
    for (; c + 2 * EW_LANES <= dv; c += 2 * EW_LANES) {
        VF low[AT_GROUP], high[AT_GROUP];
        for (int i = 0; i < rows; i++) {
            low[i] = EW_NAME(load)(acc + (size_t)i * dv + c);
            high[i] = EW_NAME(load)(acc + (size_t)i * dv + c + EW_LANES);
        }
        for (size_t j = 0; j < count; j++) {
            const float *row = v + (ptrdiff_t)j * value_stride + c;
            const VF v0 = EW_NAME(load)(row), v1 = EW_NAME(load)(row + EW_LANES);
            for (int i = 0; i < rows; i++) {
                const VF weight = EW_NAME(splat)(p[(size_t)i * AT_KEY_BLOCK + j]);
                low[i] = low[i] + weight * v0;
                high[i] = high[i] + weight * v1;
            }
        }
        for (int i = 0; i < rows; i++) {
            EW_NAME(store)(acc + (size_t)i * dv + c, low[i]);
            EW_NAME(store)(acc + (size_t)i * dv + c + EW_LANES, high[i]);
        }
    }
    for (; c + EW_LANES <= dv; c += EW_LANES) {
        VF sums[AT_GROUP];
        for (int i = 0; i < rows; i++) sums[i] = EW_NAME(load)(acc + (size_t)i * dv + c);
        for (size_t j = 0; j < count; j++) {
            const VF v0 = EW_NAME(load)(v + (ptrdiff_t)j * value_stride + c);
            for (int i = 0; i < rows; i++) sums[i] = sums[i] + EW_NAME(splat)(p[(size_t)i * AT_KEY_BLOCK + j]) * v0;
        }
        for (int i = 0; i < rows; i++) EW_NAME(store)(acc + (size_t)i * dv + c, sums[i]);
    }
    // The last columns one lane at a time, with the same multiply-add per element as the vectors.
    for (; c < dv; c++) {
        for (int i = 0; i < rows; i++) {
            VF sum = EW_NAME(splat)(acc[(size_t)i * dv + c]);
            for (size_t j = 0; j < count; j++) {
                sum = sum + EW_NAME(splat)(p[(size_t)i * AT_KEY_BLOCK + j]) * EW_NAME(splat)(v[(ptrdiff_t)j * value_stride + c]);
            }
            acc[(size_t)i * dv + c] = sum[0];
        }
    }
}

EW_ATTR static void EW_NAME(attention_values_group)(const float *p, const float *v, ptrdiff_t value_stride, size_t count,
                                                    size_t dv, float *acc) {
    EW_NAME(attention_values_rows)(AT_GROUP, p, v, value_stride, count, dv, acc);
}

EW_ATTR static void EW_NAME(attention_values1)(const float *p, const float *v, ptrdiff_t value_stride, size_t count,
                                               size_t dv, float *acc) {
    EW_NAME(attention_values_rows)(1, p, v, value_stride, count, dv, acc);
}

/// A row's online-softmax state after its maximum moved to `new_max` (below ∞, above the old): the sum
/// and the accumulator's `dv` values scaled by `alpha` = e^(old − new) (0 when the old maximum is −∞,
/// as at the first block).
EW_INLINE void EW_NAME(attention_rescale)(float alpha, float new_max, float *m, float *l, float *acc, size_t dv) {
    *l *= alpha;
    const VF factor = EW_NAME(splat)(alpha);
    size_t c = 0;
    for (; c + EW_LANES <= dv; c += EW_LANES) EW_NAME(store)(acc + c, EW_NAME(load)(acc + c) * factor);
    for (; c < dv; c++) acc[c] *= alpha;
    *m = new_max;
}

/// One key block of a row's online softmax. `s` holds the row's `width` scores (already scaled) and
/// room for `columns` values. Adds the mask (`mask[j·mask_stride]`, when `mask` is not NULL) and, for
/// the columns from `removed_from` on (causally removed keys), `min(mask, −FLT_MAX)`; then updates the
/// running maximum `*m` and sum `*l`, rescales the row's accumulator `acc` (`dv` values) when the
/// maximum grows, and leaves in `s` the weights `e^(x − m)` (0 past `width`). Returns 0 (and leaves
/// everything else unchanged) when every score is −∞ so far.
EW_ATTR static int EW_NAME(attention_softmax_step)(float *s, size_t width, size_t columns, const float *mask,
                                                   ptrdiff_t mask_stride, size_t removed_from, float *m, float *l,
                                                   float *acc, size_t dv) {
    if (mask || removed_from < width) {
        for (size_t j = 0; j < width; j++) {
            float added = mask ? mask[(ptrdiff_t)j * mask_stride] : 0.0f;
            if (j >= removed_from) added = added < -FLT_MAX ? added : -FLT_MAX;
            s[j] += added;
        }
    }
    const float block_max = EW_NAME(row_max)(s, width);
    const float new_max = block_max > *m ? block_max : *m;
    if (new_max == -INFINITY) return 0;
    const VF sums = EW_NAME(exp_shifted)(s, s, width, new_max);
    for (size_t j = width; j < columns; j++) s[j] = 0;
    if (new_max != *m) {
        EW_NAME(attention_rescale)(EW_NAME(exp_nonpositive)(EW_NAME(splat)(*m - new_max))[0], new_max, m, l, acc, dv);
    }
    *l += EW_NAME(sum)(sums);
    return 1;
}

/// attention_softmax_step for a whole group of AT_GROUP rows that each take all `n` keys of the block,
/// with no mask and no causally removed key (an encoder's rows, a prefill's rows below the diagonal):
/// the same operations on each row, in the same order, so the same bits; the rows' steps are
/// interleaved so that their dependency chains (a maximum, then exponentials, then the rescaling
/// factor) overlap instead of following each other. Sets `active[i]` as the single-row step returns.
EW_ATTR static void EW_NAME(attention_softmax_group)(float *s, size_t n, size_t columns, float *m, float *l, float *acc,
                                                     size_t dv, int *active) {
    VF best[AT_GROUP];
    for (int i = 0; i < AT_GROUP; i++) best[i] = EW_NAME(splat)(-INFINITY);
    size_t j = 0;
    for (; j + EW_LANES <= n; j += EW_LANES) {
        for (int i = 0; i < AT_GROUP; i++) {
            const VF v = EW_NAME(load)(s + (size_t)i * AT_KEY_BLOCK + j);
            best[i] = EW_NAME(select)(v > best[i], v, best[i]);
        }
    }
    if (j < n) {
        for (int i = 0; i < AT_GROUP; i++) {
            const VF v = EW_NAME(load_partial)(s + (size_t)i * AT_KEY_BLOCK + j, n - j, -INFINITY);
            best[i] = EW_NAME(select)(v > best[i], v, best[i]);
        }
    }
    VF shifts[AT_GROUP], sums[AT_GROUP];
    for (int i = 0; i < AT_GROUP; i++) {
        const float block_max = EW_NAME(max_lanes)(best[i]);
        const float new_max = block_max > m[i] ? block_max : m[i];
        active[i] = new_max != -INFINITY;
        shifts[i] = EW_NAME(splat)(new_max);
    }
    for (int i = 0; i < AT_GROUP; i++) {
        // A row's exponentials depend on nothing of the other rows': they overlap as they are.
        if (!active[i]) continue;
        float *row = s + (size_t)i * AT_KEY_BLOCK;
        sums[i] = EW_NAME(exp_shifted)(row, row, n, shifts[i][0]);
        for (size_t k = n; k < columns; k++) row[k] = 0;
    }
    float alpha[AT_GROUP];
    for (int i = 0; i < AT_GROUP; i++) {
        alpha[i] = active[i] && shifts[i][0] != m[i] ? EW_NAME(exp_nonpositive)(EW_NAME(splat)(m[i] - shifts[i][0]))[0] : 1;
    }
    for (int i = 0; i < AT_GROUP; i++) {
        if (!active[i]) continue;
        if (shifts[i][0] != m[i]) EW_NAME(attention_rescale)(alpha[i], shifts[i][0], &m[i], &l[i], acc + (size_t)i * dv, dv);
        l[i] += EW_NAME(sum)(sums[i]);
    }
}

/// Runs the work items `first..<end` of `p` (see attention.c) with scratch `w`.
EW_ATTR static void EW_NAME(attention_items)(const craft_attention_problem *p, size_t first, size_t end,
                                             struct attention_scratch *w) {
    for (size_t item = first; item < end; item++) {
        struct attention_item it = attention_item_at(p, item);
        attention_load_queries(p, &it, w);
        const size_t rows = it.rows, padded = attention_padded_rows(rows);
        const size_t key_length = p->key_length, depth = p->depth, dv = p->value_depth;
        // Pass 0 runs every row over its visible keys; pass 1 runs again, over all keys, the rows that
        // saw no real key in pass 0 (causally fully removed, or masked out everywhere they could see).
        for (int pass = 0; pass < 2; pass++) {
            size_t need = 0;
            for (size_t r = 0; r < rows; r++) {
                const size_t reach = pass == 0 ? w->visible[r] : (w->again[r] ? key_length : 0);
                need = reach > need ? reach : need;
            }
            for (size_t start = 0; start < need; start += AT_KEY_BLOCK) {
                const size_t n = key_length - start < AT_KEY_BLOCK ? key_length - start : AT_KEY_BLOCK;
                const size_t columns = (n + EW_LANES - 1) / EW_LANES * EW_LANES;
                // A single row (decoding without grouped heads) reads the keys in place.
                const int direct = rows == 1;
                // Consecutive items of one key/value head (its blocks of query positions) share the
                // packed key blocks when the scratch holds the whole head's.
                const size_t block = start / AT_KEY_BLOCK;
                float *keys = w->keys + (w->key_blocks > 1 ? block * depth * AT_KEY_BLOCK : 0);
                if (w->packed_key != it.key) {
                    w->packed_key = it.key;
                    w->packed_blocks = 0;
                }
                if (!direct && (w->key_blocks == 1 || block >= w->packed_blocks)) {
                    EW_NAME(attention_pack_keys)(p, &it, start, n, columns, keys);
                    // Every item walks the blocks in order from the first: the ones before are packed.
                    w->packed_blocks = block + 1;
                }
                const float *values = it.value + (ptrdiff_t)start * p->value_stride_row;
                const ptrdiff_t value_stride = p->value_stride_row;
                for (size_t r0 = 0; r0 < padded; r0 += AT_GROUP) {
                    const size_t real = rows - r0 < AT_GROUP ? rows - r0 : AT_GROUP;
                    size_t width[AT_GROUP] = {0}, removed[AT_GROUP] = {0};
                    int taking = 0;
                    for (size_t i = 0; i < real; i++) {
                        const size_t r = r0 + i;
                        if (pass == 0 && w->visible[r] > start) {
                            width[i] = w->visible[r] - start < n ? w->visible[r] - start : n;
                            removed[i] = width[i];
                        } else if (pass == 1 && w->again[r]) {
                            width[i] = n;
                            removed[i] = w->visible[r] > start ? (w->visible[r] - start < n ? w->visible[r] - start : n) : 0;
                        }
                        taking += width[i] > 0;
                    }
                    if (taking == 0) continue;
                    float *scores = w->scores + r0 * AT_KEY_BLOCK;
                    if (direct) {
                        EW_NAME(attention_scores_direct)(w->queries, it.key + (ptrdiff_t)start * p->key_stride_row,
                                                         p->key_stride_row, n, depth, columns, scores, values,
                                                         value_stride, dv);
                    } else if (taking > 1) {
                        // The whole group even with fewer real or taking rows (a row's scores are the
                        // same computed alone or in a group): one row alone runs a quarter as fast.
                        EW_NAME(attention_scores_group)(w->queries + r0 * depth, keys, depth, columns, scores);
                    } else {
                        for (size_t i = 0; i < real; i++) {
                            if (width[i]) EW_NAME(attention_scores1)(w->queries + (r0 + i) * depth, keys, depth, columns,
                                                                     scores + i * AT_KEY_BLOCK);
                        }
                    }
                    int active[AT_GROUP] = {0}, all_active = real > 1;
                    size_t count = 0;
                    int whole = real == AT_GROUP && !p->mask;
                    for (size_t i = 0; i < real; i++) whole &= width[i] == n && removed[i] >= n;
                    if (whole) {
                        EW_NAME(attention_softmax_group)(scores, n, columns, w->maximum + r0, w->sum + r0, w->acc + r0 * dv,
                                                         dv, active);
                        for (size_t i = 0; i < real; i++) count = active[i] ? n : count;
                    } else {
                        for (size_t i = 0; i < real; i++) {
                            if (!width[i]) continue;
                            const size_t r = r0 + i;
                            const float *mask = p->mask ? w->mask_rows[r] + (ptrdiff_t)start * p->mask_stride_column : NULL;
                            active[i] = EW_NAME(attention_softmax_step)(scores + i * AT_KEY_BLOCK, width[i], columns, mask,
                                                                        p->mask_stride_column, removed[i], &w->maximum[r],
                                                                        &w->sum[r], w->acc + r * dv, dv);
                            if (active[i] && width[i] > count) count = width[i];
                        }
                    }
                    for (size_t i = 0; i < real; i++) all_active &= active[i];
                    if (all_active) {
                        // Rows narrower than `count` have weight 0 past their width; a group's padding
                        // rows (past `real`) add to their own accumulators, which are never stored.
                        EW_NAME(attention_values_group)(scores, values, value_stride, count, dv, w->acc + r0 * dv);
                    } else {
                        for (size_t i = 0; i < real; i++) {
                            if (active[i]) EW_NAME(attention_values1)(scores + i * AT_KEY_BLOCK, values, value_stride,
                                                                      width[i], dv, w->acc + (r0 + i) * dv);
                        }
                    }
                }
            }
            if (pass == 0 && !attention_mark_again(p, rows, w)) break;
        }
        attention_store(p, &it, w);
    }
}
