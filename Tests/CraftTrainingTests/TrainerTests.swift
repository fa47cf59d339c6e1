import CraftCore
import Foundation
import TensorCore
import Testing
@testable import CraftTraining

/// A linear "vision encoder" over `[tokens, inputDimension]` inputs, quantized on a frozen codebook.
struct TinyEncoder: TrainableEncoder {
    var parameters: ParameterSet
    let codebook: Codebook
    var codebookEntries: Int { codebook.entries }

    init(inputDimension: Int, codebook: Codebook, seed: UInt64) {
        var generator = SplitMix64(seed: seed)
        parameters = ParameterSet([
            "weight": Tensor(randomNormal: [codebook.dimension, inputDimension], standardDeviation: 1 / Float(inputDimension).squareRoot(), generator: &generator),
            "bias": Tensor(randomNormal: [codebook.dimension], standardDeviation: 0.1, generator: &generator),
        ])
        self.codebook = codebook
    }

    mutating func setParameters(_ parameters: ParameterSet) throws {
        try self.parameters.checkMatches(parameters, what: "new encoder parameters")
        self.parameters = parameters
    }

    func forward(_ inputs: Tensor, parameters: ParameterSet) throws -> EncoderForward {
        let features = inputs.linear(weight: parameters["weight"]!, bias: parameters["bias"]!)
        let quantization = try codebook.straightThrough(features)
        return EncoderForward(quantization: quantization, pooledFeatures: features.mean(along: 1))
    }
}

/// A frozen classifier "language model": projector, tanh, mean over visual tokens, output layer;
/// its vocabulary is the class names and the answer is one token.
struct TinySurrogate: TrainingSurrogate {
    let vocabulary: [String]
    let projector: Tensor
    let output: Tensor

    init(vocabulary: [String], codebookDimension: Int, hidden: Int, seed: UInt64) {
        var generator = SplitMix64(seed: seed)
        self.vocabulary = vocabulary
        projector = Tensor(randomNormal: [hidden, codebookDimension], generator: &generator)
        output = Tensor(randomNormal: [vocabulary.count, hidden], generator: &generator)
    }

    func head(_ visual: Tensor) -> Tensor {
        visual.linear(weight: projector).tanh().mean(along: 0, keepingDimensions: true).linear(weight: output)
    }

    func score(visual: Tensor, prompt: String, answer: String) throws -> AnswerSequence {
        guard let token = vocabulary.firstIndex(of: answer) else {
            throw TrainingError(.invalidLossInput, "answer \"\(answer)\" is not in the vocabulary")
        }
        let tokens = visual.shape[0]
        var rows: [Tensor] = []
        if tokens > 1 { rows.append(Tensor.zeros([tokens - 1, vocabulary.count])) }
        rows.append(head(visual))
        rows.append(Tensor.zeros([1, vocabulary.count]))
        return AnswerSequence(logits: Tensor.concatenated(rows, along: 0), answerTokens: [Int32(token)], answerStart: tokens)
    }

    func answer(visual: Tensor, prompt: String) throws -> String {
        vocabulary[Int(head(visual).argmax(along: -1).scalars[0])]
    }
}

/// Mean text embeddings per class (a frozen "text tower").
struct TinyTextEmbedder: TextEmbedder {
    let table: [String: [Float]]
    func embed(_ texts: [String]) throws -> Tensor {
        let rows = try texts.map { text in
            guard let row = table[text] else { throw TrainingError(.invalidLossInput, "no embedding for \(text)") }
            return row
        }
        return Tensor(rows.flatMap { $0 }, shape: [texts.count, rows.first?.count ?? 0])
    }
}

/// A small classification task: each class has a prototype `[tokens, inputDimension]`; an example is
/// its prototype plus noise seeded by its index.
struct TinyTask {
    static let classes = ["red", "green", "blue"]
    static let tokens = 3, inputDimension = 6, codebookDimension = 4, entries = 32

    let prototypes: [Tensor]
    let codebook: Codebook

    init() throws {
        var generator = SplitMix64(seed: 11)
        prototypes = Self.classes.map { _ in Tensor(randomNormal: [Self.tokens, Self.inputDimension], generator: &generator) }
        let values = Tensor(randomNormal: [Self.entries, Self.codebookDimension], generator: &generator).scalars
        codebook = try Codebook(values: values, entries: Self.entries, dimension: Self.codebookDimension, metric: .l2)
    }

    func examples(_ range: Range<Int>) -> [TrainingExample] {
        range.map { index in
            let label = Self.classes[index % Self.classes.count]
            return TrainingExample(imageURL: URL(fileURLWithPath: "/synthetic/\(index)"), imagePath: "\(index)",
                                   prompt: "Which colour?", answer: label, label: label, line: index + 1)
        }
    }

