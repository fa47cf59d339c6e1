import CraftFiles
import Foundation

/// One line of the training log (JSONL): a step record or an epoch's validation record.
///
/// Keys are snake_case (`gradient_norm`, `replay_loss`, `commitment_distance`, `general_accuracy`, …);
/// a value that does not apply is absent.
public struct TrainingLogRecord: Sendable, Codable, Equatable {
    /// `"step"` or `"validation"`.
    public var event: String
    /// Optimiser steps taken so far.
    public var step: Int
    /// The epoch (counting from 0).
    public var epoch: Int
    /// The total loss (step records).
    public var loss: Float?
    /// `L_SAL` (step records, when on).
    public var alignment: Float?
    /// `L_commit` (step records, when on).
    public var commitment: Float?
    /// `L_con` (step records, when computed).
    public var contrastive: Float?
    /// The global gradient norm before clipping.
    public var gradientNorm: Float?
    /// The learning rate of this step.
    public var learningRate: Float?
    /// Distinct codes used in the step's batches over the codebook size.
    public var codebookUsage: Double?
    /// `exp(entropy)` of the step's code histogram.
    public var codebookPerplexity: Double?
    /// The share of tokens whose codes differ from the base encoder's.
    public var codeChangeRate: Double?
    /// The CRAFT loss of the step's general-domain replay examples, unweighted (step records, when
    /// replay is on); `loss` includes it times the replay weight.
    public var replayLoss: Float?
    /// `mean ‖z_e − z_q‖²` over the step's domain tokens and dimensions: the commitment distance,
    /// logged even when `L_commit` is off (equal to `commitment` when it is on).
    public var commitmentDistance: Double?
    /// Validation accuracy (validation records, when a validation set is given).
    public var validationAccuracy: Double?
    /// Accuracy on the general-domain validation set (validation records, when one is given).
    public var generalAccuracy: Double?

    enum CodingKeys: String, CodingKey {
        case event, step, epoch, loss, alignment, commitment, contrastive
        case gradientNorm = "gradient_norm", learningRate = "learning_rate", codebookUsage = "codebook_usage"
        case codebookPerplexity = "codebook_perplexity", codeChangeRate = "code_change_rate"
        case validationAccuracy = "validation_accuracy", replayLoss = "replay_loss"
        case commitmentDistance = "commitment_distance", generalAccuracy = "general_accuracy"
    }

    /// Creates a record.
    public init(event: String, step: Int, epoch: Int) {
        self.event = event
        self.step = step
        self.epoch = epoch
    }
}

/// Appends records to a JSONL file, one JSON object per line.
struct TrainingLogWriter {
    let url: URL

    /// Rewrites the log without the records a resume from `step` (in epoch `epoch`) will write again:
    /// step records after `step`, validation records of epoch `epoch` and later (that epoch's
    /// validation is still to come), and lines that do not decode (one torn by a kill). Without any
    /// such record the file is left untouched.
    func dropRecords(after step: Int, validationsFrom epoch: Int) throws {
        guard FileManager.default.fileExists(atPath: url.path) else { return }
        do {
            let data = try BoundedFile.read(url, limit: BoundedFile.largeDocumentLimit)
            var kept = Data()
            var dropped = false
            for line in data.split(separator: UInt8(ascii: "\n")) {
                guard let record = try? JSONDecoder().decode(TrainingLogRecord.self, from: Data(line)),
                    record.step <= step, record.event != "validation" || record.epoch < epoch
                else {
                    dropped = true
                    continue
                }
                kept.append(contentsOf: line)
                kept.append(UInt8(ascii: "\n"))
            }
            if dropped || data.last != UInt8(ascii: "\n") && !data.isEmpty { try kept.write(to: url, options: .atomic) }
        } catch {
            throw TrainingError(.io, "cannot rewrite the training log \(url.path) for the resume: \(error.localizedDescription)")
        }
    }

    func append(_ record: TrainingLogRecord) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var line = try encoder.encode(record)
        line.append(UInt8(ascii: "\n"))
        do {
            if !FileManager.default.fileExists(atPath: url.path) {
                try line.write(to: url)
                return
            }
            let handle = try FileHandle(forWritingTo: url)
            defer { try? handle.close() }
            try handle.seekToEnd()
            try handle.write(contentsOf: line)
        } catch {
            throw TrainingError(.io, "cannot append to the training log \(url.path): \(error.localizedDescription)")
        }
    }
}

/// Codebook statistics of a set of codes.
enum CodeStatistics {
    /// Usage (distinct codes / entries) and perplexity (`exp` of the entropy of the histogram).
    static func usageAndPerplexity(_ codes: [Int32], entries: Int) -> (usage: Double, perplexity: Double) {
        guard !codes.isEmpty else { return (0, 0) }
        var counts: [Int32: Int] = [:]
        for code in codes { counts[code, default: 0] += 1 }
        let total = Double(codes.count)
        var entropy = 0.0
        for count in counts.values {
            let p = Double(count) / total
            entropy -= p * Foundation.log(p)
        }
        return (Double(counts.count) / Double(Swift.max(entries, 1)), Foundation.exp(entropy))
    }
}
