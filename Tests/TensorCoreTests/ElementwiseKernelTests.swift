import CKernels
import Foundation
import Testing
@testable import TensorCore

/// CKernels' elementwise kernels (activations, softmax rows, layer and RMS norm rows): every path this
/// CPU runs (the dispatched one, AVX2 and AVX-512 where available) against the portable path on awkward
/// lengths and special values, each path against double-precision references, and rows computed
/// alone giving the same bits as in a batch. Nothing here needs AVX-512: that path is compared only
/// where the CPU has it.
@Suite struct ElementwiseKernelTests {
    static let lengths = [1, 7, 15, 16, 17, 31, 33, 1000]

    /// The non-portable paths this CPU can run.
    static let widePaths: [Int32] = [Int32(CRAFT_PATH_AVX2), Int32(CRAFT_PATH_AVX512)].filter { craft_elementwise_path_available($0) != 0 }

    static let functions: [(name: String, id: Int32, reference: @Sendable (Double) -> Double)] = [
        ("exp", Int32(CRAFT_EXP), { Foundation.exp($0) }),
        ("sigmoid", Int32(CRAFT_SIGMOID), { 1 / (1 + Foundation.exp(-$0)) }),
        ("silu", Int32(CRAFT_SILU), { $0 / (1 + Foundation.exp(-$0)) }),
        ("gelu", Int32(CRAFT_GELU_ERF), { 0.5 * $0 * (1 + Foundation.erf($0 / 2.0.squareRoot())) }),
        ("geluTanh", Int32(CRAFT_GELU_TANH), {
            0.5 * $0 * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * ($0 + 0.044715 * $0 * $0 * $0)))
        }),
    ]

    /// `count` values: mostly uniform in ±`range`, and every fifth a large, tiny or special value
    /// (±∞, NaN, ±100, ±1e4, ±1e-30, a subnormal, ±0) when `special`.
    static func values(_ count: Int, seed: UInt64, range: Float = 12, special: Bool = true) -> [Float] {
        var generator = SplitMix64(seed: seed)
        let specials: [Float] = [.infinity, -.infinity, .nan, 100, -100, 1e4, -1e4, 1e-30, -1e-30, 1e-40, 0, -0.0, 88.7, -87.2, 89, -90]
        return (0..<count).map { i in
            let bits = generator.next()
            if special && i % 5 == 3 { return specials[Int(bits % UInt64(specials.count))] }
            return (Float(bits >> 40) / Float(1 << 24) * 2 - 1) * range
        }
    }

    /// Whether `a` and `b` agree: both NaN, equal, or within `tolerance · max(1, |b|)`.
    static func close(_ a: Float, _ b: Float, _ tolerance: Float) -> Bool {
        if a.isNaN || b.isNaN { return a.isNaN && b.isNaN }
        if a == b { return true }
        if a.isInfinite || b.isInfinite { return false }
        return Swift.abs(a - b) <= tolerance * Swift.max(1, Swift.abs(b))
    }

    static func activation(_ path: Int32, _ function: Int32, _ x: [Float]) -> [Float] {
        var y = [Float](repeating: -1, count: x.count)
        y.withUnsafeMutableBufferPointer { craft_activation_on(path, function, x, $0.baseAddress!, x.count) }
        return y
    }

    @Test func pathsAreReportedConsistently() {
        let path = craft_elementwise_path()
        #expect(craft_elementwise_path_available(path) != 0)
        #expect(craft_elementwise_path_available(Int32(CRAFT_PATH_PORTABLE)) != 0)
        let name = String(cString: craft_elementwise_kernel_name())
        #expect(["portable", "avx2-fma", "avx512f"].contains(name))
        if craft_elementwise_path_available(Int32(CRAFT_PATH_AVX512)) != 0 { #expect(path == Int32(CRAFT_PATH_AVX512)) }
    }

    @Test(arguments: 0..<5)
    func activationPathsAgree(index: Int) {
        let function = Self.functions[index]
        for length in Self.lengths {
            let x = Self.values(length, seed: UInt64(length * 10 + index))
            let portable = Self.activation(Int32(CRAFT_PATH_PORTABLE), function.id, x)
            var dispatched = [Float](repeating: -1, count: length)
            dispatched.withUnsafeMutableBufferPointer { craft_activation(function.id, x, $0.baseAddress!, length) }
            for (name, values) in [("dispatched", dispatched)] + Self.widePaths.map { ("path \($0)", Self.activation($0, function.id, x)) } {
                for i in 0..<length where !Self.close(values[i], portable[i], 1e-6) {
                    Issue.record("\(function.name) \(name) n=\(length): f(\(x[i])) = \(values[i]), portable \(portable[i])")
                    break
                }
            }
        }
    }

    @Test(arguments: 0..<5)
    func activationsMatchDoublePrecision(index: Int) {
        let function = Self.functions[index]
        // Outside exp's overflow and underflow: relative error (exp) or error relative to max(1, |f|).
        let x = Self.values(4000, seed: 99, range: 20, special: false) + [0, -0.0, 1e-8, -1e-8, 80, -80]
        for path in [Int32(CRAFT_PATH_PORTABLE)] + Self.widePaths {
            let y = Self.activation(path, function.id, x)
            for i in 0..<x.count {
                let expected = function.reference(Double(x[i]))
                let error = Swift.abs(Double(y[i]) - expected) / (function.id == Int32(CRAFT_EXP) ? expected : Swift.max(1, Swift.abs(expected)))
                if !(error < 1e-6) {
                    Issue.record("\(function.name) path \(path): f(\(x[i])) = \(y[i]), expected \(expected)")
                    break
                }
            }
        }
    }

    @Test func specialValuesFollowTorch() {
        let x: [Float] = [.infinity, -.infinity, .nan, 1e4, -1e4]
        for path in [Int32(CRAFT_PATH_PORTABLE)] + Self.widePaths {
            let exp = Self.activation(path, Int32(CRAFT_EXP), x)
            #expect(exp[0] == .infinity && exp[1] == 0 && exp[2].isNaN && exp[3] == .infinity && exp[4] == 0)
            let sigmoid = Self.activation(path, Int32(CRAFT_SIGMOID), x)
            #expect(sigmoid[0] == 1 && sigmoid[1] == 0 && sigmoid[2].isNaN && sigmoid[3] == 1 && sigmoid[4] == 0)
            for function in [Int32(CRAFT_SILU), Int32(CRAFT_GELU_ERF), Int32(CRAFT_GELU_TANH)] {
                // x · (something that tends to 1 or 0): ∞ at +∞, NaN at −∞ (−∞ · 0), as in torch.
                let y = Self.activation(path, function, x)
                #expect(y[0] == .infinity && y[1].isNaN && y[2].isNaN && y[3] == 1e4 && y[4] == 0, "function \(function): \(y)")
            }
        }
    }

    /// Softmax rows and attention take e^x only where x ≤ 0 (values minus their row's maximum), with a
    /// shorter exponential that must give the general one's bits there: every 4093rd bit pattern with
    /// the sign set (−0 through −∞ to the negative NaNs), every float of the underflow clamp's
    /// neighbourhood [−87, −86], and +0 and a positive NaN. (Checked over all 2³¹ such patterns when
    /// the exponential was written.)
    @Test func nonPositiveExponentialGivesTheGeneralBits() {
        var x: [Float] = [0, .nan]
        for bits in stride(from: UInt32(0x8000_0000), through: UInt32.max, by: 4093) { x.append(Float(bitPattern: bits)) }
        for bits in Float(-86).bitPattern...Float(-87).bitPattern { x.append(Float(bitPattern: bits)) }
        for path in [Int32(CRAFT_PATH_PORTABLE)] + Self.widePaths {
            let general = Self.activation(path, Int32(CRAFT_EXP), x)
            let shorter = Self.activation(path, Int32(CRAFT_EXP_NONPOSITIVE), x)
            let differing = x.indices.filter { general[$0].bitPattern != shorter[$0].bitPattern }
            let count = differing.count, first = differing.first.map { x[$0] }
            #expect(count == 0, "path \(path): e^x differs at \(count) x, the first \(first ?? 0)")
        }
    }

    static func softmax(_ path: Int32, _ x: [Float], rows: Int, n: Int) -> [Float] {
        var y = [Float](repeating: -1, count: x.count)
        y.withUnsafeMutableBufferPointer { craft_softmax_rows_on(path, x, $0.baseAddress!, rows, n) }
        return y
    }

    @Test func softmaxPathsAgreeAndRowsStandAlone() {
        for n in Self.lengths {
            let rows = 6
            var x = Self.values(rows * n, seed: UInt64(n), range: 30, special: false)
            // Row 1 masked in places (torch's finfo.min), row 2 huge values, row 3 a NaN, row 4 +∞.
            for j in stride(from: 0, to: n, by: 3) { x[n + j] = Tensor.maskedScore }
            for j in 0..<n { x[2 * n + j] *= 1e30 }
            x[3 * n + n / 2] = .nan
            x[4 * n + n / 3] = .infinity
            let portable = Self.softmax(Int32(CRAFT_PATH_PORTABLE), x, rows: rows, n: n)
            for path in Self.widePaths {
                let values = Self.softmax(path, x, rows: rows, n: n)
                for i in 0..<x.count where !Self.close(values[i], portable[i], 1e-6) {
                    Issue.record("softmax path \(path) n=\(n) [\(i)]: \(values[i]), portable \(portable[i])")
                    break
                }
            }
            // Each row against double precision (rows without NaN or ∞), and NaN rows all NaN.
            for row in [0, 1, 2, 5] {
                let slice = x[(row * n)..<((row + 1) * n)].map(Double.init)
                let maximum = slice.max()!
                let total = slice.reduce(0) { $0 + Foundation.exp($1 - maximum) }
                for j in 0..<n {
                    let expected = Foundation.exp(slice[j] - maximum) / total
                    #expect(Swift.abs(Double(portable[row * n + j]) - expected) < 1e-6, "row \(row) n=\(n) [\(j)]")
                }
            }
            #expect(portable[(3 * n)..<(4 * n)].allSatisfy { $0.isNaN })
            // A row computed alone has the bits it has in the batch, on every path.
            for path in [Int32(CRAFT_PATH_PORTABLE)] + Self.widePaths {
                let batch = Self.softmax(path, x, rows: rows, n: n)
                let alone = Self.softmax(path, Array(x[(5 * n)...]), rows: 1, n: n)
                #expect(alone.map(\.bitPattern) == batch[(5 * n)...].map(\.bitPattern))
            }
        }
    }

    static func norm(_ path: Int32, centered: Bool, _ x: [Float], rows: Int, n: Int, weight: [Float]?, bias: [Float]?)
        -> (y: [Float], statistics: [Float]) {
        var y = [Float](repeating: -1, count: x.count), statistics = [Float](repeating: -1, count: 2 * rows)
        let w = weight ?? [], b = bias ?? []
        y.withUnsafeMutableBufferPointer { out in
            statistics.withUnsafeMutableBufferPointer { stats in
                w.withUnsafeBufferPointer { w in
                    b.withUnsafeBufferPointer { b in
                        craft_norm_rows_on(path, centered ? 1 : 0, x, out.baseAddress!, rows, n, weight == nil ? nil : w.baseAddress,
                                           bias == nil ? nil : b.baseAddress, 1e-5, stats.baseAddress!)
                    }
                }
            }
        }
        return (y, statistics)
    }

    @Test(arguments: [true, false])
    func normalisationPathsAgree(centered: Bool) {
        for n in Self.lengths {
            let rows = 3
            // Values around 50 (the mean matters for layer norm), one row of constants.
            var x = Self.values(rows * n, seed: UInt64(n) + 7, range: 4, special: false).map { $0 + 50 }
            for j in 0..<n { x[2 * n + j] = 3 }
            let weight = Self.values(n, seed: 1, range: 2, special: false), bias = Self.values(n, seed: 2, range: 1, special: false)
            for (w, b) in [(weight, bias), (weight, nil), (nil, bias), (nil, nil)] as [([Float]?, [Float]?)] {
                let portable = Self.norm(Int32(CRAFT_PATH_PORTABLE), centered: centered, x, rows: rows, n: n, weight: w, bias: b)
                // Against double precision.
                for row in 0..<rows {
                    let slice = x[(row * n)..<((row + 1) * n)].map(Double.init)
                    let mean = centered ? slice.reduce(0, +) / Double(n) : 0
                    let variance = slice.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n)
                    let rstd = 1 / (variance + 1e-5).squareRoot()
                    #expect(Swift.abs(Double(portable.statistics[2 * row + 1]) - rstd) <= 1e-5 * rstd)
                    for j in 0..<n {
                        var expected = (slice[j] - mean) * rstd
                        if let w { expected *= Double(w[j]) }
                        if centered, let b { expected += Double(b[j]) }
                        #expect(Swift.abs(Double(portable.y[row * n + j]) - expected) < 1e-4 * Swift.max(1, Swift.abs(expected)),
                                "row \(row) n=\(n) [\(j)]: \(portable.y[row * n + j]), expected \(expected)")
                    }
                }
                for path in Self.widePaths {
                    let values = Self.norm(path, centered: centered, x, rows: rows, n: n, weight: w, bias: b)
                    for i in 0..<x.count where !Self.close(values.y[i], portable.y[i], 2e-5) {
                        Issue.record("norm path \(path) n=\(n) [\(i)]: \(values.y[i]), portable \(portable.y[i])")
                        break
                    }
                    for i in 0..<(2 * rows) { #expect(Self.close(values.statistics[i], portable.statistics[i], 1e-5)) }
                    let alone = Self.norm(path, centered: centered, Array(x[n...]), rows: rows - 1, n: n, weight: w, bias: b)
                    #expect(alone.y.map(\.bitPattern) == values.y[n...].map(\.bitPattern))
                }
            }
        }
    }

    /// The tensor operations give the same bits whatever the number of threads.
    @Test func tensorResultsDoNotDependOnThreads() {
        let x = Tensor(Self.values(64 * 1000, seed: 5, special: false), shape: [64, 1000])
        let weight = Tensor(Self.values(1000, seed: 6, special: false), shape: [1000])
        func all() -> [[Float]] {
            [x.gelu(), x.geluTanh(), x.silu(), x.sigmoid(), x.softmax(), x.layerNorm(weight: weight, bias: weight),
             x.rmsNorm(weight: weight)].map(\.scalars)
        }
        let one = ThreadSettings.$taskOverride.withValue(1) { all() }
        let many = ThreadSettings.$taskOverride.withValue(4) { all() }
        #expect(one.map { $0.map(\.bitPattern) } == many.map { $0.map(\.bitPattern) })
    }
}
