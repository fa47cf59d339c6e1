// `craft-bench elementwise`: CKernels' elementwise kernels (activations, softmax rows, layer and RMS
// norm rows) on the path dispatched for this CPU, against the portable C path and against the Swift
// SIMD16<Float> code TensorCore ran before them (kept below, in this file only, as the peer), on one
// thread over transformer-sized inputs; the three alternate within each round; medians.
// Results and the exact command: docs/benchmarks.md ("Elementwise kernels").
//
//   craft-bench elementwise [--rounds 7] [--iterations 5]
import CKernels
import Foundation
import TensorCore

enum ElementwiseBenchmark {
    struct Options {
        var rounds = 7
        var iterations = 5
    }

    static func parse(_ arguments: [String]) throws -> Options {
        var options = Options()
        var reader = BenchmarkArguments(arguments)
        while let argument = reader.next() {
            switch argument {
            case "--rounds": options.rounds = try reader.positiveInteger(after: argument)
            case "--iterations": options.iterations = try reader.positiveInteger(after: argument)
            default: throw BenchmarkError("unknown option \(argument); see the header of ElementwiseBenchmark.swift", usage: true)
            }
        }
        return options
    }

    /// One case: the C kernel on a given path, and the old Swift code, both writing `output`.
    struct Case {
        let label: String
        let kernel: (Int32) -> Void
        let swift: () -> Void
    }

    static func run(arguments: [String]) throws {
        let options = try parse(arguments)
        let dispatched = craft_elementwise_path(), portable = Int32(CRAFT_PATH_PORTABLE)
        print("craft-bench elementwise: \(options.rounds) alternating rounds x \(options.iterations) iterations, 1 thread, medians in ms; "
            + "CPU: \(HalfPrecisionBenchmark.cpuModel()); elementwise kernels: \(String(cString: craft_elementwise_kernel_name())); "
            + "load average \(ModelBenchmark.loadAverage())")
        var source = GaussianSource(seed: 7)
        let wide = (0..<(512 * 3072)).map { _ in source.next() * 2 }
        let scores = (0..<(8 * 6 * 256 * 256)).map { _ in source.next() * 4 }
        let rows = (0..<(512 * 768)).map { _ in source.next() + 0.5 }
        let weight = (0..<768).map { _ in 1 + 0.1 * source.next() }, bias = (0..<768).map { _ in 0.1 * source.next() }
        let output = UnsafeMutablePointer<Float>.allocate(capacity: scores.count)
        defer { output.deallocate() }
        let statistics = UnsafeMutablePointer<Float>.allocate(capacity: 2 * 512)
        defer { statistics.deallocate() }

        func activation(_ label: String, _ function: Int32, _ old: @escaping (OldVector) -> OldVector) -> Case {
            Case(label: "\(label) 512x3072",
                 kernel: { path in craft_activation_on(path, function, wide, output, wide.count) },
                 swift: { wide.withUnsafeBufferPointer { OldSwift.map($0.baseAddress!, output, wide.count, old) } })
        }
        let c = OldVector(repeating: Float((2 / Double.pi).squareRoot())), k = OldVector(repeating: 0.044715)
        let cases: [Case] = [
            activation("GELU (erf)", Int32(CRAFT_GELU_ERF)) { x in
                OldVector(repeating: 0.5) * x * (OldVector(repeating: 1) + OldSwift.erf(x * OldVector(repeating: Float(0.5.squareRoot()))))
            },
            activation("GELU (tanh)", Int32(CRAFT_GELU_TANH)) { x in
                OldVector(repeating: 0.5) * x * (OldVector(repeating: 1) + OldSwift.tanh(c * (x + k * x * x * x)))
            },
            activation("SiLU", Int32(CRAFT_SILU)) { x in x * OldSwift.sigmoid(x) },
            activation("sigmoid", Int32(CRAFT_SIGMOID)) { x in OldSwift.sigmoid(x) },
            Case(label: "softmax rows 8x6x256x256",
                 kernel: { path in craft_softmax_rows_on(path, scores, output, scores.count / 256, 256) },
                 swift: {
                     scores.withUnsafeBufferPointer { x in
                         for row in 0..<(scores.count / 256) { OldSwift.softmaxRow(x.baseAddress! + row * 256, output + row * 256, 256) }
                     }
                 }),
            Case(label: "LayerNorm 512x768",
                 kernel: { path in craft_norm_rows_on(path, 1, rows, output, 512, 768, weight, bias, 1e-5, statistics) },
                 swift: { OldSwift.normRows(rows, output, 512, 768, weight, bias, 1e-5, statistics, centered: true) }),
            Case(label: "RMSNorm 512x768",
                 kernel: { path in craft_norm_rows_on(path, 0, rows, output, 512, 768, weight, nil, 1e-6, statistics) },
                 swift: { OldSwift.normRows(rows, output, 512, 768, weight, nil, 1e-6, statistics, centered: false) }),
        ]
        let name = String(cString: craft_elementwise_kernel_name())
        var table = [["case", "\(name) ms", "portable C ms", "old Swift ms", "portable/\(name)", "old Swift/\(name)"]]
        for testCase in cases {
            var times: [[Double]] = [[], [], []]
            let runs: [() -> Void] = [{ testCase.kernel(dispatched) }, { testCase.kernel(portable) }, testCase.swift]
            for run in runs { run() }  // warm-up
            for _ in 0..<options.rounds {
                for (index, run) in runs.enumerated() {
                    for _ in 0..<options.iterations { times[index].append(LayerBenchmark.time(run)) }
                }
            }
            let medians = times.map(QuantizeBenchmark.median)
            Summary.line("elementwise", String(format: "%@: %.2fx faster than the portable C path, %.2fx than the old Swift code",
                                               testCase.label, medians[1] / medians[0], medians[2] / medians[0]))
            table.append([testCase.label] + medians.map { String(format: "%.3f", $0) }
                + [String(format: "%.2fx", medians[1] / medians[0]), String(format: "%.2fx", medians[2] / medians[0])])
        }
        QuantizeBenchmark.printTable(table)
    }
}

