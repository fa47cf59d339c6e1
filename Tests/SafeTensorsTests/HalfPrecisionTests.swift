import Testing
@testable import SafeTensors

@Suite("F16 and BF16 conversions")
struct HalfPrecisionTests {
    #if !(os(macOS) && arch(x86_64))
    @Test("F16 to F32 is exact for all 65536 bit patterns (checked against Swift's Float16)")
    func halfToFloatIsExactForEveryPattern() {
        var mismatches: [UInt16] = []
        for bits in UInt16.min...UInt16.max {
            let reference = Float(Float16(bitPattern: bits))
            let ours = HalfPrecision.float(fromHalf: bits)
            let same = reference.isNaN ? ours.isNaN : ours.bitPattern == reference.bitPattern
            if !same { mismatches.append(bits) }
        }
        #expect(mismatches.isEmpty, "first mismatches: \(mismatches.prefix(5))")
    }

    @Test("F32 to F16 rounds to nearest even like Float16(_:) on 200000 seeded random bit patterns")
    func floatToHalfRoundsToNearestEven() {
        var generator = SplitMix64(seed: 0xC0FFEE)
        var mismatches: [UInt32] = []
        for _ in 0..<200_000 {
            let bits = UInt32(truncatingIfNeeded: generator.next())
            let value = Float(bitPattern: bits)
            let ours = HalfPrecision.halfBits(from: value)
            let reference = Float16(value).bitPattern
            let same = value.isNaN ? (ours & 0x7C00 == 0x7C00 && ours & 0x3FF != 0) : ours == reference
            if !same { mismatches.append(bits) }
        }
        #expect(mismatches.isEmpty, "first mismatching inputs: \(mismatches.prefix(5))")
    }
    #endif

    @Test("F16 edge patterns convert to their exact Float32 values")
    func halfEdgeValues() {
        #expect(HalfPrecision.float(fromHalf: 0x0001) == 0x1p-24)  // smallest subnormal
        #expect(HalfPrecision.float(fromHalf: 0x03FF) == 1023 * 0x1p-24)  // largest subnormal
        #expect(HalfPrecision.float(fromHalf: 0x0400) == 0x1p-14)  // smallest normal
        #expect(HalfPrecision.float(fromHalf: 0x7BFF) == 65504)
        #expect(HalfPrecision.float(fromHalf: 0x7C00) == .infinity)
        #expect(HalfPrecision.float(fromHalf: 0xFC00) == -.infinity)
        #expect(HalfPrecision.float(fromHalf: 0x8000).bitPattern == (-0.0 as Float).bitPattern)
        #expect(HalfPrecision.float(fromHalf: 0x7E00).isNaN)
        #expect(HalfPrecision.halfBits(from: 65520) == 0x7C00)  // halfway above max rounds to infinity
        #expect(HalfPrecision.halfBits(from: 65519.99) == 0x7BFF)
        #expect(HalfPrecision.halfBits(from: 0x1p-25) == 0x0000)  // tie to even: zero
        #expect(HalfPrecision.halfBits(from: 3 * 0x1p-25) == 0x0002)  // tie to even: 2
        #expect(HalfPrecision.halfBits(from: 1 + 0x1p-11) == 0x3C00)  // tie to even: down
        #expect(HalfPrecision.halfBits(from: 1 + 3 * 0x1p-11) == 0x3C02)  // tie to even: up
        #expect(HalfPrecision.halfBits(from: .nan) == 0x7E00)
    }

    @Test("BF16 conversions: exact widening, round-to-nearest-even narrowing, NaN as 0x7FC0")
    func bfloatConversions() {
        #expect(HalfPrecision.float(fromBFloat: 0x0001) == 0x1p-133)
        #expect(HalfPrecision.float(fromBFloat: 0x7F80) == .infinity)
        #expect(HalfPrecision.float(fromBFloat: 0x3F80) == 1)
        #expect(HalfPrecision.bfloatBits(from: 1 + 0x1p-8) == 0x3F80)  // tie to even: down
        #expect(HalfPrecision.bfloatBits(from: 1 + 3 * 0x1p-8) == 0x3F82)  // tie to even: up
        #expect(HalfPrecision.bfloatBits(from: 1 + 0x1p-8 + 0x1p-20) == 0x3F81)
        #expect(HalfPrecision.bfloatBits(from: .greatestFiniteMagnitude) == 0x7F80)  // rounds to infinity
        #expect(HalfPrecision.bfloatBits(from: -.nan) == 0x7FC0)
    }
}

/// A small seeded generator (SplitMix64) so random tests are reproducible.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
