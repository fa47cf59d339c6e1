import CraftCore
import CraftImaging
import CraftBundles
import CraftPipeline
import CraftRuntimes
import CraftTraining
import Foundation
import RuntimeTestSupport
import Testing

@testable import CraftCLI

#if canImport(FoundationXML)
import FoundationXML
#endif

// MARK: - Helpers

/// What an SVG (or the XML-compatible eval report) holds, read with Foundation's `XMLParser`
/// (which fails on malformed XML).
struct ParsedSVG {
    /// Every element name, in document order.
    var elements: [String] = []
    /// `data-series` → `data-points` of each `<g class="series">`.
    var series: [String: Int] = [:]
    /// The text of every `<text>` element.
    var texts: [String] = []
    /// `<script>`, `<foreignObject>` or an `href`/`xlink:href` attribute (none allowed).
    var hasActiveOrExternalContent = false

    init(_ data: Data) throws {
        let delegate = Delegate()
        let parser = XMLParser(data: data)
        parser.delegate = delegate
        guard parser.parse() else {
            throw CommandError(.other, "not well-formed XML: \(parser.parserError.map { String(describing: $0) } ?? "unknown error")")
        }
        self = delegate.result
    }

    private final class Delegate: NSObject, XMLParserDelegate {
        var result = ParsedSVG(empty: ())
        var text: String?

        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
            result.elements.append(name)
            if name == "g", attributes["class"] == "series", let series = attributes["data-series"] {
                result.series[series] = Int(attributes["data-points"] ?? "")
            }
            if name == "script" || name == "foreignObject" || attributes.keys.contains(where: { $0.hasSuffix("href") }) {
                result.hasActiveOrExternalContent = true
            }
            if name == "text" { text = "" }
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) { text? += string }

        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            if name == "text", let text { result.texts.append(text) }
            text = nil
        }
    }

    private init(empty: Void) {}
}

/// A 8-bit RGB image of the luma variance and the share of pixels that are not near-white: a
/// screenshot with content has both well above zero.
func pictureStatistics(_ image: Image) -> (variance: Double, inked: Double) {
    let rgb = image.convertedTo8Bit().convertedToRGB()
    let bytes = rgb.bytes
    let count = rgb.width * rgb.height
    var sum = 0.0, squares = 0.0, inked = 0
    for index in 0..<count {
        let luma = 0.299 * Double(bytes[index * 3]) + 0.587 * Double(bytes[index * 3 + 1]) + 0.114 * Double(bytes[index * 3 + 2])
        sum += luma
        squares += luma * luma
        if luma < 235 { inked += 1 }
    }
    let mean = sum / Double(count)
    return (squares / Double(count) - mean * mean, Double(inked) / Double(count))
}

