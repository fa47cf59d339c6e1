import CraftImaging
import Foundation
import Testing
@testable import CraftTraining

@Suite("JSONL training datasets")
struct DatasetTests {
    func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("craft-training-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url.appendingPathComponent("images"), withIntermediateDirectories: true)
        return url
    }

    @Test("reads examples with image paths relative to the file, skipping blank lines")
    func readsExamples() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("train.jsonl")
        try """
        {"image": "images/a.png", "prompt": "What is it?", "answer": "cat", "label": "cat"}

        {"image": "images/b.png", "prompt": "What is it?", "answer": "dog", "caption": "a dog on grass"}
        """.write(to: file, atomically: true, encoding: .utf8)
        let dataset = try TrainingDataset(contentsOf: file)
        #expect(dataset.count == 2)
        #expect(dataset.examples[0].imageURL.path == directory.appendingPathComponent("images/a.png").path)
        #expect(dataset.examples[1].line == 3)
        #expect(dataset.examples[0].contrastiveTexts == ["a photo of a cat"])
        #expect(dataset.examples[1].contrastiveTexts == ["a dog on grass"])
    }

    @Test("errors name the file and line", arguments: [
        ("{\"image\": \"a.png\", \"prompt\": \"q\"}", "line 2: missing \"answer\""),
        ("{\"image\": \"a.png\", \"prompt\": 3, \"answer\": \"x\"}", "line 2: \"prompt\" must be a string"),
        ("[1, 2]", "line 2: not a JSON object"),
        ("{\"image\": \"../secret.png\", \"prompt\": \"q\", \"answer\": \"x\"}", "line 2: image path"),
        ("{\"image\": \"a.png\", \"prompt\": \"q\", \"answer\": \"\"}", "line 2: \"answer\" is empty"),
    ])
    func errorsNameTheLine(line: String, expected: String) throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("train.jsonl")
        try "{\"image\": \"a.png\", \"prompt\": \"q\", \"answer\": \"x\"}\n\(line)\n".write(to: file, atomically: true, encoding: .utf8)
        let error = try #require(throws: TrainingError.self) { try TrainingDataset(contentsOf: file) }
        #expect(error.code == .invalidDataset)
        #expect(error.message.contains(expected), "\(error.message)")
        #expect(error.message.contains("train.jsonl"))
    }

    @Test("an empty file is an error")
    func emptyFileIsAnError() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("train.jsonl")
        try "\n\n".write(to: file, atomically: true, encoding: .utf8)
        #expect(throws: TrainingError.self) { try TrainingDataset(contentsOf: file) }
    }

    static func examples(_ count: Int) -> [TrainingExample] {
        (0..<count).map {
            TrainingExample(imageURL: URL(fileURLWithPath: "/x/\($0).png"), imagePath: "\($0).png", prompt: "q", answer: "a\($0 % 3)", line: $0 + 1)
        }
    }

    @Test("the validation split is deterministic, disjoint and near the requested fraction")
    func splitIsDeterministic() {
        let dataset = TrainingDataset(examples: Self.examples(400))
        let (training, validation) = dataset.split(validationFraction: 0.2)
        let again = dataset.split(validationFraction: 0.2)
        #expect(training.examples == again.training.examples && validation.examples == again.validation.examples)
        #expect(training.count + validation.count == 400)
        #expect(validation.count > 50 && validation.count < 110)
        #expect(Set(training.examples.map(\.imagePath)).isDisjoint(with: validation.examples.map(\.imagePath)))
        // Content-based: removing other examples does not move an example across the split.
        let subset = TrainingDataset(examples: Array(dataset.examples.prefix(100))).split(validationFraction: 0.2)
        #expect(Set(subset.validation.examples.map(\.imagePath)).isSubset(of: validation.examples.map(\.imagePath)))
    }

    @Test("shuffling is seeded per epoch and batches cover every example once")
    func shufflingIsSeeded() {
        let dataset = TrainingDataset(examples: Self.examples(23))
        #expect(dataset.order(epoch: 0, seed: 7) == dataset.order(epoch: 0, seed: 7))
        #expect(dataset.order(epoch: 0, seed: 7) != dataset.order(epoch: 1, seed: 7))
        #expect(dataset.order(epoch: 0, seed: 7) != dataset.order(epoch: 0, seed: 8))
        let batches = dataset.batches(size: 5, epoch: 2, seed: 7)
        #expect(batches.map(\.count) == [5, 5, 5, 5, 3])
        #expect(Set(batches.flatMap { $0.map(\.line) }) == Set(1...23))
    }

    @Test("the digest covers the file and the images it names")
    func digestCoversImages() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("train.jsonl")
        try "{\"image\": \"images/a.png\", \"prompt\": \"q\", \"answer\": \"x\"}\n".write(to: file, atomically: true, encoding: .utf8)
        let image = directory.appendingPathComponent("images/a.png")
        try Data([1, 2, 3]).write(to: image)
        let dataset = try TrainingDataset(contentsOf: file)
        let first = try dataset.digest()
        #expect(first.count == 64)
        #expect(try dataset.digest() == first)
        try Data([1, 2, 4]).write(to: image)
        #expect(try dataset.digest() != first)
        try FileManager.default.removeItem(at: image)
        let error = try #require(throws: TrainingError.self) { try dataset.digest() }
        #expect(error.message.contains("line 1"))
    }
}

