import CraftFiles
import CraftTraining
import Foundation

/// `training.svg`: the picture of a `craft train` run, drawn from its log (`train-log.jsonl`), so a
/// resumed run shows its whole history and an interrupted one shows what it reached.
///
/// Two panels: the loss terms per step (the total, `L_SAL`, `L_commit`, `L_con` and the replay loss,
/// whichever the log records), and the validation accuracy per epoch (with the general-domain
/// accuracy when the run measured it).
enum TrainingChart {
    /// The file name, next to `train-log.jsonl` in the output directory.
    static let fileName = "training.svg"

    /// The SVG of `records` (step and validation records in any order; a later record of the same
    /// step and event replaces an earlier one).
    ///
    /// - Parameters:
    ///   - records: The log's records.
    ///   - title: The document's heading, such as `craft train: tiny-vq@1.0.0`.
    static func svg(records: [TrainingLogRecord], title: String) -> String {
        var steps: [Int: TrainingLogRecord] = [:]
        var validations: [Int: TrainingLogRecord] = [:]
        for record in records {
            if record.event == "step" { steps[record.step] = record }
            if record.event == "validation" { validations[record.epoch] = record }
        }
        let stepRecords = steps.values.sorted { $0.step < $1.step }
        let epochRecords = validations.values.sorted { $0.epoch < $1.epoch }

        func lossSeries(_ name: String, _ value: (TrainingLogRecord) -> Float?) -> LineChart.Series {
            LineChart.Series(name: name, color: "", points: stepRecords.compactMap { record in value(record).map { (x: Double(record.step), y: Double($0)) } })
        }
        let losses = [
            lossSeries("total loss", \.loss), lossSeries("L_SAL", \.alignment), lossSeries("L_commit", \.commitment),
            lossSeries("L_con", \.contrastive), lossSeries("replay loss", \.replayLoss),
        ]
        var lossPanel = LineChart(title: "Loss per step", xLabel: "step", yLabel: "loss", series: [], yRange: nil)
        for (index, series) in losses.enumerated() where !series.points.isEmpty {
            var line = series
            line.color = LineChart.palette[index % LineChart.palette.count]
            lossPanel.series.append(line)
        }
        if lossPanel.series.isEmpty {
            lossPanel.series = [LineChart.Series(name: "total loss", color: LineChart.palette[0], points: [])]
        }

        func accuracySeries(_ name: String, color: String, _ value: (TrainingLogRecord) -> Double?) -> LineChart.Series {
            LineChart.Series(name: name, color: color, points: epochRecords.compactMap { record in value(record).map { (x: Double(record.epoch + 1), y: $0) } },
                             markers: true)
        }
        var accuracyPanel = LineChart(title: "Validation accuracy per epoch", xLabel: "epoch", yLabel: "accuracy",
                                      series: [accuracySeries("validation accuracy", color: LineChart.palette[2], \.validationAccuracy)],
                                      yRange: 0...1, yTickStyle: .percent)
        let general = accuracySeries("general accuracy", color: LineChart.palette[3], \.generalAccuracy)
        if !general.points.isEmpty { accuracyPanel.series.append(general) }

        var summary = "\(stepRecords.count) step\(stepRecords.count == 1 ? "" : "s")"
        if let last = stepRecords.last, let loss = last.loss { summary += String(format: ", last loss %.4f", loss) }
        let validated = epochRecords.compactMap { record in record.validationAccuracy.map { (record.epoch, $0) } }
        summary += ", \(validated.count) epoch\(validated.count == 1 ? "" : "s") validated"
        if let best = validated.max(by: { $0.1 < $1.1 }) {
            summary += String(format: ", best validation accuracy %.1f%% (epoch %d)", best.1 * 100, best.0 + 1)
        }
        return LineChart.document(title: title, subtitle: summary, panels: [lossPanel, accuracyPanel])
    }

    /// The records of a log file; lines that do not decode (one torn by a kill) are skipped, and a
    /// missing file has none.
    static func records(logFile: URL) throws -> [TrainingLogRecord] {
        guard FileManager.default.fileExists(atPath: logFile.path) else { return [] }
        let data: Data
        do {
            data = try BoundedFile.read(logFile, limit: BoundedFile.largeDocumentLimit)
        } catch {
            throw CommandError(.other, "cannot read the training log \(logFile.path) to draw \(fileName): \(error.localizedDescription)")
        }
        let decoder = JSONDecoder()
        return data.split(separator: UInt8(ascii: "\n")).compactMap { try? decoder.decode(TrainingLogRecord.self, from: Data($0)) }
    }

    /// Draws `logFile`'s records into `training.svg` in the log's directory, atomically.
    ///
    /// - Returns: The SVG file's URL.
    @discardableResult
    static func write(logFile: URL, title: String) throws -> URL {
        let destination = logFile.deletingLastPathComponent().appendingPathComponent(fileName)
        try PictureFile.write(svg(records: try records(logFile: logFile), title: title), to: destination)
        return destination
    }
}

/// Redraws `training.svg` during a `craft train` run: at each epoch's validation, when the run is
/// interrupted or fails after training began, and at the end. A picture that cannot be written is a
/// warning (once), never the end of the run.
final class TrainingChartWriter: @unchecked Sendable {
    /// The run's log.
    let logFile: URL
    /// The picture's heading.
    let title: String
    private let lock = NSLock()
    private var warned = false

    init(logFile: URL, title: String) {
        self.logFile = logFile
        self.title = title
    }

    /// Where the picture goes: `training.svg` next to the log.
    var destination: URL { logFile.deletingLastPathComponent().appendingPathComponent(TrainingChart.fileName) }

    /// Redraws the picture from the log when the log exists (else there is nothing to draw yet).
    ///
    /// - Returns: Whether the picture is now up to date.
    @discardableResult
    func draw() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard FileManager.default.fileExists(atPath: logFile.path) else { return false }
        do {
            try TrainingChart.write(logFile: logFile, title: title)
            return true
        } catch {
            if !warned {
                let reason = (error as? CommandError)?.message ?? error.localizedDescription
                FileHandle.standardError.write(Data("warning: \(reason); the run goes on without \(TrainingChart.fileName)\n".utf8))
                warned = true
            }
            return false
        }
    }
}