/// Headless Chromium (`chromium`, or `$CRAFT_CHROMIUM`): screenshots of local files.
enum HeadlessChromium {
    /// The browser executable, or nil when it is not installed (scripts/ensure-system-deps.sh installs it).
    static var executable: URL? {
        if let override = ProcessInfo.processInfo.environment["CRAFT_CHROMIUM"], !override.isEmpty {
            return URL(fileURLWithPath: override)
        }
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
                let candidate = URL(fileURLWithPath: String(directory)).appendingPathComponent(name)
                if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            }
        }
        return nil
    }

    /// Opens `page` in headless Chromium with a fresh profile and writes a PNG screenshot of a
    /// `width` × `height` window to `screenshot`; kills the browser after `timeout` seconds.
    static func screenshot(of page: URL, to screenshot: URL, width: Int = 1200, height: Int = 900, timeout: Double = 60) throws {
        let browser = try #require(executable, "chromium is not installed; run scripts/ensure-system-deps.sh --tests (apt-get install chromium)")
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("craft-chromium-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: profile, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: profile) }
        let process = Process()
        process.executableURL = browser
        process.arguments = [
            "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run", "--user-data-dir=\(profile.path)",
            "--screenshot=\(screenshot.path)", "--window-size=\(width),\(height)", page.absoluteString,
        ]
        // Chromium's stderr is noisy (D-Bus, GPU): to a file, so no pipe fills up.
        let log = profile.appendingPathComponent("chromium.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        defer { try? handle.close() }
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        if process.isRunning {
            process.terminate()
            Thread.sleep(forTimeInterval: 1)
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
            Issue.record("chromium did not finish \(page.lastPathComponent) within \(Int(timeout)) s")
            return
        }
        process.waitUntilExit()
        let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        #expect(process.terminationStatus == 0, "chromium exited \(process.terminationStatus): \(output.suffix(2000))")
    }
}

/// A scored item with an image path, for the report tests.
private func item(_ expected: String, _ answer: String, image: String = "images/0.png") -> EvaluationItem {
    EvaluationItem(image: image, prompt: "what is this ?", answer: answer, expected: expected)
}

// MARK: - Builders

@Suite("Pictures: builders")
struct PictureBuilderTests {
    @Test("Markup escapes the five XML characters and the control characters XML forbids")
    func escaping() {
        #expect(Markup.escaped("<a href=\"x\">Tom & 'Jerry'</a>") == "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;")
        #expect(Markup.escaped("bell\u{07}tab\tline\n") == "bell\u{FFFD}tab\tline\n")
        #expect(Markup.escaped("é ✓ 数字") == "é ✓ 数字")
        #expect(Markup.number(1.0) == "1" && Markup.number(2.345) == "2.35" && Markup.number(-0.001) == "0" && Markup.number(.nan) == "0")
    }

    @Test("pictures are written atomically (no temporary left) and bad destinations are refused with one sentence")
    func pictureFiles() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let file = scratch.path("chart.svg")
        try PictureFile.write("<svg/>", to: file)
        try PictureFile.write("<svg></svg>", to: file)
        #expect(try String(contentsOf: file, encoding: .utf8) == "<svg></svg>")
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.url.path) == ["chart.svg"])
        #expect(throws: CommandError.self) { try PictureFile.write("x", to: scratch.path("missing/chart.svg")) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.url.path) == ["chart.svg"])
        try PictureFile.validateDestination(file.path, flag: "--report", fileExtension: "svg")
        try PictureFile.validateDestination("relative.PNG", flag: "--overlay", fileExtension: "png")
        for (path, message) in [("a.jpg", "must name a .png file"), (".png", "must name a .png file"),
                                (scratch.path("missing/a.png").path, "does not exist")] {
            #expect(performing: { try PictureFile.validateDestination(path, flag: "--overlay", fileExtension: "png") },
                    throws: { "\($0)".contains(message) })
        }
    }

    @Test("ticks cover the data at round steps; integer axes tick on whole numbers; degenerate ranges widen")
    func axisRanges() {
        let ticks = LineChart.ticks(from: 0.13, to: 0.87)
        #expect(ticks.first! <= 0.13 && ticks.last! >= 0.87 && ticks.count >= 3 && ticks.count <= 8, "\(ticks)")
        let steps = zip(ticks.dropFirst(), ticks).map { $0 - $1 }
        #expect(steps.allSatisfy { abs($0 - steps[0]) < 1e-9 }, "\(ticks)")
        #expect(LineChart.ticks(from: 0, to: 1) == [0, 0.25, 0.5, 0.75, 1])
        let integers = LineChart.ticks(from: 1, to: 3, count: 6, integer: true)
        #expect(integers == [1, 2, 3], "\(integers)")
        let big = LineChart.ticks(from: 1, to: 997, count: 6, integer: true)
        #expect(big.allSatisfy { $0 == $0.rounded() } && big.first! <= 1 && big.last! >= 997, "\(big)")
        let single = LineChart.ticks(from: 2.5, to: 2.5)
        #expect(single.first! < 2.5 && single.last! > 2.5, "\(single)")
        let singleStep = LineChart.ticks(from: 4, to: 4, integer: true)
        #expect(singleStep.first! <= 3 && singleStep.last! >= 5, "\(singleStep)")
        #expect(LineChart.ticks(from: .nan, to: .nan) == [0, 0.25, 0.5, 0.75, 1], "no data: 0...1")
        #expect(LineChart.xRange(low: 1, high: 16, integer: true) == (0.55, 16.45))
        #expect(LineChart.xRange(low: 4, high: 4, integer: true) == (3, 5) && LineChart.xRange(low: nil, high: nil, integer: true) == (0, 1))
        #expect(LineChart.label(0.25, step: 0.05, style: .percent) == "25%")
        #expect(LineChart.label(1.5, step: 0.5, style: .number) == "1.5" && LineChart.label(-0.0, step: 0.5, style: .number) == "0.0")
    }

    @Test("a chart document is well-formed SVG with its title, axes, legend and series, and no scripts or links")
    func chartDocument() throws {
        let chart = LineChart(title: "Loss <per> step & more", xLabel: "step", yLabel: "loss", series: [
            .init(name: "total \"loss\"", color: LineChart.palette[0], points: [(1, 2.0), (2, 1.5), (3, 1.2)]),
            .init(name: "L_SAL", color: LineChart.palette[1], points: [(1, 1.0), (2, .nan), (3, 0.8)]),
        ])
        let svg = LineChart.document(title: "Training <run> & 'test'", subtitle: "3 steps", panels: [chart])
        let parsed = try ParsedSVG(Data(svg.utf8))
        #expect(parsed.elements.first == "svg" && parsed.elements.contains("polyline") && parsed.elements.contains("title"))
        #expect(parsed.series == ["total \"loss\"": 3, "L_SAL": 2])
        #expect(parsed.texts.contains("Training <run> & 'test'") && parsed.texts.contains("Loss <per> step & more"))
        #expect(parsed.texts.contains("step") && parsed.texts.contains("loss") && parsed.texts.contains("L_SAL"))
        #expect(!parsed.hasActiveOrExternalContent)
        #expect(!svg.contains("http://") || svg.components(separatedBy: "http://").count == 2, "only the SVG namespace")
    }

    @Test("an empty chart says so; a one-point series is a dot")
    func emptyAndOnePoint() throws {
        let empty = LineChart(title: "Nothing", xLabel: "x", yLabel: "y", series: [.init(name: "a", color: "#000", points: [])])
        let emptyParsed = try ParsedSVG(Data(LineChart.document(title: "t", panels: [empty]).utf8))
        #expect(emptyParsed.texts.contains(LineChart.emptyText) && emptyParsed.series == ["a": 0] && !emptyParsed.elements.contains("polyline"))
        let one = LineChart(title: "One", xLabel: "x", yLabel: "y", series: [.init(name: "a", color: "#000", points: [(1, 0.5)])])
        let oneParsed = try ParsedSVG(Data(LineChart.document(title: "t", panels: [one]).utf8))
        #expect(oneParsed.elements.filter { $0 == "circle" }.count == 1 && !oneParsed.texts.contains(LineChart.emptyText))
    }

    @Test("the training chart plots every loss term the log records and the validation accuracy per epoch")
    func trainingChart() throws {
        var records: [TrainingLogRecord] = []
        for step in 1...6 {
            var record = TrainingLogRecord(event: "step", step: step, epoch: (step - 1) / 3)
            record.loss = 3 - Float(step) * 0.3
            record.alignment = 2 - Float(step) * 0.2
            record.commitment = 0.1
            records.append(record)
            if step % 3 == 0 {
                var validation = TrainingLogRecord(event: "validation", step: step, epoch: (step - 1) / 3)
                validation.validationAccuracy = step == 3 ? 0.5 : 0.75
                records.append(validation)
            }
        }
        let parsed = try ParsedSVG(Data(TrainingChart.svg(records: records.reversed(), title: "craft train: tiny").utf8))
        #expect(parsed.series == ["total loss": 6, "L_SAL": 6, "L_commit": 6, "validation accuracy": 2], "\(parsed.series)")
        #expect(parsed.texts.contains { $0.contains("best validation accuracy 75.0% (epoch 2)") }, "\(parsed.texts)")
        #expect(parsed.texts.contains("100%") && parsed.texts.contains("0%"))
        let nothing = try ParsedSVG(Data(TrainingChart.svg(records: [], title: "empty").utf8))
        #expect(nothing.texts.filter { $0 == LineChart.emptyText }.count == 2)
    }

    @Test("the overlay keeps kept patches' pixels and greys, darkens and hatches pruned ones")
    func tokenOverlay() throws {
        var bytes: [UInt8] = []
        for y in 0..<32 { for x in 0..<32 { bytes += [UInt8(200 + x % 50), UInt8(40 + y), 90] } }
        let image = try Image(width: 32, height: 32, colorModel: .rgb, bytes: bytes)
        let kept = (0..<4).map { row in (0..<4).map { column in (row + column) % 2 == 0 } }
        let overlay = try TokenOverlay.draw(image, kept: kept)
        #expect(overlay.width == 256 && overlay.height == 256 && overlay.colorModel == .rgb)
        let pixels = overlay.bytes
        func pixel(_ x: Int, _ y: Int) -> [UInt8] { Array(pixels[((y * 256 + x) * 3)..<((y * 256 + x) * 3 + 3)]) }
        // A kept cell's inside is the source pixel (×8 nearest neighbour); its edge is the grid colour.
        #expect(pixel(35, 35) == [UInt8(200 + 4), UInt8(40 + 4), 90])
        #expect(pixel(0, 10) == [255, 214, 0])
        // A pruned cell (row 0, column 1): grey, darker than the source, or a hatch stripe.
        var hatched = 0
        for y in 4..<60 {
            for x in 68..<124 {
                let value = pixel(x, y)
                #expect(value[0] == value[1] && value[1] == value[2])
                if value[0] == 150 { hatched += 1 } else { #expect(value[0] < 110) }
            }
        }
        #expect(hatched > 200 && hatched < 56 * 56 / 2, "\(hatched)")
        #expect(throws: ImageError.self) { try TokenOverlay.draw(image, kept: []) }
    }

    @Test("the report page escapes every text, shows the accuracy as craft eval prints it, and draws a confusion matrix")
    func reportPage() throws {
        let items = [item("w20", "w20"), item("w20", "w21"), item("w21", "w21"), item("<b>w21</b>", "<script>alert(1)</script>")]
        let png = try Image(width: 2, height: 2, colorModel: .rgb, bytes: Array(repeating: 128, count: 12)).pngData()
        let page = EvalReportPage(encoder: "enc@1.0.0", backend: "b&b@1.0.0", data: "d.jsonl", keepRatio: 0.5, items: items,
                                  examples: EvalReportPage.chooseExamples(items).map { .init(item: items[$0], thumbnail: $0 == 0 ? png : nil) })
        let html = page.html
        let parsed = try ParsedSVG(Data(html.utf8))
        #expect(parsed.elements.first == "html" && parsed.elements.filter { $0 == "img" }.count == 1 && !parsed.hasActiveOrExternalContent)
        #expect(!html.contains("<script>") && html.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && html.contains("b&amp;b@1.0.0"))
        #expect(html.contains("<span id=\"accuracy\">0.5000</span> (2 of 4 correct)"))
        #expect(html.contains("class=\"confusion\"") && html.contains("data:image/png;base64,\(png.base64EncodedString())"))
        #expect(html.contains("✗ wrong") && html.contains("✓ right"))
        #expect(!html.contains("http://") && !html.contains("https://") && !html.contains("src=\"file"))
        let confusion = try #require(page.confusion)
        #expect(confusion.labels == ["<b>w21</b>", "w20", "w21"])
        #expect(confusion.counts == [[0, 0, 0, 1], [0, 1, 1, 0], [0, 0, 1, 0]])
        #expect(page.answerRows.first == .init(answer: "w20", total: 2, correct: 1))
    }

    @Test("the confusion matrix is left out, with the reason, for more than 20 expected answers; examples favour mistakes")
    func reportWithoutConfusion() {
        let items = (0..<30).map { item("class \($0)", $0 % 3 == 0 ? "class \($0)" : "none") }
        let page = EvalReportPage(encoder: "e", backend: "b", data: "d", keepRatio: 1, items: items, examples: [])
        #expect(page.confusion == nil)
        #expect(page.html.contains("Omitted: the data has 30 distinct expected answers; a confusion matrix is drawn for at most 20."))
        let chosen = EvalReportPage.chooseExamples(items)
        #expect(chosen.count == 12 && chosen == chosen.sorted())
        #expect(chosen.filter { !items[$0].correct }.count == 6)
        #expect(EvalReportPage.chooseExamples([]).isEmpty)
    }
}

