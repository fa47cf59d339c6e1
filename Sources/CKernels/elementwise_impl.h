// One copy of the elementwise kernels for a vector width, included by elementwise.c once per path
// with EW_LANES (4, 8 or 16), EW_ATTR (the functions' target attribute, or nothing) and EW_NAME(name)
// (the copy's names) defined. Written with the compiler's generic vectors, so each copy is the same
// code compiled for its instruction set; multiplications followed by additions may be fused where
// the target has FMA.

#include "vector_impl.h"

EW_INLINE VF EW_NAME(sigmoid)(VF x) { return 1.0f / (1.0f + EW_NAME(exp)(-x)); }

/// tanh x by the rational approximation of Eigen's `ptanh_float` (odd degree-13 numerator, even
/// degree-6 denominator on x clamped to ±7.99881): absolute error below 3e-7 with fused
/// multiply-adds, 5e-7 without; exactly ±1 from ±7.99881 on, x itself below 4e-4 in magnitude, NaN
/// kept. GELU takes 0.65 of its time with 1 − 2 / (e^{2x} + 1), whose exponential and division
/// set its speed (docs/benchmarks.md, "Elementwise kernels").
EW_INLINE VF EW_NAME(tanh)(VF x) {
    const VF limit = EW_NAME(splat)(7.99881172180175781f);
    VF c = EW_NAME(select)(x > limit, limit, x);
    c = EW_NAME(select)(c < -limit, -limit, c);
    const VF c2 = c * c;
    VF p = EW_NAME(splat)(-2.76076847742355e-16f);
    p = p * c2 + 2.00018790482477e-13f;
    p = p * c2 + -8.60467152213735e-11f;
    p = p * c2 + 5.12229709037114e-08f;
    p = p * c2 + 1.48572235717979e-05f;
    p = p * c2 + 6.37261928875436e-04f;
    p = p * c2 + 4.89352455891786e-03f;
    VF q = EW_NAME(splat)(1.19825839466702e-06f);
    q = q * c2 + 1.18534705686654e-04f;
    q = q * c2 + 2.26843463243900e-03f;
    q = q * c2 + 4.89352518554385e-03f;
    VF t = p * c / q;
    t = EW_NAME(select)(x >= limit, EW_NAME(splat)(1.0f), t);
    t = EW_NAME(select)(x <= -limit, EW_NAME(splat)(-1.0f), t);
    return EW_NAME(select)((x < 4e-4f) & (x > -4e-4f), x, t);
}

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
    case CRAFT_EXP_NONPOSITIVE: return EW_NAME(exp_nonpositive)(x);
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
    case CRAFT_EXP_NONPOSITIVE: EW_NAME(map)(CRAFT_EXP_NONPOSITIVE, x, y, count); break;
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
        // e^(x − max), stored and summed.
        const VF sums = EW_NAME(exp_shifted)(in, out, n, EW_NAME(row_max)(in, n));
        const VF inverse = EW_NAME(splat)(1.0f / EW_NAME(sum)(sums));
        size_t i = 0;
        for (; i + EW_LANES <= n; i += EW_LANES) EW_NAME(store)(out + i, EW_NAME(load)(out + i) * inverse);
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
