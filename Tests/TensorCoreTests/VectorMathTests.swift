import Foundation
import Testing
@testable import TensorCore

@Suite("Vectorised elementary functions")
struct VectorMathTests {
    /// Values from −100 to 100 with fine steps near 0, plus the special values.
    static let samples: [Float] = stride(from: -100, through: 100, by: 0.37).map { Float($0) }
        + stride(from: -3, through: 3, by: 0.011).map { Float($0) } + [0, -0.0, 1e-8, -1e-8, 88.7, -87.2, -89, 90]

    private func apply(_ values: [Float], _ f: (Vector) -> Vector) -> [Float] {
        var output = [Float](repeating: 0, count: values.count)
        values.withUnsafeBufferPointer { input in
            output.withUnsafeMutableBufferPointer { out in
                VectorMath.map(input.baseAddress!, out.baseAddress!, values.count, f)
            }
        }
        return output
    }

    @Test func expIsAccurateAndSaturates() {
        let values = apply(Self.samples) { VectorMath.exp($0) }
        for (x, y) in zip(Self.samples, values) {
            let expected = Foundation.exp(Double(x))
            if expected < 2.7e-38 {
                #expect(y < 2.7e-38, "exp(\(x)) = \(y)")
            } else if expected > Double(Float.greatestFiniteMagnitude) {
                #expect(y == .infinity, "exp(\(x)) = \(y)")
            } else {
                #expect(Swift.abs(Double(y) - expected) <= 4e-7 * expected, "exp(\(x)) = \(y), expected \(expected)")
            }
        }
        let special = apply([-.infinity, .infinity, .nan]) { VectorMath.exp($0) }
        #expect(special[0] == 0 && special[1] == .infinity && special[2].isNaN)
    }

    @Test func tanhSigmoidAndErfAreAccurate() {
        let tanh = apply(Self.samples) { VectorMath.tanh($0) }
        let sigmoid = apply(Self.samples) { VectorMath.sigmoid($0) }
        let erf = apply(Self.samples) { VectorMath.erf($0) }
        for (index, x) in Self.samples.enumerated() {
            let value = Double(x)
            #expect(Swift.abs(Double(tanh[index]) - Foundation.tanh(value)) < 3e-7, "tanh(\(x)) = \(tanh[index])")
            #expect(Swift.abs(Double(sigmoid[index]) - 1 / (1 + Foundation.exp(-value))) < 2e-7, "sigmoid(\(x))")
            #expect(Swift.abs(Double(erf[index]) - Foundation.erf(value)) < 4e-7, "erf(\(x)) = \(erf[index])")
        }
    }

    @Test func softmaxHandlesMaskedAndLongRows() {
        // 37 columns exercise the padded tail; masked entries get exactly zero weight.
        var values = (0..<74).map { Float($0 % 7) - 3 }
        values[5] = Tensor.maskedScore
        let probabilities = Tensor(values, shape: [2, 37]).softmax().scalars
        #expect(probabilities[5] == 0)
        let firstRow = probabilities[0..<37].reduce(0, +), secondRow = probabilities[37...].reduce(0, +)
        #expect(Swift.abs(firstRow - 1) < 1e-6 && Swift.abs(secondRow - 1) < 1e-6)
        let fullyMasked = Tensor(shape: [1, 4], repeating: Tensor.maskedScore).softmax().scalars
        #expect(fullyMasked == [0.25, 0.25, 0.25, 0.25])
    }
}