// MARK: - Commands

/// Runs `craft train` once on the tiny fixture and `craft eval --report` and `craft tokens --overlay`
/// on its output, for the command tests and the browser check.
struct PictureFixture {
    let fixture: TrainCLIFixture
    let trainOutput: URL
    let train: ExecutionResult

    init(epochs: Int = 2) throws {
        fixture = try TrainCLIFixture()
        trainOutput = fixture.scratch.path("out")
        train = try runCraft(fixture.trainArguments(output: "out", extra: ["--epochs", "\(epochs)", "--json", "--allow-worse"]))
    }

    var svg: URL { trainOutput.appendingPathComponent("training.svg") }
}

@Suite("Pictures: craft train, tokens and eval")
struct PictureCommandTests {
    @Test("craft train writes training.svg with the loss terms per step and the validation accuracy per epoch")
    func trainingSVG() throws {
        let run = try PictureFixture()
        defer { run.fixture.scratch.remove() }
        #expect(run.train.status == 0, "\(run.train.standardError)")
        let object = try run.fixture.json(run.train)
        #expect(object["chart"] as? String == run.svg.path, "\(run.train.standardOutput)")
        let parsed = try ParsedSVG(Data(contentsOf: run.svg))
        let steps = try #require(object["steps"] as? Int)
        #expect(parsed.series["total loss"] == steps && parsed.series["L_SAL"] == steps && parsed.series["L_commit"] == steps, "\(parsed.series)")
        #expect(parsed.series["validation accuracy"] == 2, "\(parsed.series)")
        #expect(!parsed.hasActiveOrExternalContent)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: run.trainOutput.path).filter { $0.contains("training.svg") && $0 != "training.svg" }
        #expect(leftovers.isEmpty, "temporary files left: \(leftovers)")
    }