typealias OldVector = SIMD16<Float>

/// TensorCore's Swift elementwise code before CKernels took it over (VectorMath.swift, `softmaxRow`,
/// the normalisation loop), as the benchmark's peer. Compiled by Swift for baseline x86-64 (SSE2).
enum OldSwift {
    @inline(__always)
    static func exp(_ x: OldVector) -> OldVector {
        let low = OldVector(repeating: -86.5), high = OldVector(repeating: 88.72)
        let clamped = x.replacing(with: low, where: x .< low).replacing(with: high, where: x .> high)
        let magic = OldVector(repeating: 12_582_912)
        let shifted = clamped * OldVector(repeating: 1.442_695_040_9) + magic
        let n = shifted - magic
        let r = clamped - n * OldVector(repeating: 0.693_359_375) - n * OldVector(repeating: -2.121_944_4e-4)
        var p = OldVector(repeating: 1.987_569_150_0e-4)
        p = p * r + OldVector(repeating: 1.398_199_950_7e-3)
        p = p * r + OldVector(repeating: 8.333_451_907_3e-3)
        p = p * r + OldVector(repeating: 4.166_579_589_4e-2)
        p = p * r + OldVector(repeating: 1.666_666_545_9e-1)
        p = p * r + OldVector(repeating: 5.000_000_120_1e-1)
        let polynomial = p * r * r + r + OldVector(repeating: 1)
        let integer = unsafeBitCast(shifted, to: SIMD16<Int32>.self) &- SIMD16<Int32>(repeating: 0x4B40_0000)
        let firstHalf = integer &>> 1, secondHalf = integer &- firstHalf
        let bias = SIMD16<Int32>(repeating: 127)
        let scaleA = unsafeBitCast((firstHalf &+ bias) &<< 23, to: OldVector.self)
        let scaleB = unsafeBitCast((secondHalf &+ bias) &<< 23, to: OldVector.self)
        var result = polynomial * scaleA * scaleB
        result.replace(with: OldVector(repeating: 0), where: x .< low)
        result.replace(with: OldVector(repeating: .infinity), where: x .> OldVector(repeating: 88.72))
        result.replace(with: x, where: x .!= x)
        return result
    }

    @inline(__always)
    static func sigmoid(_ x: OldVector) -> OldVector { OldVector(repeating: 1) / (OldVector(repeating: 1) + exp(-x)) }

    @inline(__always)
    static func tanh(_ x: OldVector) -> OldVector {
        OldVector(repeating: 1) - OldVector(repeating: 2) / (exp(x + x) + OldVector(repeating: 1))
    }

