// SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014),
// the generator java.util.SplittableRandom and many seeding schemes use.

/// A small, fast, seeded pseudorandom generator with a fixed, documented sequence.
///
/// Each call to `next()` adds the golden-ratio increment `0x9E3779B97F4A7C15` to the state and mixes it
/// (`xor-shift 30, × 0xBF58476D1CE4E5B9, xor-shift 27, × 0x94D049BB133111EB, xor-shift 31`). The same seed
/// gives the same sequence on every platform and Swift version, which makes weight initialisation and
/// data shuffling reproducible. Not suitable for cryptography.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    /// The current state; the next output is derived from `state + 0x9E3779B97F4A7C15`.
    public private(set) var state: UInt64

    /// Creates a generator whose sequence is fully determined by `seed`.
    public init(seed: UInt64) { state = seed }

    /// Returns the next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
