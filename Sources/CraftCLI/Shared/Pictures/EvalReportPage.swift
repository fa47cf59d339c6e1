import CraftCore
import CraftImaging
import CraftPipeline
import Foundation

/// `craft eval --report`: one self-contained HTML page of an evaluation (inline CSS, thumbnails as
/// `data:` URIs, no scripts, nothing fetched): the accuracy, the accuracy per expected answer, a
/// confusion matrix when the expected answers are few, and example images with the prompt, the
/// expected answer and the model's, marked right or wrong. Every text is escaped, and the markup is
/// also well-formed XML (void elements closed with `/>`), so XML tools can read it.
struct EvalReportPage {
    /// One example shown with its image.
    struct Example {
        /// The scored item.
        var item: EvaluationItem
        /// A small PNG of the image, or nil (an image index, an unreadable file).
        var thumbnail: Data?
    }

    /// `NAME@VERSION` of the encoder.
    var encoder: String
    /// `NAME@VERSION` of the backend.
    var backend: String
    /// The dataset as given.
    var data: String
    /// `--keep-ratio`.
    var keepRatio: Double
    /// Every scored item, in dataset order.
    var items: [EvaluationItem]
    /// The examples to show (``chooseExamples(_:count:)``), with thumbnails.
    var examples: [Example]
    /// More `[name, value]` rows for the table at the top: `craft eval` passes its text output's rows,
    /// of which those in ``metricsShownElsewhere`` are left out (the page shows them its own way).
    var metrics: [[String]] = []

    /// The rows of ``metrics`` the page shows itself: the accuracy line and the keep ratio.
    static let metricsShownElsewhere: Set<String> = ["accuracy", "correct", "total", "keep ratio"]

    /// The most distinct expected answers a confusion matrix is drawn for.
    static let maximumConfusionClasses = 20
    /// The most examples shown.
    static let maximumExamples = 12
    /// The longest side of a thumbnail, in pixels.
    static let thumbnailSide = 96

    /// The accuracy as `craft eval` prints it (four decimals), so the page and the terminal agree.
    static func accuracyText(_ accuracy: Double) -> String { String(format: "%.4f", accuracy) }

    /// The indices of up to `count` items to show: wrong answers first (up to half), then right ones,
    /// then more wrong ones if the right ones run out; in dataset order.
    static func chooseExamples(_ items: [EvaluationItem], count: Int = maximumExamples) -> [Int] {
        let wrong = items.indices.filter { !items[$0].correct }
        let right = items.indices.filter { items[$0].correct }
        var chosen = Array(wrong.prefix(count / 2))
        chosen += right.prefix(count - chosen.count)
        chosen += wrong.dropFirst(count / 2).prefix(count - chosen.count)
        return chosen.sorted()
    }

    /// A thumbnail of the image file at `url`: at most ``thumbnailSide`` pixels on its longer side,
    /// PNG; nil when the file cannot be read.
    static func thumbnail(of url: URL) -> Data? {
        guard var image = try? Image(contentsOf: url).convertedTo8Bit() else { return nil }
        if image.colorModel.hasAlpha { image = image.composited() }
        let longer = max(image.width, image.height)
        if longer > thumbnailSide {
            let width = max(1, image.width * thumbnailSide / longer), height = max(1, image.height * thumbnailSide / longer)
            guard let resized = try? image.resized(width: width, height: height, filter: .bilinear) else { return nil }
            image = resized
        }
        return try? image.pngData()
    }

    /// One row of the per-answer table: an expected answer (normalised, shown as first spelled), its
    /// items and how many were answered right.
    struct AnswerRow: Equatable {
        var answer: String
        var total: Int
        var correct: Int
    }

    /// The per-answer rows: most items first, then by answer.
    var answerRows: [AnswerRow] {
        var rows: [String: AnswerRow] = [:]
        for item in items {
            let key = AnswerScoring.normalized(item.expected)
            rows[key, default: AnswerRow(answer: item.expected, total: 0, correct: 0)].total += 1
            if item.correct { rows[key]!.correct += 1 }
        }
        return rows.values.sorted { ($0.total, $1.answer) > ($1.total, $0.answer) }
    }

    /// The confusion matrix over the normalised expected answers: `counts[gold][predicted]`, the last
    /// column counting answers that are none of the expected ones. Nil when there are more than
    /// ``maximumConfusionClasses`` expected answers (or none).
    var confusion: (labels: [String], counts: [[Int]])? {
        let labels = Array(Set(items.map { AnswerScoring.normalized($0.expected) })).sorted()
        guard !labels.isEmpty, labels.count <= Self.maximumConfusionClasses else { return nil }
        let index = Dictionary(uniqueKeysWithValues: labels.enumerated().map { ($1, $0) })
        var counts = Array(repeating: Array(repeating: 0, count: labels.count + 1), count: labels.count)
        for item in items {
            let gold = index[AnswerScoring.normalized(item.expected)]!
            counts[gold][index[AnswerScoring.normalized(item.answer)] ?? labels.count] += 1
        }
        return (labels, counts)
    }