    @inline(__always)
    static func erf(_ x: OldVector) -> OldVector {
        let a = x.replacing(with: -x, where: x .< 0)
        let t = OldVector(repeating: 1) / (OldVector(repeating: 1) + OldVector(repeating: 0.327_591_1) * a)
        var p = OldVector(repeating: 1.061_405_429)
        p = p * t + OldVector(repeating: -1.453_152_027)
        p = p * t + OldVector(repeating: 1.421_413_741)
        p = p * t + OldVector(repeating: -0.284_496_736)
        p = p * t + OldVector(repeating: 0.254_829_592)
        let magnitude = OldVector(repeating: 1) - p * t * exp(-a * a)
        return magnitude.replacing(with: -magnitude, where: x .< 0)
    }

    @inline(__always)
    static func map(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ count: Int,
                    _ body: (OldVector) -> OldVector) {
        var index = 0
        let source = UnsafeRawPointer(input), destination = UnsafeMutableRawPointer(output)
        while index + 16 <= count {
            destination.storeBytes(of: body(source.loadUnaligned(fromByteOffset: index * 4, as: OldVector.self)),
                                   toByteOffset: index * 4, as: OldVector.self)
            index += 16
        }
        if index < count {
            var tail = OldVector(repeating: 0)
            for lane in 0..<(count - index) { tail[lane] = input[index + lane] }
            let value = body(tail)
            for lane in 0..<(count - index) { output[index + lane] = value[lane] }
        }
    }

    static func maximum(_ pointer: UnsafePointer<Float>, _ count: Int) -> Float {
        var best = OldVector(repeating: -.infinity)
        var index = 0
        let raw = UnsafeRawPointer(pointer)
        while index + 16 <= count {
            let value = raw.loadUnaligned(fromByteOffset: index * 4, as: OldVector.self)
            best.replace(with: value, where: value .> best)
            index += 16
        }
        var result = best.max()
        while index < count { result = Swift.max(result, pointer[index]); index += 1 }
        return result
    }

    static func sum(_ pointer: UnsafePointer<Float>, _ count: Int) -> Float {
        var accumulator = OldVector.zero
        var index = 0
        let raw = UnsafeRawPointer(pointer)
        while index + 16 <= count {
            accumulator += raw.loadUnaligned(fromByteOffset: index * 4, as: OldVector.self)
            index += 16
        }
        var total = accumulator.sum()
        while index < count { total += pointer[index]; index += 1 }
        return total
    }

    static func softmaxRow(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        let scalarMaximum = maximum(x, n)
        let maximum = OldVector(repeating: scalarMaximum)
        let source = UnsafeRawPointer(x), destination = UnsafeMutableRawPointer(y)
        var sums = OldVector(repeating: 0)
        var index = 0
        while index + 16 <= n {
            let e = exp(source.loadUnaligned(fromByteOffset: index * 4, as: OldVector.self) - maximum)
            destination.storeBytes(of: e, toByteOffset: index * 4, as: OldVector.self)
            sums += e
            index += 16
        }
        var total = sums.sum()
        while index < n {
            let e = Foundation.exp(x[index] - scalarMaximum)
            y[index] = e
            total += e
            index += 1
        }
        let inverse = 1 / total
        for i in 0..<n { y[i] *= inverse }
    }

    static func normRows(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ rows: Int, _ n: Int,
                         _ w: UnsafePointer<Float>?, _ b: UnsafePointer<Float>?, _ epsilon: Float,
                         _ stats: UnsafeMutablePointer<Float>, centered: Bool) {
        for row in 0..<rows {
            let x = input + row * n, y = output + row * n
            var mean: Float = 0
            if centered { mean = sum(x, n) / Float(n) }
            var variance: Float = 0
            for i in 0..<n { let d = x[i] - mean; variance += d * d }
            variance /= Float(n)
            let rstd = 1 / (variance + epsilon).squareRoot()
            stats[2 * row] = mean
            stats[2 * row + 1] = rstd
            switch (w, b) {
            case let (w?, b?): for i in 0..<n { y[i] = (x[i] - mean) * rstd * w[i] + b[i] }
            case let (w?, nil): for i in 0..<n { y[i] = (x[i] - mean) * rstd * w[i] }
            case let (nil, b?): for i in 0..<n { y[i] = (x[i] - mean) * rstd + b[i] }
            case (nil, nil): for i in 0..<n { y[i] = (x[i] - mean) * rstd }
            }
        }
    }
}
