// Training checkpoints: parameters and AdamW moments in one safetensors file, the loop position in
// JSON, written atomically (a fresh directory renamed into place) so a crash never leaves a torn one.
import CraftFiles
import Foundation
import SafeTensors
import TensorCore

/// Where a run stands: everything besides tensors that resuming needs to continue exactly.
public struct TrainingState: Sendable, Codable, Equatable {
    /// The format version of this file.
    public var formatVersion = 1
    /// Optimiser steps taken.
    public var step: Int
    /// The epoch in progress (counting from 0).
    public var epoch: Int
    /// The index of the next mini-batch of `epoch` (its order comes from `seed` and `epoch`).
    public var nextBatch: Int
    /// The seed of the data order.
    public var seed: UInt64
    /// The best validation accuracy so far, if any epoch was validated.
    public var bestValidationAccuracy: Double?
    /// Epochs since the best validation accuracy improved (for early stopping).
    public var epochsWithoutImprovement: Int
    /// Whether early stopping ended the run.
    public var stoppedEarly: Bool
    /// The training dataset's digest, when known.
    public var datasetDigest: String?
    /// The training mode of the run; `nil` in checkpoints written before modes existed (CRAFT runs).
    public var mode: TrainingMode?
    /// The epoch (counting from 0) whose validation gave ``bestValidationAccuracy``; `nil` before
    /// any validation (and in checkpoints written before the best parameters were kept).
    public var bestEpoch: Int?
    /// The optimiser steps taken when that epoch ended.
    public var bestStep: Int?

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", step, epoch, nextBatch = "next_batch", seed
        case bestValidationAccuracy = "best_validation_accuracy"
        case epochsWithoutImprovement = "epochs_without_improvement", stoppedEarly = "stopped_early"
        case datasetDigest = "dataset_digest", mode, bestEpoch = "best_epoch", bestStep = "best_step"
    }

    /// Creates a state.
    public init(step: Int = 0, epoch: Int = 0, nextBatch: Int = 0, seed: UInt64, bestValidationAccuracy: Double? = nil,
                epochsWithoutImprovement: Int = 0, stoppedEarly: Bool = false, datasetDigest: String? = nil,
                mode: TrainingMode? = nil, bestEpoch: Int? = nil, bestStep: Int? = nil) {
        self.step = step
        self.epoch = epoch
        self.nextBatch = nextBatch
        self.seed = seed
        self.bestValidationAccuracy = bestValidationAccuracy
        self.epochsWithoutImprovement = epochsWithoutImprovement
        self.stoppedEarly = stoppedEarly
        self.datasetDigest = datasetDigest
        self.mode = mode
        self.bestEpoch = bestEpoch
        self.bestStep = bestStep
    }
}

/// A checkpoint directory: `tensors.safetensors` (parameters under their names, AdamW moments under
/// `optimizer.m.<name>` and `optimizer.v.<name>`, the best validated epoch's parameters under
/// `best.<name>`) and `state.json` (``TrainingState`` plus the optimiser step and configuration).
public struct TrainingCheckpoint: Sendable {
    /// The trainable parameters.
    public var parameters: ParameterSet
    /// The optimiser, with its moments and step.
    public var optimizer: AdamW
    /// The loop position.
    public var state: TrainingState
    /// The parameters of the best validated epoch (``TrainingState/bestEpoch``), when there is one.
    public var bestParameters: ParameterSet?

    static let tensorsFile = "tensors.safetensors"
    static let stateFile = "state.json"
    static let firstMomentPrefix = "optimizer.m."
    static let secondMomentPrefix = "optimizer.v."
    static let bestPrefix = "best."

    struct StateFile: Codable {
        var state: TrainingState
        var optimizerStep: Int
        var optimizer: AdamW.Configuration
        enum CodingKeys: String, CodingKey {
            case state, optimizerStep = "optimizer_step", optimizer
        }
    }

    /// Creates a checkpoint value.
    public init(parameters: ParameterSet, optimizer: AdamW, state: TrainingState, bestParameters: ParameterSet? = nil) {
        self.parameters = parameters
        self.optimizer = optimizer
        self.state = state
        self.bestParameters = bestParameters
    }

    /// Writes the checkpoint to `directory` atomically: into a sibling temporary directory that is
    /// then renamed into place (the previous checkpoint is kept as `<name>.previous` until then).
    /// Temporary directories left by a process killed while writing are removed first.
    ///
    /// - Throws: ``TrainingError`` (`io`) naming the path when the file system refuses.
    public func write(to directory: URL) throws {
        let fileManager = FileManager.default
        let parent = directory.deletingLastPathComponent()
        let temporary = parent.appendingPathComponent(".\(directory.lastPathComponent).\(UInt64.random(in: 0...UInt64.max)).tmp")
        let previous = parent.appendingPathComponent("\(directory.lastPathComponent).previous")
        let leftoverPrefix = ".\(directory.lastPathComponent)."
        for name in (try? fileManager.contentsOfDirectory(atPath: parent.path)) ?? []
        where name.hasPrefix(leftoverPrefix) && name.hasSuffix(".tmp") {
            try? fileManager.removeItem(at: parent.appendingPathComponent(name))
        }
        do {
            try fileManager.createDirectory(at: temporary, withIntermediateDirectories: true)
            var writer = SafeTensorsWriter(metadata: ["format": "craft-training-checkpoint", "step": "\(state.step)"])
            for name in parameters.names {
                let tensor = parameters[name]!
                try writer.add(name, floats: tensor.scalars, shape: tensor.shape)
                try writer.add(Self.firstMomentPrefix + name, floats: optimizer.firstMoments[name] ?? [], shape: tensor.shape)
                try writer.add(Self.secondMomentPrefix + name, floats: optimizer.secondMoments[name] ?? [], shape: tensor.shape)
                if let best = bestParameters?[name] {
                    try writer.add(Self.bestPrefix + name, floats: best.scalars, shape: best.shape)
                }
            }
            try writer.write(to: temporary.appendingPathComponent(Self.tensorsFile))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let stateData = try encoder.encode(StateFile(state: state, optimizerStep: optimizer.stepCount, optimizer: optimizer.configuration))
            try stateData.write(to: temporary.appendingPathComponent(Self.stateFile), options: .atomic)
            if fileManager.fileExists(atPath: previous.path) { try fileManager.removeItem(at: previous) }
            if fileManager.fileExists(atPath: directory.path) { try fileManager.moveItem(at: directory, to: previous) }
            try fileManager.moveItem(at: temporary, to: directory)
            if fileManager.fileExists(atPath: previous.path) { try fileManager.removeItem(at: previous) }
        } catch {
            try? fileManager.removeItem(at: temporary)
            throw TrainingError(.io, "cannot write the checkpoint \(directory.path): \(error.localizedDescription); check the directory is writable and has space")
        }
    }

