// One lane count's vector helpers (splat, loads and stores, select, lane sum and maximum, exp), included
// by the kernel files once per path before their kernels, with EW_LANES (4, 8 or 16), EW_ATTR (the
// functions' target attribute, or nothing) and EW_NAME(name) (the copy's names) defined. Defines VF,
// VI and EW_INLINE for the kernels that follow; the including file undefines them after its kernels.
// Written with the compiler's generic vectors, so each copy is the same code compiled for its
// instruction set; multiplications followed by additions may be fused where the target has FMA.

typedef float EW_NAME(vf) __attribute__((vector_size(EW_LANES * 4)));
typedef int32_t EW_NAME(vi) __attribute__((vector_size(EW_LANES * 4)));
#define VF EW_NAME(vf)
#define VI EW_NAME(vi)
#define EW_INLINE EW_ATTR __attribute__((always_inline)) static inline

EW_INLINE VF EW_NAME(splat)(float value) {
    VF v;
    for (int i = 0; i < EW_LANES; i++) v[i] = value;
    return v;
}

EW_INLINE VF EW_NAME(load)(const float *p) {
    VF v;
    memcpy(&v, p, sizeof v);
    return v;
}

EW_INLINE void EW_NAME(store)(float *p, VF v) { memcpy(p, &v, sizeof v); }

/// The first `count` (< EW_LANES) values at `p`, the other lanes `padding`.
EW_INLINE VF EW_NAME(load_partial)(const float *p, size_t count, float padding) {
    VF v = EW_NAME(splat)(padding);
    for (size_t i = 0; i < count; i++) v[i] = p[i];
    return v;
}

EW_INLINE void EW_NAME(store_partial)(float *p, VF v, size_t count) {
    for (size_t i = 0; i < count; i++) p[i] = v[i];
}

/// `mask ? a : b` lane by lane (`mask` all ones or all zeros per lane).
EW_INLINE VF EW_NAME(select)(VI mask, VF a, VF b) {
    return (VF)((mask & (VI)a) | (~mask & (VI)b));
}

/// The lanes summed in a fixed order (halves added until one lane is left).
EW_INLINE float EW_NAME(sum)(VF v) {
    float lanes[EW_LANES];
    memcpy(lanes, &v, sizeof lanes);
    for (int width = EW_LANES / 2; width >= 1; width /= 2) {
        for (int i = 0; i < width; i++) lanes[i] += lanes[i + width];
    }
    return lanes[0];
}

EW_INLINE float EW_NAME(max_lanes)(VF v) {
    float best = v[0];
    for (int i = 1; i < EW_LANES; i++) best = v[i] > best ? v[i] : best;
    return best;
}

/// Cephes' expf on an x already clamped to [−86.5, 88.72]: e^r for the reduced r = x − n·ln 2, with n
/// (the nearest integer to x·log2(e)) in `integer`.
EW_INLINE VF EW_NAME(exp_reduced)(VF clamped, VI *integer) {
    // Round x·log2(e) to the nearest integer with the 1.5·2²³ trick; the integer sits in the low bits.
    const VF magic = EW_NAME(splat)(12582912.0f);
    const VF shifted = clamped * 1.4426950409f + magic;
    const VF n = shifted - magic;
    const VF r = clamped - n * 0.693359375f - n * -2.12194440e-4f;
    VF p = EW_NAME(splat)(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    *integer = (VI)shifted - 0x4B400000;
    return p * r * r + r + 1.0f;
}

/// e^x as VectorMath.exp (Cephes' expf): relative error below 4e-7, 0 below −86.5 (no subnormal
/// intermediate), +∞ above 88.72, NaN kept.
EW_INLINE VF EW_NAME(exp)(VF x) {
    const VF low = EW_NAME(splat)(-86.5f), high = EW_NAME(splat)(88.72f);
    VF clamped = EW_NAME(select)(x < low, low, x);
    clamped = EW_NAME(select)(clamped > high, high, clamped);
    VI integer;
    const VF polynomial = EW_NAME(exp_reduced)(clamped, &integer);
    // 2ⁿ as two factors 2^(n/2), so that n = 128 (just below the overflow threshold) stays finite.
    const VI first = integer >> 1, second = integer - first;
    const VF scale_a = (VF)((first + 127) << 23), scale_b = (VF)((second + 127) << 23);
    VF result = polynomial * scale_a * scale_b;
    result = EW_NAME(select)(x < low, EW_NAME(splat)(0), result);
    result = EW_NAME(select)(x > high, EW_NAME(splat)(INFINITY), result);
    return EW_NAME(select)(x != x, x, result);
}

/// EW_NAME(exp) for x ≤ 0 or NaN (a softmax's x − max): the same bits with less work, since such x
/// never reach the overflow clamp, and 2ⁿ (n ≥ −125 after the clamp at −86.5) is one normal factor:
/// p · 2^(n/2) · 2^(n − n/2) and p · 2ⁿ are the same exact product. Checked bit for bit against
/// EW_NAME(exp) over every non-positive float (ElementwiseKernelTests).
EW_INLINE VF EW_NAME(exp_nonpositive)(VF x) {
    const VF low = EW_NAME(splat)(-86.5f);
    VI integer;
    const VF polynomial = EW_NAME(exp_reduced)(EW_NAME(select)(x < low, low, x), &integer);
    VF result = polynomial * (VF)((integer + 127) << 23);
    result = EW_NAME(select)(x < low, EW_NAME(splat)(0), result);
    return EW_NAME(select)(x != x, x, result);
}

/// The maximum of the `count` values at `p` (−∞ when there are none).
EW_INLINE float EW_NAME(row_max)(const float *p, size_t count) {
    VF best = EW_NAME(splat)(-INFINITY);
    size_t i = 0;
    for (; i + EW_LANES <= count; i += EW_LANES) {
        const VF v = EW_NAME(load)(p + i);
        best = EW_NAME(select)(v > best, v, best);
    }
    if (i < count) {
        const VF v = EW_NAME(load_partial)(p + i, count - i, -INFINITY);
        best = EW_NAME(select)(v > best, v, best);
    }
    return EW_NAME(max_lanes)(best);
}

/// Writes e^(in[i] − shift) to out[i] for i < count (`out` may be `in`) and returns their lane sums,
/// added in index order (a softmax's denominator before ``sum``). `shift` is at least every value
/// that is not NaN (a row's maximum), so every exponent is ≤ 0 or NaN.
EW_INLINE VF EW_NAME(exp_shifted)(const float *in, float *out, size_t count, float shift) {
    const VF shifts = EW_NAME(splat)(shift);
    VF sums = EW_NAME(splat)(0);
    size_t i = 0;
    for (; i + EW_LANES <= count; i += EW_LANES) {
        const VF e = EW_NAME(exp_nonpositive)(EW_NAME(load)(in + i) - shifts);
        EW_NAME(store)(out + i, e);
        sums += e;
    }
    if (i < count) {
        // Lanes past the end are −∞ and give e^−∞ = 0.
        const VF e = EW_NAME(exp_nonpositive)(EW_NAME(load_partial)(in + i, count - i, -INFINITY) - shifts);
        EW_NAME(store_partial)(out + i, e, count - i);
        sums += e;
    }
    return sums;
}
