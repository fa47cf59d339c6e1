import Foundation
import Testing
import TensorCore
import TestSupport
@testable import CraftCore

/// The straight-through estimator and commitment loss against vector-quantize-pytorch's
/// `VectorQuantize` (scripts/codebook_fixtures.py, codebook-vq.safetensors).
@Suite struct CodebookDifferentiableTests {
    @Test func straightThroughMatchesVectorQuantize() throws {
        let file = try codebookFixture("codebook-vq")
        let shape = try file.info("codebook").shape
        let codebook = try Codebook(values: file.floats("codebook"), entries: shape[0], dimension: shape[1], metric: .l2)
        let features = Tensor(try file.floats("features"), shape: try file.info("features").shape).requiringGradient()
        let vq = try codebook.straightThrough(features)
        #expect(vq.codes.scalars == (try file.int32s("codes")))
        #expect(vq.codes.shape == [features.shape[0], 1])
        let forward = approximatelyEqual(vq.quantized.scalars, try file.floats("quantized"), relative: 1e-6, absolute: 1e-6)
        #expect(forward.ok, "\(forward.report)")

        let upstream = Tensor(try file.floats("upstream"), shape: features.shape)
        let steGradient = Tensor.gradients(of: (vq.quantized * upstream).sum(), withRespectTo: [features])[0]
        #expect(steGradient.scalars == (try file.floats("ste_gradient")))

        let loss = codebook.commitmentLoss(vq)
        #expect(approximatelyEqual([loss.scalar], try file.floats("commitment_loss"), relative: 1e-5).ok)
        let commitGradient = Tensor.gradients(of: loss, withRespectTo: [features])[0]
        let check = approximatelyEqual(commitGradient.scalars, try file.floats("commitment_gradient"), relative: 1e-5, absolute: 1e-8)
        #expect(check.ok, "\(check.report)")
    }

    /// Residual VQ at depth 4: the codes of the float64 greedy search, and VILA-U's commitment loss
    /// over the cumulative partial sums with its gradient, against torch autograd
    /// (scripts/codebook_fixtures.py --rvq-commitment).
    @Test func residualCommitmentLossFollowsVILAU() throws {
        let file = try codebookFixture("codebook-rvq-commitment")
        let shape = try file.info("codebook").shape
        let codebook = try Codebook(values: file.floats("codebook"), entries: shape[1], dimension: shape[2], depth: shape[0], metric: .l2)
        let features = Tensor(try file.floats("features"), shape: try file.info("features").shape).requiringGradient()
        let vq = try codebook.straightThrough(features)
        #expect(vq.codes.shape == [2, 3, 4])
        #expect(vq.codes.scalars == (try file.int32s("codes")))
        let loss = codebook.commitmentLoss(vq)
        let value = approximatelyEqual([loss.scalar], try file.floats("commitment_loss"), relative: 1e-5)
        #expect(value.ok, "\(value.report)")
        let gradient = Tensor.gradients(of: loss, withRespectTo: [features])[0]
        let check = approximatelyEqual(gradient.scalars, try file.floats("commitment_gradient"), relative: 1e-5, absolute: 1e-8)
        #expect(check.ok, "\(check.report)")
        // Not the full-sum loss alone: the earlier levels' partial sums count too.
        #expect(abs(loss.scalar - Tensor.meanSquaredError(vq.encoderOutput, vq.codeVectors).scalar) > 1e-3)
    }

    @Test func commitmentGradientMatchesFiniteDifferences() throws {
        var random = TestRandom(seed: 5)
        let codebook = try Codebook(values: random.values(6 * 3), entries: 6, dimension: 3, metric: .cosine)
        let values = random.values(4 * 3).map { $0 * 2 }
        let features = Tensor(values, shape: [2, 2, 3]).requiringGradient()
        let vq = try codebook.straightThrough(features)
        #expect(vq.codes.shape == [2, 2, 1])
        let gradient = Tensor.gradients(of: codebook.commitmentLoss(vq), withRespectTo: [features])[0].scalars
        let step: Float = 1e-3
        for index in values.indices {
            func loss(_ delta: Float) throws -> Float {
                var moved = values
                moved[index] += delta
                return try codebook.commitmentLoss(codebook.straightThrough(Tensor(moved, shape: [2, 2, 3]))).scalar
            }
            let numeric = (try loss(step) - loss(-step)) / (2 * step)
            #expect(abs(numeric - gradient[index]) < 2e-3, "component \(index): numeric \(numeric), analytic \(gradient[index])")
        }
    }

    @Test func rejectsFeaturesOfTheWrongDimension() throws {
        let codebook = try Codebook(values: [0, 1, 2, 3], entries: 2, dimension: 2, metric: .l2)
        #expect(throws: CraftCoreError.self) { try codebook.straightThrough(Tensor([1, 2, 3], shape: [1, 3])) }
    }
}