    var inputs: @Sendable (TrainingExample) throws -> Tensor {
        let prototypes = self.prototypes
        return { example in
            guard let index = Int(example.imagePath), let label = Self.classes.firstIndex(of: example.label ?? example.answer) else {
                throw TrainingError(.invalidDataset, "bad synthetic example \(example.imagePath)")
            }
            var generator = SplitMix64(seed: UInt64(index) &* 7919 &+ 3)
            return prototypes[label] + Tensor(randomNormal: [Self.tokens, Self.inputDimension], standardDeviation: 0.3, generator: &generator)
        }
    }

    func trainer(_ configuration: TrainerConfiguration, textEmbedder: (any TextEmbedder)? = nil) throws -> Trainer<TinyEncoder, TinySurrogate> {
        try Trainer(
            encoder: TinyEncoder(inputDimension: Self.inputDimension, codebook: codebook, seed: 5),
            surrogate: TinySurrogate(vocabulary: Self.classes, codebookDimension: Self.codebookDimension, hidden: 16, seed: 9),
            textEmbedder: textEmbedder, inputs: inputs, configuration: configuration)
    }
}

@Suite("CRAFT trainer on a tiny real task")
struct TrainerTests {
    func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("craft-trainer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    func baseConfiguration() -> TrainerConfiguration {
        var configuration = TrainerConfiguration()
        configuration.objective = CraftObjective(usesContrastive: false)
        configuration.learningRate = 0.05
        configuration.warmupSteps = 2
        configuration.batchSize = 6
        configuration.epochs = 2
        configuration.seed = 3
        return configuration
    }

    @Test("held-out accuracy through the frozen surrogate improves with training; the log has every field")
    func heldOutAccuracyImproves() throws {
        let task = try TinyTask()
        var configuration = baseConfiguration()
        configuration.epochs = 12
        var trainer = try task.trainer(configuration)
        let training = TrainingDataset(examples: task.examples(0..<48))
        let validation = TrainingDataset(examples: task.examples(1000..<1030))
        // The task is solvable: for every class some code, repeated, makes the frozen surrogate answer it.
        let reachable = try Set((0..<TinyTask.entries).map { code in
            let vector = try task.codebook.vector(level: 0, code: code)
            let visual = Tensor(Array((0..<TinyTask.tokens).map { _ in vector }.joined()), shape: [TinyTask.tokens, TinyTask.codebookDimension])
            return try trainer.surrogate.answer(visual: visual, prompt: "")
        })
        try #require(reachable == Set(TinyTask.classes), "reachable answers \(reachable)")
        let before = try trainer.validationAccuracy(validation)
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let logURL = directory.appendingPathComponent("log.jsonl")
        var steps = 0
        let summary = try trainer.train(training: training, validation: validation, logURL: logURL) { _ in steps += 1 }
        let after = try #require(summary.validationAccuracies.last)
        #expect(after >= 0.9, "accuracy \(before) -> \(summary.validationAccuracies)")
        #expect(after > before + 0.3, "accuracy \(before) -> \(summary.validationAccuracies)")
        #expect(summary.steps == 12 * 8 && steps == 12 * 8 + 12)
        let records = try String(contentsOf: logURL, encoding: .utf8).split(separator: "\n").map {
            try JSONDecoder().decode(TrainingLogRecord.self, from: Data($0.utf8))
        }
        let first = try #require(records.first)
        #expect(first.event == "step" && first.alignment != nil && first.commitment != nil && first.contrastive == nil)
        #expect(first.gradientNorm != nil && first.learningRate == 0 && first.codebookUsage != nil && first.codebookPerplexity != nil)
        #expect(first.codeChangeRate == 0)
        #expect(records.contains { $0.event == "validation" && $0.validationAccuracy == after })
        #expect(records.last(where: { $0.event == "step" })?.codeChangeRate ?? 0 > 0)
    }

    @Test("validation accuracy scores answers as craft eval does (AnswerScoring: case, spacing, trailing punctuation)")
    func validationUsesTheOneAnswerRule() throws {
        let task = try TinyTask()
        let trainer = try task.trainer(baseConfiguration())
        let plain = task.examples(0..<30)
        // The same items, expected answers written the way datasets and people write them.
        let written = plain.map { example in
            var copy = example
            copy.answer = ["  \(example.answer.capitalized).", "\(example.answer.uppercased()) !", "\t\(example.answer)\n"][example.line % 3]
            return copy
        }
        let accuracy = try trainer.accuracy(on: TrainingDataset(examples: plain))
        #expect(accuracy > 0, "a random surrogate still answers some items right")
        #expect(try trainer.accuracy(on: TrainingDataset(examples: written)) == accuracy)
        #expect(AnswerScoring.matches("  Red.", expected: "red") && !AnswerScoring.matches("redd", expected: "red"))
    }