    @Test("a run stopped early has a picture of the steps it took; the resumed run's picture shows the whole history")
    func interruptedAndResumed() throws {
        let fixture = try TrainCLIFixture()
        defer { fixture.scratch.remove() }
        let svg = fixture.scratch.path("out/training.svg")
        let first = try runCraft(fixture.trainArguments(output: "out", extra: ["--epochs", "2", "--stop-after-steps", "1", "--json", "--allow-worse"]))
        #expect(first.status == 0, "\(first.standardError)")
        #expect(try ParsedSVG(Data(contentsOf: svg)).series["total loss"] == 1)
        let second = try runCraft(fixture.trainArguments(output: "out", extra: ["--epochs", "2", "--json", "--allow-worse"]))
        #expect(second.status == 0, "\(second.standardError)")
        let steps = try #require(try fixture.json(second)["steps"] as? Int)
        #expect(try ParsedSVG(Data(contentsOf: svg)).series["total loss"] == steps)
    }

    @Test("the projector baseline's run has a picture of its losses too")
    func projectorSVG() throws {
        let fixture = try TrainCLIFixture()
        defer { fixture.scratch.remove() }
        let result = try runCraft(fixture.trainArguments(output: "out", extra: ["--method", "projector", "--json"]))
        #expect(result.status == 0, "\(result.standardError)")
        let steps = try #require(try fixture.json(result)["steps"] as? Int)
        let parsed = try ParsedSVG(Data(contentsOf: fixture.scratch.path("out/training.svg")))
        #expect(parsed.series["total loss"] == steps && parsed.texts.contains { $0.contains("(projector)") }, "\(parsed.series)")
    }