    /// The page.
    var html: String {
        let e = Markup.escaped
        let correct = items.filter(\.correct).count
        let accuracy = items.isEmpty ? 0 : Double(correct) / Double(items.count)
        var page = """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8" />
            <title>craft eval: \(e(encoder)) with \(e(backend))</title>
            <style>
            body { font-family: sans-serif; margin: 24px; color: #222; background: #fff; max-width: 1300px; }
            h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; }
            table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: 4px 8px; text-align: left; }
            th { background: #f2f2f2; } td.number { text-align: right; font-variant-numeric: tabular-nums; }
            .headline { font-size: 28px; font-weight: bold; margin: 12px 0; }
            .meta td:first-child { color: #555; }
            .confusion td { text-align: center; min-width: 22px; padding: 3px 5px; } .confusion th { font-weight: normal; font-size: 13px; padding: 3px 5px; }
            .confusion td.diagonal { outline: 2px solid #2ca02c; outline-offset: -2px; }
            .examples { display: flex; flex-wrap: wrap; gap: 12px; }
            .example { border: 2px solid #ccc; border-radius: 6px; padding: 8px; width: 220px; font-size: 13px; }
            .example.right { border-color: #2ca02c; } .example.wrong { border-color: #d62728; }
            .example img { display: block; width: 96px; height: auto; image-rendering: pixelated; margin-bottom: 6px; }
            .mark { font-weight: bold; } .right .mark { color: #2ca02c; } .wrong .mark { color: #d62728; }
            .noimage { color: #888; font-style: italic; }
            .note, .omitted { max-width: 520px; font-size: 14px; }
            .side-by-side { display: flex; flex-wrap: wrap; gap: 0 40px; align-items: flex-start; }
            .bar { background: #e8e8e8; width: 120px; height: 12px; } .bar div { background: #1f77b4; height: 12px; }
            </style>
            </head>
            <body>
            <h1>craft eval: \(e(encoder)) with \(e(backend))</h1>
            <table class="meta">
            <tr><td>encoder</td><td>\(e(encoder))</td></tr>
            <tr><td>backend</td><td>\(e(backend))</td></tr>
            <tr><td>data</td><td>\(e(data))</td></tr>
            <tr><td>keep ratio</td><td>\(e(String(keepRatio)))</td></tr>

            """
        for row in metrics where row.count == 2 && !Self.metricsShownElsewhere.contains(row[0]) {
            page += "<tr><td>\(e(row[0]))</td><td>\(e(row[1]))</td></tr>\n"
        }
        page += "</table>\n<p class=\"headline\">accuracy <span id=\"accuracy\">\(Self.accuracyText(accuracy))</span> (\(correct) of \(items.count) correct)</p>\n"
        // The per-answer table and the confusion matrix side by side when the window is wide enough.
        page += "<div class=\"side-by-side\">\n<section>\n"
        page += "<h2>Accuracy per expected answer</h2>\n<table class=\"answers\">\n<tr><th>expected answer</th><th>items</th><th>correct</th><th>accuracy</th><th></th></tr>\n"
        for row in answerRows {
            let share = Double(row.correct) / Double(max(row.total, 1))
            page += "<tr><td>\(e(row.answer))</td><td class=\"number\">\(row.total)</td><td class=\"number\">\(row.correct)</td>"
            page += "<td class=\"number\">\(Self.accuracyText(share))</td>"
            page += "<td><div class=\"bar\"><div style=\"width: \(String(format: "%.1f", share * 100))%\"></div></div></td></tr>\n"
        }
        page += "<tr><th>all</th><th class=\"number\">\(items.count)</th><th class=\"number\">\(correct)</th><th class=\"number\">\(Self.accuracyText(accuracy))</th>"
        page += "<th><div class=\"bar\"><div style=\"width: \(String(format: "%.1f", accuracy * 100))%\"></div></div></th></tr>\n</table>\n</section>\n<section>\n"

        page += "<h2>Confusion matrix</h2>\n"
        if let confusion {
            page += "<p class=\"note\">Rows: the expected answer; columns: the model's answer (normalised as scoring normalises them; \"other\" is an answer that is none of the expected ones).</p>\n"
            page += "<table class=\"confusion\">\n<tr><th>expected \\ answered</th>"
            for label in confusion.labels { page += "<th>\(e(label))</th>" }
            page += "<th>other</th></tr>\n"
            for (row, label) in confusion.labels.enumerated() {
                let total = max(confusion.counts[row].reduce(0, +), 1)
                page += "<tr><th>\(e(label))</th>"
                for (column, count) in confusion.counts[row].enumerated() {
                    let share = Double(count) / Double(total)
                    let style = count == 0 ? "" : " style=\"background: rgba(31, 119, 180, \(String(format: "%.2f", 0.15 + 0.75 * share)))\""
                    page += "<td class=\"cell\(column == row ? " diagonal" : "")\"\(style)>\(count)</td>"
                }
                page += "</tr>\n"
            }
            page += "</table>\n"
        } else {
            let distinct = Set(items.map { AnswerScoring.normalized($0.expected) }).count
            page += "<p class=\"omitted\">Omitted: the data has \(distinct) distinct expected answers; a confusion matrix is drawn for at most \(Self.maximumConfusionClasses).</p>\n"
        }
        page += "</section>\n</div>\n"

        page += "<h2>Examples</h2>\n"
        let wrongShown = examples.filter { !$0.item.correct }.count
        page += "<p>\(examples.count) of \(items.count) items in dataset order, \(wrongShown) of them answered wrong (wrong answers make up to half of the examples).</p>\n<div class=\"examples\">\n"
        for example in examples {
            let item = example.item
            page += "<div class=\"example \(item.correct ? "right" : "wrong")\">"
            if let thumbnail = example.thumbnail {
                page += "<img alt=\"\(e(item.image))\" src=\"data:image/png;base64,\(thumbnail.base64EncodedString())\" />"
            } else {
                page += "<div class=\"noimage\">image \(e(item.image))</div>"
            }
            page += "<div class=\"mark\">\(item.correct ? "✓ right" : "✗ wrong")</div>"
            page += "<div><b>prompt</b> \(e(item.prompt))</div><div><b>expected</b> \(e(item.expected))</div><div><b>answer</b> \(e(item.answer))</div>"
            page += "</div>\n"
        }
        page += "</div>\n</body>\n</html>\n"
        return page
    }
}