    @Test("two runs with the same seed give identical parameters")
    func sameSeedSameParameters() throws {
        let task = try TinyTask()
        let training = TrainingDataset(examples: task.examples(0..<24))
        var first = try task.trainer(baseConfiguration())
        var second = try task.trainer(baseConfiguration())
        let a = try first.train(training: training, validation: nil)
        let b = try second.train(training: training, validation: nil)
        for name in a.parameters.names { #expect(a.parameters[name]!.scalars == b.parameters[name]!.scalars) }
        #expect(a.parameters["weight"]!.scalars != first.baseParameters["weight"]!.scalars)
    }

    @Test("2K steps straight equal K steps, a stop, and K resumed steps, bit for bit")
    func resumeIsExact() throws {
        let task = try TinyTask()
        let training = TrainingDataset(examples: task.examples(0..<28))
        let validation = TrainingDataset(examples: task.examples(500..<506))
        var configuration = baseConfiguration()
        configuration.gradientAccumulationSteps = 2
        configuration.batchSize = 4
        configuration.epochs = 3  // 7 batches per epoch -> 4 steps per epoch, 12 in all
        configuration.objective = .classification
        let embedder = TinyTextEmbedder(table: Dictionary(uniqueKeysWithValues: TinyTask.classes.enumerated().map { item in
            ("a photo of a \(item.element)", (0..<TinyTask.codebookDimension).map { Float(($0 * 3 + item.offset) % 5) - 2 })
        }))
        var straight = try task.trainer(configuration, textEmbedder: embedder)
        let reference = try straight.train(training: training, validation: validation)
        #expect(reference.steps == 12)

        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let checkpoint = directory.appendingPathComponent("checkpoint")
        let killed = directory.appendingPathComponent("killed")
        let logURL = directory.appendingPathComponent("log.jsonl")
        var interrupted = configuration
        interrupted.checkpointEvery = 3
        interrupted.stopAfterSteps = 8
        var first = try task.trainer(interrupted, textEmbedder: embedder)
        // The "kill": keep the checkpoint as it stood during step 7 (written at step 6, mid-epoch 1);
        // steps 7 and 8 are lost, though already logged.
        _ = try first.train(training: training, validation: validation, checkpointDirectory: checkpoint, logURL: logURL,
                            datasetDigest: "digest-1") { progress in
            if progress.record.event == "step" && progress.record.step == 7 {
                try? FileManager.default.copyItem(at: checkpoint, to: killed)
            }
        }
        let saved = try TrainingCheckpoint.read(from: killed, expected: first.encoder.parameters)
        #expect(saved.state.step == 6 && saved.state.epoch == 1 && saved.state.nextBatch == 4)
        #expect(saved.state.datasetDigest == "digest-1")

        var resumedConfiguration = configuration
        resumedConfiguration.checkpointEvery = 3
        var refused = try task.trainer(resumedConfiguration, textEmbedder: embedder)
        let error = try #require(throws: TrainingError.self) {
            try refused.train(training: training, validation: validation, checkpointDirectory: killed, datasetDigest: "digest-2")
        }
        #expect(error.code == .invalidCheckpoint)
        var resumed = try task.trainer(resumedConfiguration, textEmbedder: embedder)
        let result = try resumed.train(training: training, validation: validation, checkpointDirectory: killed, logURL: logURL,
                                       datasetDigest: "digest-1")
        #expect(result.steps == reference.steps)
        for name in reference.parameters.names {
            #expect(result.parameters[name]!.scalars == reference.parameters[name]!.scalars, "\(name)")
        }
        #expect(resumed.encoder.parameters["weight"]!.scalars == reference.parameters["weight"]!.scalars)
        let steps = try String(contentsOf: logURL, encoding: .utf8).split(separator: "\n").map {
            try JSONDecoder().decode(TrainingLogRecord.self, from: Data($0.utf8))
        }.filter { $0.event == "step" }.map(\.step)
        #expect(steps == Array(1...12))
    }

    @Test("without a validation set, the configured fraction is held out")
    func validationFractionSplits() throws {
        let task = try TinyTask()
        var configuration = baseConfiguration()
        configuration.epochs = 1
        configuration.validationFraction = 0.25
        var trainer = try task.trainer(configuration)
        let summary = try trainer.train(training: TrainingDataset(examples: task.examples(0..<40)), validation: nil)
        #expect(summary.validationAccuracies.count == 1)
        let (training, _) = TrainingDataset(examples: task.examples(0..<40)).split(validationFraction: 0.25)
        #expect(summary.steps == (training.count + 5) / 6)
    }

