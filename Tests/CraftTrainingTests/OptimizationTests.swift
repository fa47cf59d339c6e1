import Foundation
import TensorCore
import TestSupport
import Testing
@testable import CraftTraining

@Suite("AdamW, schedules and clipping against torch and transformers")
struct OptimizationTests {
    @Test("AdamW matches torch.optim.AdamW step for step (params and moments within 1e-5)")
    func adamWMatchesTorch() throws {
        let f = try TrainingFixtures.load().adamw
        let names = ["a", "b"]
        var parameters = ParameterSet(Dictionary(uniqueKeysWithValues: names.indices.map {
            (names[$0], Tensor(f.initial[$0], shape: f.shapes[$0]))
        }))
        var optimizer = AdamW(parameters: parameters, configuration: .init(
            beta1: f.beta1, beta2: f.beta2, epsilon: f.eps, weightDecay: f.weight_decay, decaysVectors: true))
        for step in 0..<f.steps {
            let gradients = ParameterSet(Dictionary(uniqueKeysWithValues: names.indices.map {
                (names[$0], Tensor(f.grads[step][$0], shape: f.shapes[$0]))
            }))
            try optimizer.step(&parameters, gradients: gradients, learningRate: f.lr)
        }
        #expect(optimizer.stepCount == f.steps)
        for (index, name) in names.enumerated() {
            let values = approximatelyEqual(parameters[name]!.scalars, f.final[index], relative: 1e-5, absolute: 1e-6)
            #expect(values.ok, "\(name): \(values.report)")
            let m = approximatelyEqual(optimizer.firstMoments[name]!, f.exp_avg[index], relative: 1e-5, absolute: 1e-7)
            #expect(m.ok, "\(name) m: \(m.report)")
            let v = approximatelyEqual(optimizer.secondMoments[name]!, f.exp_avg_sq[index], relative: 1e-5, absolute: 1e-8)
            #expect(v.ok, "\(name) v: \(v.report)")
        }
    }

    @Test("AdamW refuses gradients that do not match the parameters, changing nothing")
    func adamWRejectsMismatch() throws {
        var parameters = ParameterSet(["w": Tensor([1, 2], shape: [2])])
        var optimizer = AdamW(parameters: parameters)
        #expect(throws: TrainingError.self) {
            try optimizer.step(&parameters, gradients: ParameterSet(["w": Tensor([1, 2, 3], shape: [3])]), learningRate: 0.1)
        }
        #expect(throws: TrainingError.self) {
            try optimizer.step(&parameters, gradients: ParameterSet(["x": Tensor([1, 2], shape: [2])]), learningRate: 0.1)
        }
        #expect(optimizer.stepCount == 0 && parameters["w"]!.scalars == [1, 2])
    }

    @Test("cosine schedule with warmup matches transformers.get_cosine_schedule_with_warmup")
    func cosineScheduleMatchesTransformers() throws {
        let f = try TrainingFixtures.load().cosine
        let schedule = LearningRateSchedule(baseLearningRate: 1, warmupSteps: f.warmup, totalSteps: f.total)
        for (step, expected) in f.multipliers.enumerated() {
            #expect(abs(schedule.multiplier(at: step) - expected) < 1e-12, "step \(step)")
        }
        #expect(LearningRateSchedule(kind: .constant, baseLearningRate: 0.5, totalSteps: 3).learningRate(at: 2) == 0.5)
    }

    @Test("global-norm clipping matches torch.nn.utils.clip_grad_norm_")
    func clippingMatchesTorch() throws {
        let f = try TrainingFixtures.load().clip
        let gradients = ParameterSet(["a": Tensor(f.grads[0], shape: [3, 4]), "b": Tensor(f.grads[1], shape: [5])])
        let (clipped, norm) = GradientClipping.clipped(gradients, maximumNorm: f.max_norm)
        #expect(approximatelyEqual([norm], [f.norm]).ok)
        #expect(approximatelyEqual(clipped["a"]!.scalars, f.clipped[0], relative: 1e-5).ok)
        #expect(approximatelyEqual(clipped["b"]!.scalars, f.clipped[1], relative: 1e-5).ok)
        let (unchanged, _) = GradientClipping.clipped(gradients, maximumNorm: 1000)
        #expect(unchanged["a"]!.scalars == f.grads[0])
    }

    @Test("gradient accumulation gives the mean of the micro-batch gradients")
    func accumulationAverages() throws {
        var accumulator = GradientAccumulator()
        try accumulator.add(ParameterSet(["w": Tensor([1, 2], shape: [2])]))
        try accumulator.add(ParameterSet(["w": Tensor([3, 6], shape: [2])]))
        #expect(throws: TrainingError.self) { try accumulator.add(ParameterSet(["v": Tensor([1], shape: [1])])) }
        let taken = accumulator.takeMean()
        let mean = try #require(taken)
        #expect(mean["w"]!.scalars == [2, 4])
        #expect(accumulator.takeMean() == nil)
    }

    @Test("ParameterSet gradients follow the sorted names")
    func parameterSetGradients() throws {
        let parameters = ParameterSet(["b": Tensor([2], shape: [1]), "a": Tensor([3], shape: [1])]).requiringGradients()
        #expect(parameters.names == ["a", "b"])
        let loss = (parameters["a"]! * parameters["b"]!).sum()
        let gradients = parameters.gradients(of: loss)
        #expect(gradients["a"]!.scalars == [2] && gradients["b"]!.scalars == [3])
    }
}