    @Test("craft tokens --overlay writes the encoder's view with the pruned patches greyed; --json lists the kept ones")
    func tokensOverlay() throws {
        let fixture = try TrainCLIFixture()
        defer { fixture.scratch.remove() }
        let image = fixture.scratch.path("data/images/0.png").path
        let half = fixture.scratch.path("half.png"), all = fixture.scratch.path("all.png")
        let pruned = try runCraft(["tokens", "--encoder", fixture.encoder, "--image", image, "--keep-ratio", "0.5", "--overlay", half.path, "--json"])
        #expect(pruned.status == 0, "\(pruned.standardError)")
        let object = try fixture.json(pruned)
        let kept = try #require(object["kept"] as? [[Bool]])
        #expect(kept.count == 4 && kept.allSatisfy { $0.count == 4 } && kept.joined().filter { $0 }.count == 8, "\(kept)")
        let full = try runCraft(["tokens", "--encoder", fixture.encoder, "--image", image, "--overlay", all.path])
        #expect(full.status == 0, "\(full.standardError)")
        #expect(full.standardOutput.contains("overlay written to \(all.path)"))

        // 32×32 input (the tiny encoder's), scaled ×8. Kept cells are the same in both pictures;
        // pruned ones differ and are grey.
        let halfImage = try Image(contentsOf: half), allImage = try Image(contentsOf: all)
        #expect(halfImage.width == 256 && halfImage.height == 256 && allImage.width == 256)
        let (a, b) = (halfImage.convertedToRGB().bytes, allImage.convertedToRGB().bytes)
        for row in 0..<4 {
            for column in 0..<4 {
                var same = true, grey = true
                for y in (row * 64 + 4)..<(row * 64 + 60) {
                    for x in (column * 64 + 4)..<(column * 64 + 60) {
                        let index = (y * 256 + x) * 3
                        if a[index..<(index + 3)] != b[index..<(index + 3)] { same = false }
                        if a[index] != a[index + 1] || a[index + 1] != a[index + 2] { grey = false }
                    }
                }
                #expect(same == kept[row][column], "cell \(row),\(column)")
                if !kept[row][column] { #expect(grey, "pruned cell \(row),\(column) is grey") }
            }
        }
    }

    @Test("on a table encoder: --keep-ratio keeps what the pipeline keeps, --overlay is refused (exit 64), the report names image indices")
    func tableEncoder() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let examples = RegistryTool.packageRoot.appendingPathComponent("examples/bundles")
        let encoder = try BundleArchive.pack(directory: examples.appendingPathComponent("digits-vq"), to: scratch.path("digits-vq.craft"))
        let backend = try BundleArchive.pack(directory: examples.appendingPathComponent("digits-answers"), to: scratch.path("digits-answers.craft"))
        let unpacked = try BundleArchive.unpack(encoder.url, into: scratch.path("enc"))
        let tokens = try TableEncoder(bundle: unpacked).tokens(forImage: 1)
        let expected = try Pipeline.pruned(tokens, keepRatio: 0.5, codeFrequencies: Pipeline.loadCodeFrequencies(unpacked),
                                           codebookEntries: unpacked.manifest.codebook.entries).positions
        let registry = ["--registry", scratch.path("no-registry").path]
        let result = try runCraft(["tokens", "--encoder", encoder.url.path, "--image", "1", "--keep-ratio", "0.5", "--json"] + registry)
        #expect(result.status == 0, "\(result.standardError)")
        let kept = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])["kept"] as? [[Bool]]
        let keptPositions = try #require(kept).enumerated().flatMap { row, columns in
            columns.enumerated().filter { $0.element }.map { GridPosition(row: row, column: $0.offset) }
        }
        #expect(keptPositions == expected)
        let overlay = try runCraft(["tokens", "--encoder", encoder.url.path, "--image", "1", "--overlay", scratch.path("o.png").path] + registry)
        #expect(overlay.status == 64 && overlay.standardError.contains("--overlay needs an image file"), "\(overlay.standardError)")
        #expect(!FileManager.default.fileExists(atPath: scratch.path("o.png").path))

        let data = scratch.path("digits.jsonl")
        try Data((#"{"image": "0", "prompt": "which digit?", "answer": "zero"}"# + "\n").utf8).write(to: data)
        let report = scratch.path("report.html")
        let evaluation = try runCraft(["eval", "--encoder", encoder.url.path, "--backend", backend.url.path, "--data", data.path,
                                       "--report", report.path] + registry)
        #expect(evaluation.status == 0, "\(evaluation.standardError)")
        let html = try String(contentsOf: report, encoding: .utf8)
        #expect(html.contains("<div class=\"noimage\">image 0</div>") && !html.contains("<img"), "\(html)")
    }

    @Test("craft tokens --overlay and craft eval --report refuse a bad path with one sentence and exit 64")
    func badDestinations() throws {
        let cases: [([String], String)] = [
            (["tokens", "--encoder", "x.craft", "--image", "i.png", "--overlay", "overlay.jpg"], "--overlay must name a .png file"),
            (["tokens", "--encoder", "x.craft", "--image", "i.png", "--overlay", "/nonexistent-dir-craft/o.png"], "the directory /nonexistent-dir-craft does not exist"),
            (["tokens", "--encoder", "x.craft", "--image", "i.png", "--keep-ratio", "1.5"], "--keep-ratio must be in (0, 1]"),
            (["eval", "--encoder", "x.craft", "--backend", "y.craft", "--data", "d.jsonl", "--report", "r.txt"], "--report must name a .html file"),
            (["eval", "--encoder", "x.craft", "--backend", "y.craft", "--data", "d.jsonl", "--report", "/nonexistent-dir-craft/r.html"], "does not exist"),
        ]
        for (arguments, message) in cases {
            let result = try runCraft(arguments)
            #expect(result.status == 64 && result.standardError.contains(message), "\(arguments): \(result.standardError)")
            // One error sentence (argument-parser's "Error:" for option validation, then the usage lines).
            #expect(result.standardError.split(separator: "\n").filter { $0.lowercased().hasPrefix("error:") }.count == 1, "\(result.standardError)")
        }
    }

    @Test("craft eval --report writes a page with the printed accuracy, a confusion matrix and embedded images")
    func evalReport() throws {
        let fixture = try TrainCLIFixture()
        defer { fixture.scratch.remove() }
        let report = fixture.scratch.path("report.html")
        let result = try runCraft(["eval", "--encoder", fixture.encoder, "--backend", fixture.surrogate, "--data", fixture.training.path,
                                   "--max-tokens", "2", "--report", report.path] + fixture.registry)
        #expect(result.status == 0, "\(result.standardError)")
        let printed = try #require(result.standardOutput.split(separator: "\n").first { $0.hasPrefix("accuracy") }?.split(separator: " ").last)
        let html = try String(contentsOf: report, encoding: .utf8)
        #expect(try ParsedSVG(Data(html.utf8)).elements.filter { $0 == "img" }.count == 4, "well-formed, four images")
        #expect(html.contains("<span id=\"accuracy\">\(printed)</span>"), "\(printed)")
        #expect(html.contains("<tr><td>visual tokens</td><td>16.0 -&gt; 16.0 per item</td></tr>") && html.contains("<tr><td>latency</td>"))
        #expect(html.contains("class=\"confusion\"") && html.contains("<th>w20</th>") && html.contains("<th>w21</th>"))
        #expect(html.components(separatedBy: "src=\"data:image/png;base64,").count - 1 == 4)
        #expect(!html.contains("<script") && !html.contains("http://") && !html.contains("https://"))
    }
}

