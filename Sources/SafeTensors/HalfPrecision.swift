// Exact F16/BF16 <-> F32 conversions on bit patterns.
//
// F16 -> F32 and BF16 -> F32 are exact (subnormals, infinities, NaN payloads kept). F32 -> F16
// follows numpy's `npy_floatbits_to_halfbits` (round to nearest even, overflow to infinity, NaN
// payload kept and never turned into infinity); F32 -> BF16 follows torch's `c10::BFloat16`
// `round_to_nearest_even` (NaN becomes 0x7FC0). Bit arithmetic rather than Swift's `Float16` so it
// also works where that type is unavailable (macOS on Intel).

package enum HalfPrecision {
    /// The Float32 bit pattern of the IEEE binary16 value with bits `half`.
    @inline(__always)
    static func floatBits(fromHalf half: UInt16) -> UInt32 {
        let sign = UInt32(half & 0x8000) << 16
        let exponent = UInt32(half >> 10) & 0x1F
        let mantissa = UInt32(half & 0x3FF)
        if exponent == 0 {
            if mantissa == 0 { return sign }
            // Subnormal: mantissa × 2^-24, exactly representable in Float32.
            let magnitude = Float(mantissa) * 0x1p-24
            return sign | magnitude.bitPattern
        }
        if exponent == 0x1F {
            return sign | 0x7F80_0000 | (mantissa << 13)
        }
        return sign | ((exponent + 112) << 23) | (mantissa << 13)
    }

    /// The Float32 value of the binary16 bits `half`.
    @inline(__always)
    package static func float(fromHalf half: UInt16) -> Float {
        Float(bitPattern: floatBits(fromHalf: half))
    }

    /// The Float32 value of the bfloat16 bits `bfloat`.
    @inline(__always)
    package static func float(fromBFloat bfloat: UInt16) -> Float {
        Float(bitPattern: UInt32(bfloat) << 16)
    }

    /// The binary16 bits nearest to `value` (round to nearest even), as numpy converts.
    static func halfBits(from value: Float) -> UInt16 {
        let bits = value.bitPattern
        var exponent = bits & 0x7F80_0000
        var significand = bits & 0x007F_FFFF
        let sign = UInt16((bits & 0x8000_0000) >> 16)

        if exponent >= 0x4780_0000 {
            if exponent == 0x7F80_0000, significand != 0 {
                var nan = UInt16(0x7C00 + (significand >> 13))
                if nan == 0x7C00 { nan += 1 }
                return sign + nan
            }
            return sign + 0x7C00  // infinity, or overflow to infinity
        }
        if exponent <= 0x3800_0000 {
            if exponent < 0x3300_0000 { return sign }  // underflow to signed zero
            exponent >>= 23
            significand = 0x0080_0000 + significand
            significand >>= (113 - exponent)
            // Round to nearest even; the shift may have dropped up to 11 low bits of the input.
            if (significand & 0x3FFF) != 0x1000 || (bits & 0x7FF) != 0 {
                significand += 0x1000
            }
            return sign + UInt16(significand >> 13)
        }
        let halfExponent = (exponent - 0x3800_0000) >> 13
        var halfSignificand = significand
        if (halfSignificand & 0x3FFF) != 0x1000 {
            halfSignificand += 0x1000
        }
        // A carry out of the significand correctly bumps the exponent (up to infinity).
        return sign + UInt16(truncatingIfNeeded: (halfSignificand >> 13) + halfExponent)
    }

    /// The bfloat16 bits nearest to `value` (round to nearest even), as torch converts.
    static func bfloatBits(from value: Float) -> UInt16 {
        if value.isNaN { return 0x7FC0 }
        let bits = value.bitPattern
        let roundingBias = ((bits >> 16) & 1) + 0x7FFF
        return UInt16(truncatingIfNeeded: (bits &+ roundingBias) >> 16)
    }
}
