// Vectorised elementary functions on SIMD16<Float> for the hot elementwise kernels (softmax, GELU,
// SiLU, sigmoid). exp follows Cephes' expf (range reduction by ln 2 split in two parts, degree-6
// polynomial, exponent built in the bits); erf is Abramowitz & Stegun 7.1.26 (absolute error < 4e-7).

typealias Vector = SIMD16<Float>

enum VectorMath {
    /// e^x with relative error below 4e-7; 0 below −86.5 (results under 2.6e-38 are flushed to zero, so no
    /// intermediate is ever subnormal, which x86 computes very slowly), +∞ above 88.72, NaN kept.
    @inline(__always)
    static func exp(_ x: Vector) -> Vector {
        let low = Vector(repeating: -86.5), high = Vector(repeating: 88.72)
        let clamped = x.replacing(with: low, where: x .< low).replacing(with: high, where: x .> high)
        // Round x·log2(e) to the nearest integer with the 1.5·2²³ trick; the integer sits in the low bits.
        let magic = Vector(repeating: 12_582_912)
        let shifted = clamped * Vector(repeating: 1.442_695_040_9) + magic
        let n = shifted - magic
        let r = clamped - n * Vector(repeating: 0.693_359_375) - n * Vector(repeating: -2.121_944_4e-4)
        var p = Vector(repeating: 1.987_569_150_0e-4)
        p = p * r + Vector(repeating: 1.398_199_950_7e-3)
        p = p * r + Vector(repeating: 8.333_451_907_3e-3)
        p = p * r + Vector(repeating: 4.166_579_589_4e-2)
        p = p * r + Vector(repeating: 1.666_666_545_9e-1)
        p = p * r + Vector(repeating: 5.000_000_120_1e-1)
        let polynomial = p * r * r + r + Vector(repeating: 1)
        // 2ⁿ as two factors 2^(n/2) so that n = 128 (just below the overflow threshold) stays finite.
        let integer = unsafeBitCast(shifted, to: SIMD16<Int32>.self) &- SIMD16<Int32>(repeating: 0x4B40_0000)
        let firstHalf = integer &>> 1, secondHalf = integer &- firstHalf
        let bias = SIMD16<Int32>(repeating: 127)
        let scaleA = unsafeBitCast((firstHalf &+ bias) &<< 23, to: Vector.self)
        let scaleB = unsafeBitCast((secondHalf &+ bias) &<< 23, to: Vector.self)
        var result = polynomial * scaleA * scaleB
        result.replace(with: Vector(repeating: 0), where: x .< low)
        result.replace(with: Vector(repeating: .infinity), where: x .> Vector(repeating: 88.72))
        result.replace(with: x, where: x .!= x)
        return result
    }

    /// 1 / (1 + e^−x), absolute error below 1e-7.
    @inline(__always)
    static func sigmoid(_ x: Vector) -> Vector {
        Vector(repeating: 1) / (Vector(repeating: 1) + exp(-x))
    }

    /// tanh x as 1 − 2 / (e^{2x} + 1): absolute error below 2e-7 (use where absolute accuracy matters,
    /// as inside GELU; near 0 the relative error grows).
    @inline(__always)
    static func tanh(_ x: Vector) -> Vector {
        Vector(repeating: 1) - Vector(repeating: 2) / (exp(x + x) + Vector(repeating: 1))
    }

    /// erf x with absolute error below 4e-7 (Abramowitz & Stegun 7.1.26's 1.5e-7 plus Float rounding).
    @inline(__always)
    static func erf(_ x: Vector) -> Vector {
        let a = x.replacing(with: -x, where: x .< 0)
        let t = Vector(repeating: 1) / (Vector(repeating: 1) + Vector(repeating: 0.327_591_1) * a)
        var p = Vector(repeating: 1.061_405_429)
        p = p * t + Vector(repeating: -1.453_152_027)
        p = p * t + Vector(repeating: 1.421_413_741)
        p = p * t + Vector(repeating: -0.284_496_736)
        p = p * t + Vector(repeating: 0.254_829_592)
        let magnitude = Vector(repeating: 1) - p * t * exp(-a * a)
        return magnitude.replacing(with: -magnitude, where: x .< 0)
    }

    /// Applies `body` to 16 values at a time from `input` into `output`; the tail is padded with `padding`.
    @inline(__always)
    static func map(
        _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ count: Int,
        padding: Float = 0, _ body: (Vector) -> Vector
    ) {
        var index = 0
        let source = UnsafeRawPointer(input), destination = UnsafeMutableRawPointer(output)
        while index + 16 <= count {
            let value = body(source.loadUnaligned(fromByteOffset: index * 4, as: Vector.self))
            destination.storeBytes(of: value, toByteOffset: index * 4, as: Vector.self)
            index += 16
        }
        if index < count {
            var tail = Vector(repeating: padding)
            for lane in 0..<(count - index) { tail[lane] = input[index + lane] }
            let value = body(tail)
            for lane in 0..<(count - index) { output[index + lane] = value[lane] }
        }
    }

    /// Applies `body` to 16 pairs at a time from `a` and `b` into `output`.
    @inline(__always)
    static func map(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ count: Int,
        _ body: (Vector, Vector) -> Vector
    ) {
        var index = 0
        let sourceA = UnsafeRawPointer(a), sourceB = UnsafeRawPointer(b)
        let destination = UnsafeMutableRawPointer(output)
        while index + 16 <= count {
            let value = body(sourceA.loadUnaligned(fromByteOffset: index * 4, as: Vector.self),
                             sourceB.loadUnaligned(fromByteOffset: index * 4, as: Vector.self))
            destination.storeBytes(of: value, toByteOffset: index * 4, as: Vector.self)
            index += 16
        }
        if index < count {
            var tailA = Vector(repeating: 0), tailB = Vector(repeating: 0)
            for lane in 0..<(count - index) { tailA[lane] = a[index + lane]; tailB[lane] = b[index + lane] }
            let value = body(tailA, tailB)
            for lane in 0..<(count - index) { output[index + lane] = value[lane] }
        }
    }
}