    @Test("a checkpoint for another model is refused with a clear error")
    func mismatchedCheckpointIsRefused() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let parameters = ParameterSet(["w": Tensor([1, 2], shape: [2])])
        let checkpoint = TrainingCheckpoint(parameters: parameters, optimizer: AdamW(parameters: parameters), state: TrainingState(step: 3, seed: 1))
        let url = directory.appendingPathComponent("ckpt")
        try checkpoint.write(to: url)
        let back = try TrainingCheckpoint.read(from: url, expected: parameters)
        #expect(back.state.step == 3 && back.parameters["w"]!.scalars == [1, 2])
        try checkpoint.write(to: url)  // overwriting an existing checkpoint works
        let error = try #require(throws: TrainingError.self) {
            try TrainingCheckpoint.read(from: url, expected: ParameterSet(["w": Tensor([1, 2, 3], shape: [3])]))
        }
        #expect(error.code == .invalidCheckpoint && error.message.contains("\"w\""))
        #expect(throws: TrainingError.self) {
            try TrainingCheckpoint.read(from: url, expected: ParameterSet(["v": Tensor([1, 2], shape: [2])]))
        }
    }
}

@Suite("Trainer bookkeeping")
struct TrainerBookkeepingTests {
    @Test("early stopping ends the run after `patience` epochs without a better validation accuracy")
    func earlyStoppingStops() throws {
        let task = try TinyTask()
        var configuration = TrainerConfiguration()
        configuration.objective = CraftObjective(usesContrastive: false)
        configuration.learningRate = 1e-12  // accuracy cannot change
        configuration.batchSize = 6
        configuration.epochs = 5
        configuration.earlyStoppingPatience = 2
        var trainer = try task.trainer(configuration)
        let summary = try trainer.train(training: TrainingDataset(examples: task.examples(0..<12)),
                                        validation: TrainingDataset(examples: task.examples(100..<106)))
        #expect(summary.stoppedEarly)
        #expect(summary.epochsCompleted == 3 && summary.validationAccuracies.count == 3)
        #expect(summary.steps == 6)
    }

    @Test("codebook usage and perplexity of a code histogram")
    func codeStatistics() {
        let uniform = CodeStatistics.usageAndPerplexity([0, 1, 2, 3], entries: 8)
        #expect(uniform.usage == 0.5 && abs(uniform.perplexity - 4) < 1e-12)
        let single = CodeStatistics.usageAndPerplexity([5, 5, 5], entries: 8)
        #expect(single.usage == 0.125 && abs(single.perplexity - 1) < 1e-12)
        let skewed = CodeStatistics.usageAndPerplexity([0, 0, 0, 1], entries: 4)
        let entropy = -(0.75 * Foundation.log(0.75) + 0.25 * Foundation.log(0.25))
        #expect(abs(skewed.perplexity - Foundation.exp(entropy)) < 1e-12)
    }
}

@Suite("Trainer input checks")
struct TrainerInputTests {
    @Test("inputs of different shapes in one batch are a typed error naming the line")
    func mismatchedInputShapes() throws {
        let task = try TinyTask()
        var configuration = TrainerConfiguration()
        configuration.objective = CraftObjective(usesContrastive: false)
        configuration.batchSize = 4
        var trainer = try Trainer(
            encoder: TinyEncoder(inputDimension: TinyTask.inputDimension, codebook: task.codebook, seed: 5),
            surrogate: TinySurrogate(vocabulary: TinyTask.classes, codebookDimension: TinyTask.codebookDimension, hidden: 8, seed: 9),
            textEmbedder: nil,
            inputs: { example in Tensor.zeros([example.line == 3 ? 1 : 2, TinyTask.inputDimension]) },
            configuration: configuration)
        let error = try #require(throws: TrainingError.self) {
            try trainer.train(training: TrainingDataset(examples: task.examples(0..<4)), validation: nil)
        }
        #expect(error.code == .invalidDataset && error.message.contains("line 3"))
    }

    @Test("a checkpoint of another format version is refused")
    func checkpointFormatVersion() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("craft-ckpt-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let parameters = ParameterSet(["w": Tensor([1], shape: [1])])
        var state = TrainingState(seed: 0)
        state.formatVersion = 2
        try TrainingCheckpoint(parameters: parameters, optimizer: AdamW(parameters: parameters), state: state).write(to: directory)
        let error = try #require(throws: TrainingError.self) { try TrainingCheckpoint.read(from: directory, expected: parameters) }
        #expect(error.message.contains("format version 2"))
    }
}
