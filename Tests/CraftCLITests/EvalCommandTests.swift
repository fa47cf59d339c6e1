import CraftBundles
import CraftCore
import CraftRuntimes
import Foundation
import RuntimeTestSupport
import Testing

@testable import CraftCLI

@Suite("craft eval and --keep-ratio")
struct EvalCommandTests {
    func makeInputs(_ scratch: Scratch) throws -> (encoder: String, backend: String, other: String, image: String) {
        try TinyBundles.packedPair(in: scratch, imagePath: "data/images/a.png")
    }

    func writeDataset(_ lines: [String], to url: URL) throws {
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: url)
    }

    @Test("craft eval scores a 3-item dataset: accuracy equals the per-item answers compared by hand; JSON keys")
    func evalAccuracy() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let inputs = try makeInputs(scratch)
        let registry = ["--registry", scratch.path("no-registry").path]
        // What craft run answers for the two prompts, then one expected answer right (with noise to
        // normalise), one wrong, one right.
        func runAnswer(_ prompt: String) throws -> String {
            let result = try runCraft(["run", "--encoder", inputs.encoder, "--backend", inputs.backend, "--image", inputs.image,
                                       "--prompt", prompt, "--max-tokens", "3", "--json"] + registry)
            #expect(result.status == 0, "\(result.standardError)")
            let object = try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any]
            return try #require(object?["answer"] as? String)
        }
        let first = try runAnswer("what is this ?"), second = try runAnswer("what is")
        let expectedFirst = "  " + first.uppercased() + " . "
        let lines = [
            try line(image: "images/a.png", prompt: "what is this ?", answer: expectedFirst.trimmingCharacters(in: .whitespaces).isEmpty ? "x" : expectedFirst),
            try line(image: "images/a.png", prompt: "what is", answer: "definitely not " + second),
            "",
            try line(image: "images/a.png", prompt: "what is", answer: second.isEmpty ? "." : second),
        ]
        let dataset = scratch.path("data/eval.jsonl")
        try writeDataset(lines, to: dataset)
        let perItem = scratch.path("items.jsonl")
        let base = ["eval", "--encoder", inputs.encoder, "--backend", inputs.backend, "--data", dataset.path, "--max-tokens", "3"] + registry
        let json = try runCraft(base + ["--json", "--output", perItem.path])
        #expect(json.status == 0, "\(json.standardError)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.standardOutput.utf8)) as? [String: Any])
        for key in ["accuracy", "correct", "total", "keep_ratio", "mean_latency_ms", "median_latency_ms", "items", "mean_visual_tokens_before",
                    "mean_visual_tokens_after", "mean_prefill_flops_full", "mean_prefill_flops_pruned", "prefill_flops_saved_percent"] {
            #expect(object[key] != nil, "missing \(key) in \(json.standardOutput)")
        }
        let items = try #require(object["items"] as? [[String: Any]])
        #expect(items.count == 3)
        for item in items { #expect(Set(item.keys) == ["image", "prompt", "answer", "expected", "correct"]) }
        #expect(items.map { $0["answer"] as? String } == [first, second, second])
        // By hand: the first and third are right (the first only after normalising), the second wrong.
        let byHand = items.map { AnswerScoring.normalized($0["answer"] as? String ?? "") == AnswerScoring.normalized($0["expected"] as? String ?? "") }
        #expect(items.map { $0["correct"] as? Bool } == byHand)
        let correct = byHand.filter { $0 }.count
        #expect(object["correct"] as? Int == correct && object["total"] as? Int == 3)
        #expect(abs((object["accuracy"] as? Double ?? -1) - Double(correct) / 3) < 1e-9)
        #expect(object["keep_ratio"] as? Double == 1)
        #expect(object["mean_visual_tokens_before"] as? Double == 16 && object["mean_visual_tokens_after"] as? Double == 16)
        let written = try String(contentsOf: perItem, encoding: .utf8).split(separator: "\n")
        #expect(written.count == 3)

        // Images encoded two at a time: the same answers.
        let batched = try runCraft(base + ["--json", "--batch-size", "2"])
        #expect(batched.status == 0, "\(batched.standardError)")
        let batchedObject = try #require(try JSONSerialization.jsonObject(with: Data(batched.standardOutput.utf8)) as? [String: Any])
        let batchedItems = try #require(batchedObject["items"] as? [[String: Any]])
        #expect(batchedItems.map { $0["answer"] as? String } == [first, second, second])

        let text = try runCraft(base + ["--limit", "2"])
        #expect(text.status == 0, "\(text.standardError)")
        #expect(text.standardOutput.contains("total          2"), "\(text.standardOutput)")
        #expect(text.standardOutput.contains("accuracy"))
        #expect(text.standardOutput.contains("prefill FLOPs") && text.standardOutput.contains("(0.0% saved)"), "\(text.standardOutput)")
        #expect(text.standardOutput.contains("median") && text.standardOutput.contains("ms per item"), "\(text.standardOutput)")
        // Piped, progress goes to stderr: a line once the first item is done, one at the end.
        let progress = text.standardError.split(separator: "\n").map(String.init)
        #expect(progress.first?.hasPrefix("evaluated 1/2 items, ") == true && progress.first?.contains("left; accuracy ") == true, "\(text.standardError)")
        #expect(progress.last?.hasPrefix("evaluated 2/2 items in ") == true && progress.last?.contains("so far (") == true, "\(text.standardError)")
        let quiet = try runCraft(base + ["--limit", "2", "--quiet"])
        #expect(quiet.status == 0 && quiet.standardError.isEmpty, "\(quiet.standardError)")
        #expect(quiet.standardOutput.contains("total          2"), "\(quiet.standardOutput)")
    }

    func line(image: String, prompt: String, answer: String) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: ["image": image, "prompt": prompt, "answer": answer], options: [.sortedKeys]), as: UTF8.self)
    }

    @Test("craft eval names the file and line of a bad dataset line (exit 64, bad input); a missing dataset exits 2")
    func evalBadLine() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let inputs = try makeInputs(scratch)
        let registry = ["--registry", scratch.path("no-registry").path]
        let dataset = scratch.path("data/bad.jsonl")
        try writeDataset([try line(image: "images/a.png", prompt: "what", answer: "x"), "{\"image\": \"images/a.png\", \"prompt\": \"what\"}"], to: dataset)
        let result = try runCraft(["eval", "--encoder", inputs.encoder, "--backend", inputs.backend, "--data", dataset.path] + registry)
        #expect(result.status == 64, "\(result.standardError)")
        #expect(result.standardError.contains("bad.jsonl line 2: missing \"answer\""), "\(result.standardError)")
        // Not JSON at all: also bad input data.
        try writeDataset(["{\"image\": \"images/a.png\", "], to: dataset)
        let garbled = try runCraft(["eval", "--encoder", inputs.encoder, "--backend", inputs.backend, "--data", dataset.path] + registry)
        #expect(garbled.status == 64, "\(garbled.standardError)")
        #expect(garbled.standardError.contains("bad.jsonl"), "\(garbled.standardError)")
        let missing = try runCraft(["eval", "--encoder", inputs.encoder, "--backend", inputs.backend, "--data", scratch.path("none.jsonl").path] + registry)
        #expect(missing.status == 2, "\(missing.standardError)")
        let badRatio = try runCraft(["eval", "--encoder", inputs.encoder, "--backend", inputs.backend, "--data", dataset.path, "--keep-ratio", "0"] + registry)
        #expect(badRatio.status == 64, "\(badRatio.standardError)")
        let badBatch = try runCraft(["eval", "--encoder", inputs.encoder, "--backend", inputs.backend, "--data", dataset.path, "--batch-size", "0"] + registry)
        #expect(badBatch.status == 64 && badBatch.standardError.contains("--batch-size"), "\(badBatch.standardError)")
    }

    @Test("craft eval on a pair with different codebooks prints the report and exits 3")
    func evalIncompatible() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let inputs = try makeInputs(scratch)
        let dataset = scratch.path("data/eval.jsonl")
        try writeDataset([try line(image: "images/a.png", prompt: "what", answer: "x")], to: dataset)
        let result = try runCraft(["eval", "--encoder", inputs.encoder, "--backend", inputs.other, "--data", dataset.path,
                                   "--registry", scratch.path("no-registry").path])
        #expect(result.status == 3, "\(result.standardError)")
        #expect(result.standardOutput.contains("FAIL"))
        #expect(result.standardError.contains("cannot be paired"))
    }

    @Test("--keep-ratio 0.5 halves the visual tokens on run and eval, warns about uniform frequencies, and still answers")
    func keepRatioHalves() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let inputs = try makeInputs(scratch)
        let registry = ["--registry", scratch.path("no-registry").path]
        let run = try runCraft(["run", "--encoder", inputs.encoder, "--backend", inputs.backend, "--image", inputs.image,
                                "--prompt", "what is this ?", "--max-tokens", "3", "--keep-ratio", "0.5", "--json"] + registry)
        #expect(run.status == 0, "\(run.standardError)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(run.standardOutput.utf8)) as? [String: Any])
        #expect(object["visual_tokens"] as? Int == 8 && object["visual_tokens_before"] as? Int == 16)
        #expect(object["answer"] is String)
        #expect(run.standardError.contains("warning:") && run.standardError.contains("uniform code frequencies"))

        let dataset = scratch.path("data/eval.jsonl")
        try writeDataset([try line(image: "images/a.png", prompt: "what is this ?", answer: "x")], to: dataset)
        let eval = try runCraft(["eval", "--encoder", inputs.encoder, "--backend", inputs.backend, "--data", dataset.path,
                                 "--max-tokens", "3", "--keep-ratio", "0.5", "--json"] + registry)
        #expect(eval.status == 0, "\(eval.standardError)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(eval.standardOutput.utf8)) as? [String: Any])
        #expect(summary["keep_ratio"] as? Double == 0.5)
        #expect(summary["mean_visual_tokens_before"] as? Double == 16 && summary["mean_visual_tokens_after"] as? Double == 8)
        let items = try #require(summary["items"] as? [[String: Any]])
        #expect(items.first?["answer"] as? String == object["answer"] as? String)
        // Counted by hand for llama_tied (2 layers, hidden 32, 4 heads of 8, 2 KV heads, MLP 64, vocab 128):
        // per layer 18432·n + 128·n² FLOPs, head 2·32·128 = 8192 at the last position; the prompt is
        // BOS + "question : what is this ? answer :" (9 positions) + 16 or 8 visual tokens.
        func byHand(_ n: Double) -> Double {
            let linear: Double = 18432 * n
            let quadratic: Double = 128 * n * n
            return 2 * (linear + quadratic) + 8192
        }
        let full = byHand(25), pruned = byHand(17)
        #expect(full == 1_089_792 && pruned == 708_864)
        #expect(object["text_tokens"] as? Int == 9)
        #expect(object["prefill_flops_full"] as? Double == full && object["prefill_flops_pruned"] as? Double == pruned)
        #expect(summary["mean_prefill_flops_full"] as? Double == full && summary["mean_prefill_flops_pruned"] as? Double == pruned)
        let percent = try #require(summary["prefill_flops_saved_percent"] as? Double)
        let expectedPercent: Double = 100 * (1 - pruned / full)
        #expect(abs(percent - expectedPercent) < 1e-9 && percent > 34 && percent < 36)
        let latency: Double = try #require(object["latency_ms"] as? Double)
        #expect(latency > 0)
        let median = try #require(summary["median_latency_ms"] as? Double), mean = try #require(summary["mean_latency_ms"] as? Double)
        #expect(median > 0 && median == mean, "one item: the median is the mean")

        let text = try runCraft(["run", "--encoder", inputs.encoder, "--backend", inputs.backend, "--image", inputs.image,
                                 "--prompt", "what is this ?", "--max-tokens", "3", "--keep-ratio", "0.5"] + registry)
        #expect(text.status == 0, "\(text.standardError)")
        #expect(text.standardOutput.trimmingCharacters(in: .newlines) == object["answer"] as? String)
        #expect(text.standardError.contains("visual tokens 16 -> 8 (keep ratio 0.5), prefill 1.09 MFLOP -> 708.86 kFLOP (35.0% saved)"),
                "\(text.standardError)")
    }

    @Test("craft eval scores table runtimes by image index (examples/bundles digits); a non-index image names its line")
    func evalTables() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let examples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("examples/bundles")
        let encoder = try BundleArchive.pack(directory: examples.appendingPathComponent("digits-vq"), to: scratch.path("digits-vq.craft"))
        let backend = try BundleArchive.pack(directory: examples.appendingPathComponent("digits-answers"), to: scratch.path("digits-answers.craft"))
        let tableEncoder = try TableEncoder(bundle: try BundleArchive.unpack(encoder.url, into: scratch.path("enc")))
        let tableBackend = try TableBackend(bundle: try BundleArchive.unpack(backend.url, into: scratch.path("llm")))
        let answers = try [0, 1].map { tableBackend.answer(try tableEncoder.tokens(forImage: $0)) }
        let dataset = scratch.path("digits.jsonl")
        try writeDataset([
            try line(image: "0", prompt: "which digit?", answer: answers[0].uppercased() + "."),
            try line(image: "1", prompt: "which digit?", answer: "not " + answers[1]),
        ], to: dataset)
        let common = ["eval", "--encoder", encoder.url.path, "--backend", backend.url.path, "--registry", scratch.path("no-registry").path]
        let result = try runCraft(common + ["--data", dataset.path, "--json"])
        #expect(result.status == 0, "\(result.standardError)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        let items = try #require(object["items"] as? [[String: Any]])
        #expect(items.map { $0["answer"] as? String } == answers)
        #expect(items.map { $0["correct"] as? Bool } == [true, false])
        #expect(object["correct"] as? Int == 1 && object["total"] as? Int == 2 && object["accuracy"] as? Double == 0.5)
        // Table runtimes describe no decoder: the FLOP keys are present and null.
        #expect(object["mean_prefill_flops_full"] is NSNull && object["prefill_flops_saved_percent"] is NSNull, "\(result.standardOutput)")

        let bad = scratch.path("bad.jsonl")
        try writeDataset([try line(image: "x.png", prompt: "which digit?", answer: "0")], to: bad)
        let notIndex = try runCraft(common + ["--data", bad.path])
        #expect(notIndex.status == 64, "\(notIndex.standardError)")
        #expect(notIndex.standardError.contains("bad.jsonl line 1"), "\(notIndex.standardError)")
    }
}