// MARK: - In a browser

@Suite("Pictures: headless Chromium")
struct PictureBrowserTests {
    @Test("training.svg, the eval report and the token overlay render in headless Chromium as non-blank pictures")
    func rendersInChromium() throws {
        let run = try PictureFixture(epochs: 1)
        defer { run.fixture.scratch.remove() }
        #expect(run.train.status == 0, "\(run.train.standardError)")
        let scratch = run.fixture.scratch
        let report = scratch.path("report.html"), overlay = scratch.path("overlay.png")
        let evaluation = try runCraft(["eval", "--encoder", run.fixture.encoder, "--backend", run.fixture.surrogate, "--data", run.fixture.training.path,
                                       "--max-tokens", "2", "--report", report.path] + run.fixture.registry)
        #expect(evaluation.status == 0, "\(evaluation.standardError)")
        let tokens = try runCraft(["tokens", "--encoder", run.fixture.encoder, "--image", scratch.path("data/images/0.png").path,
                                   "--keep-ratio", "0.5", "--overlay", overlay.path])
        #expect(tokens.status == 0, "\(tokens.standardError)")
        let wrapper = scratch.path("overlay.html")
        try Data("<!DOCTYPE html><html><body style=\"margin:0;background:#fff\"><img src=\"overlay.png\"></body></html>".utf8).write(to: wrapper)

        for (page, name) in [(run.svg, "training"), (report, "report"), (wrapper, "overlay")] {
            let screenshot = scratch.path("\(name)-screenshot.png")
            try HeadlessChromium.screenshot(of: page, to: screenshot, width: 1000, height: 800)
            let data = try Data(contentsOf: screenshot)
            #expect(data.starts(with: [0x89, 0x50, 0x4E, 0x47]), "\(name): not a PNG")
            let picture = try Image(data: data, name: screenshot.path)
            #expect(picture.width == 1000 && picture.height == 800, "\(name): \(picture.width)×\(picture.height)")
            let statistics = pictureStatistics(picture)
            #expect(statistics.variance > 100 && statistics.inked > 0.005, "\(name) looks blank: \(statistics)")
        }
    }
}