@Suite("Image inputs for training")
struct ImageInputTests {
    @Test("images named by a dataset decode to preprocessed pixels; a missing one names its line")
    func loadsImagesFromTheDataset() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("craft-images-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("images"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let bytes: [UInt8] = [255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255]
        try Image(width: 2, height: 2, colorModel: .rgb, bytes: bytes).writePNG(to: directory.appendingPathComponent("images/a.png"))
        let file = directory.appendingPathComponent("train.jsonl")
        try """
        {"image": "images/a.png", "prompt": "q", "answer": "x"}
        {"image": "images/missing.png", "prompt": "q", "answer": "y"}
        """.write(to: file, atomically: true, encoding: .utf8)
        let dataset = try TrainingDataset(contentsOf: file)
        var recipe = ImagePreprocessing.siglip
        recipe.resize = false
        let load = ImageInputs.loader(preprocessing: recipe)
        let pixels = try load(dataset.examples[0])
        #expect(pixels.shape == [3, 2, 2])
        // Red channel: 255, 0, 0, 255 → (x/255 − 0.5)/0.5.
        #expect(Array(pixels.scalars.prefix(4)) == [1, -1, -1, 1])
        let error = try #require(throws: TrainingError.self) { try load(dataset.examples[1]) }
        #expect(error.message.contains("line 2") && error.message.contains("images/missing.png"))
    }
}

@Suite("Dataset image paths stay inside the dataset's directory")
struct DatasetContainmentTests {
    /// A dataset directory `data/` (with `images/`) next to an `outside/` directory holding `secret.png`.
    func layout() throws -> (root: URL, data: URL, secret: URL) {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("craft-containment-\(UUID().uuidString)")
        let data = root.appendingPathComponent("data")
        let outside = root.appendingPathComponent("outside")
        try FileManager.default.createDirectory(at: data.appendingPathComponent("images"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        let secret = outside.appendingPathComponent("secret.png")
        try Data("not for you".utf8).write(to: secret)
        return (root, data, secret)
    }

    func write(_ image: String, in data: URL) throws -> URL {
        let file = data.appendingPathComponent("eval.jsonl")
        try "{\"image\": \"ok.png\", \"prompt\": \"q\", \"answer\": \"x\"}\n{\"image\": \"\(image)\", \"prompt\": \"q\", \"answer\": \"x\"}\n"
            .write(to: file, atomically: true, encoding: .utf8)
        try Data("png".utf8).write(to: data.appendingPathComponent("ok.png"))
        return file
    }

    @Test("a symbolic link to an image outside the directory is refused, naming the file and line")
    func linkedFileOutside() throws {
        let (root, data, secret) = try layout()
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createSymbolicLink(atPath: data.appendingPathComponent("images/cat.png").path, withDestinationPath: secret.path)
        let file = try write("images/cat.png", in: data)
        let error = try #require(throws: TrainingError.self) { try TrainingDataset(contentsOf: file) }
        #expect(error.code == .invalidDataset)
        #expect(error.message.contains("eval.jsonl line 2"), "\(error.message)")
        #expect(error.message.contains("images/cat.png") && error.message.contains("outside"), "\(error.message)")
    }

    @Test("a relative symbolic link climbing out with .. is refused")
    func relativeLinkOutside() throws {
        let (root, data, _) = try layout()
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createSymbolicLink(atPath: data.appendingPathComponent("images/cat.png").path, withDestinationPath: "../../outside/secret.png")
        let file = try write("images/cat.png", in: data)
        #expect(throws: TrainingError.self) { try TrainingDataset(contentsOf: file) }
    }

    @Test("a linked directory leading outside is refused, even for a file that does not exist")
    func linkedDirectoryOutside() throws {
        let (root, data, _) = try layout()
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createSymbolicLink(atPath: data.appendingPathComponent("escape").path, withDestinationPath: root.appendingPathComponent("outside").path)
        for image in ["escape/secret.png", "escape/missing.png"] {
            let file = try write(image, in: data)
            let error = try #require(throws: TrainingError.self) { try TrainingDataset(contentsOf: file) }
            #expect(error.message.contains("line 2") && error.message.contains(image), "\(error.message)")
        }
    }

    @Test("a dangling symbolic link is refused")
    func danglingLink() throws {
        let (root, data, _) = try layout()
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createSymbolicLink(atPath: data.appendingPathComponent("images/gone.png").path, withDestinationPath: "/nonexistent-craft-\(UUID().uuidString)/x.png")
        let file = try write("images/gone.png", in: data)
        #expect(throws: TrainingError.self) { try TrainingDataset(contentsOf: file) }
    }

    @Test("links that stay inside the directory are followed, and the example gets the resolved path")
    func linkInside() throws {
        let (root, data, _) = try layout()
        defer { try? FileManager.default.removeItem(at: root) }
        try Data("png".utf8).write(to: data.appendingPathComponent("images/real.png"))
        try FileManager.default.createSymbolicLink(atPath: data.appendingPathComponent("images/alias.png").path, withDestinationPath: "real.png")
        let file = try write("images/alias.png", in: data)
        let dataset = try TrainingDataset(contentsOf: file)
        #expect(dataset.examples[1].imagePath == "images/alias.png")
        #expect(dataset.examples[1].imageURL.lastPathComponent == "real.png")
        #expect(dataset.examples[1].imageURL.path.hasSuffix("/data/images/real.png"))
    }
}
