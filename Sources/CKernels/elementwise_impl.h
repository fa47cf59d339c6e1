// One copy of the elementwise kernels for a vector width, included by elementwise.c once per path
// with EW_LANES (4, 8 or 16), EW_ATTR (the functions' target attribute, or nothing) and EW_NAME(name)
// (the copy's names) defined. Written with the compiler's generic vectors, so each copy is the same
// code compiled for its instruction set; multiplications followed by additions may be fused where
// the target has FMA.

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

/// e^x as VectorMath.exp (Cephes' expf): relative error below 4e-7, 0 below −86.5 (no subnormal
/// intermediate), +∞ above 88.72, NaN kept.
EW_INLINE VF EW_NAME(exp)(VF x) {
    const VF low = EW_NAME(splat)(-86.5f), high = EW_NAME(splat)(88.72f);
    VF clamped = EW_NAME(select)(x < low, low, x);
    clamped = EW_NAME(select)(clamped > high, high, clamped);
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
    const VF polynomial = p * r * r + r + 1.0f;
    // 2ⁿ as two factors 2^(n/2), so that n = 128 (just below the overflow threshold) stays finite.
    const VI integer = (VI)shifted - 0x4B400000;
    const VI first = integer >> 1, second = integer - first;
    const VF scale_a = (VF)((first + 127) << 23), scale_b = (VF)((second + 127) << 23);
    VF result = polynomial * scale_a * scale_b;
    result = EW_NAME(select)(x < low, EW_NAME(splat)(0), result);
    result = EW_NAME(select)(x > high, EW_NAME(splat)(INFINITY), result);
    return EW_NAME(select)(x != x, x, result);
}

EW_INLINE VF EW_NAME(sigmoid)(VF x) { return 1.0f / (1.0f + EW_NAME(exp)(-x)); }

/// tanh x as 1 − 2 / (e^{2x} + 1) (absolute error below 2e-7).
EW_INLINE VF EW_NAME(tanh)(VF x) { return 1.0f - 2.0f / (EW_NAME(exp)(x + x) + 1.0f); }

/// erf x by Abramowitz & Stegun 7.1.26 (absolute error below 4e-7).
EW_INLINE VF EW_NAME(erf)(VF x) {
    const VI negative = x < 0.0f;
    const VF a = EW_NAME(select)(negative, -x, x);
    const VF t = 1.0f / (1.0f + 0.3275911f * a);
    VF p = EW_NAME(splat)(1.061405429f);
    p = p * t + -1.453152027f;
    p = p * t + 1.421413741f;
    p = p * t + -0.284496736f;
    p = p * t + 0.254829592f;
    const VF magnitude = 1.0f - p * t * EW_NAME(exp)(-a * a);
    return EW_NAME(select)(negative, -magnitude, magnitude);
}

EW_INLINE VF EW_NAME(apply)(int function, VF x) {
    switch (function) {
    case CRAFT_EXP: return EW_NAME(exp)(x);
    case CRAFT_SIGMOID: return EW_NAME(sigmoid)(x);
    case CRAFT_SILU: return x * EW_NAME(sigmoid)(x);
    case CRAFT_GELU_ERF: return 0.5f * x * (1.0f + EW_NAME(erf)(x * 0.70710678118654752f));
    default: {
        const VF inner = 0.7978845608028654f * (x + 0.044715f * x * x * x);
        return 0.5f * x * (1.0f + EW_NAME(tanh)(inner));
    }
    }
}

// One loop per function, so the switch is outside the loop.
EW_INLINE void EW_NAME(map)(int function, const float *x, float *y, size_t count) {
    size_t i = 0;
    for (; i + EW_LANES <= count; i += EW_LANES) EW_NAME(store)(y + i, EW_NAME(apply)(function, EW_NAME(load)(x + i)));
    if (i < count) EW_NAME(store_partial)(y + i, EW_NAME(apply)(function, EW_NAME(load_partial)(x + i, count - i, 0)), count - i);
}