    /// Reads a checkpoint written by ``write(to:)`` (falling back to `<name>.previous` when a crash
    /// happened between the two renames), checking it against the model's parameters.
    ///
    /// - Parameters:
    ///   - directory: the checkpoint directory.
    ///   - expected: the model's parameters, whose names and shapes the checkpoint must match.
    /// - Throws: ``TrainingError`` (`invalidCheckpoint`) naming the file and tensor when something is
    ///   missing, unexpected, misshapen or unreadable.
    public static func read(from directory: URL, expected: ParameterSet) throws -> TrainingCheckpoint {
        var location = directory
        let previous = directory.deletingLastPathComponent().appendingPathComponent("\(directory.lastPathComponent).previous")
        if !FileManager.default.fileExists(atPath: directory.path), FileManager.default.fileExists(atPath: previous.path) {
            location = previous
        }
        let stateURL = location.appendingPathComponent(stateFile)
        let tensorsURL = location.appendingPathComponent(tensorsFile)
        let stateFileValue: StateFile
        do {
            stateFileValue = try JSONDecoder().decode(StateFile.self, from: BoundedFile.read(stateURL, limit: BoundedFile.smallDocumentLimit))
        } catch {
            throw TrainingError(.invalidCheckpoint, "cannot read \(stateURL.path): \(error.localizedDescription); resume from a complete checkpoint directory")
        }
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(contentsOf: tensorsURL) } catch {
            throw TrainingError(.invalidCheckpoint, "cannot read \(tensorsURL.path): \(error.localizedDescription)")
        }
        var parameters: [String: Tensor] = [:]
        var first: [String: [Float]] = [:], second: [String: [Float]] = [:]
        var best: [String: Tensor] = [:]
        let state = stateFileValue.state
        let hasBest = state.bestStep != nil
        let known = Set(expected.names.flatMap { [$0, firstMomentPrefix + $0, secondMomentPrefix + $0, bestPrefix + $0] })
        if let unexpected = file.names.first(where: { !known.contains($0) }) {
            throw TrainingError(.invalidCheckpoint, "\(tensorsURL.path) holds an unexpected tensor \"\(unexpected)\"; the checkpoint belongs to another model")
        }
        for name in expected.names {
            let shape = expected[name]!.shape
            func load(_ key: String) throws -> [Float] {
                guard file.contains(key) else {
                    throw TrainingError(.invalidCheckpoint, "\(tensorsURL.path) has no tensor \"\(key)\"; the checkpoint belongs to another model or is incomplete")
                }
                let info: SafeTensorInfo
                let values: [Float]
                do {
                    info = try file.info(key)
                    values = try file.floats(key)
                } catch {
                    throw TrainingError(.invalidCheckpoint, "\(tensorsURL.path): tensor \"\(key)\" is unreadable: \(error.localizedDescription)")
                }
                guard info.shape == shape, values.count == expected[name]!.scalarCount else {
                    throw TrainingError(.invalidCheckpoint, "\(tensorsURL.path): tensor \"\(key)\" has shape \(info.shape), the model needs \(shape)")
                }
                return values
            }
            parameters[name] = Tensor(try load(name), shape: shape)
            first[name] = try load(firstMomentPrefix + name)
            second[name] = try load(secondMomentPrefix + name)
            if hasBest { best[name] = Tensor(try load(bestPrefix + name), shape: shape) }
        }
        let parameterSet = ParameterSet(parameters)
        let optimizer = try AdamW(
            parameters: parameterSet, configuration: stateFileValue.optimizer, step: stateFileValue.optimizerStep,
            firstMoments: first, secondMoments: second)
        guard state.formatVersion == 1 else {
            throw TrainingError(.invalidCheckpoint, "\(stateURL.path) has format version \(state.formatVersion); this build reads version 1, so resume with the Craft version that wrote it")
        }
        guard state.step >= 0, state.epoch >= 0, state.nextBatch >= 0 else {
            throw TrainingError(.invalidCheckpoint, "\(stateURL.path) has a negative step, epoch or batch position")
        }
        return TrainingCheckpoint(parameters: parameterSet, optimizer: optimizer, state: state, bestParameters: hasBest ? ParameterSet(best) : nil)
    }
}