EW_ATTR static void EW_NAME(activation)(int function, const float *x, float *y, size_t count) {
    switch (function) {
    case CRAFT_EXP: EW_NAME(map)(CRAFT_EXP, x, y, count); break;
    case CRAFT_SIGMOID: EW_NAME(map)(CRAFT_SIGMOID, x, y, count); break;
    case CRAFT_SILU: EW_NAME(map)(CRAFT_SILU, x, y, count); break;
    case CRAFT_GELU_ERF: EW_NAME(map)(CRAFT_GELU_ERF, x, y, count); break;
    default: EW_NAME(map)(CRAFT_GELU_TANH, x, y, count); break;
    }
}

EW_ATTR static void EW_NAME(softmax_rows)(const float *x, float *y, size_t rows, size_t n) {
    for (size_t row = 0; row < rows; row++) {
        const float *in = x + row * n;
        float *out = y + row * n;
        // The maximum (−∞ for padding lanes).
        VF best = EW_NAME(splat)(-INFINITY);
        size_t i = 0;
        for (; i + EW_LANES <= n; i += EW_LANES) {
            const VF v = EW_NAME(load)(in + i);
            best = EW_NAME(select)(v > best, v, best);
        }
        if (i < n) {
            const VF v = EW_NAME(load_partial)(in + i, n - i, -INFINITY);
            best = EW_NAME(select)(v > best, v, best);
        }
        const VF maximum = EW_NAME(splat)(EW_NAME(max_lanes)(best));
        // e^(x − max), stored and summed (padding lanes give e^−∞ = 0).
        VF sums = EW_NAME(splat)(0);
        for (i = 0; i + EW_LANES <= n; i += EW_LANES) {
            const VF e = EW_NAME(exp)(EW_NAME(load)(in + i) - maximum);
            EW_NAME(store)(out + i, e);
            sums += e;
        }
        if (i < n) {
            const VF e = EW_NAME(exp)(EW_NAME(load_partial)(in + i, n - i, -INFINITY) - maximum);
            EW_NAME(store_partial)(out + i, e, n - i);
            sums += e;
        }
        const VF inverse = EW_NAME(splat)(1.0f / EW_NAME(sum)(sums));
        for (i = 0; i + EW_LANES <= n; i += EW_LANES) EW_NAME(store)(out + i, EW_NAME(load)(out + i) * inverse);
        for (; i < n; i++) out[i] *= inverse[0];
    }
}

EW_ATTR static void EW_NAME(norm_rows)(int centered, const float *x, float *y, size_t rows, size_t n,
                                       const float *weight, const float *bias, float epsilon, float *statistics) {
    for (size_t row = 0; row < rows; row++) {
        const float *in = x + row * n;
        float *out = y + row * n;
        size_t i;
        float mean = 0;
        if (centered) {
            VF sums = EW_NAME(splat)(0);
            for (i = 0; i + EW_LANES <= n; i += EW_LANES) sums += EW_NAME(load)(in + i);
            float total = EW_NAME(sum)(sums);
            for (; i < n; i++) total += in[i];
            mean = total / (float)n;
        }
        // The biased variance of the centred values (the mean square for RMS norm).
        const VF center = EW_NAME(splat)(mean);
        VF squares = EW_NAME(splat)(0);
        for (i = 0; i + EW_LANES <= n; i += EW_LANES) {
            const VF d = EW_NAME(load)(in + i) - center;
            squares += d * d;
        }
        float variance = EW_NAME(sum)(squares);
        for (; i < n; i++) { const float d = in[i] - mean; variance += d * d; }
        variance /= (float)n;
        const float rstd = 1.0f / sqrtf(variance + epsilon);
        if (statistics) { statistics[2 * row] = mean; statistics[2 * row + 1] = rstd; }
        const VF scale = EW_NAME(splat)(rstd);
        const float *b = centered ? bias : NULL;
        for (i = 0; i + EW_LANES <= n; i += EW_LANES) {
            VF v = (EW_NAME(load)(in + i) - center) * scale;
            if (weight) v *= EW_NAME(load)(weight + i);
            if (b) v += EW_NAME(load)(b + i);
            EW_NAME(store)(out + i, v);
        }
        for (; i < n; i++) {
            float v = (in[i] - mean) * rstd;
            if (weight) v *= weight[i];
            if (b) v += b[i];
            out[i] = v;
        }
    }
}

#undef VF
#undef VI
#undef EW_INLINE
