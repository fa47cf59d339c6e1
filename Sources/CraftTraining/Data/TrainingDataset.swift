// A JSONL dataset of (image, prompt, answer[, caption][, label]) examples, with validation that
// names the file and line, a deterministic validation split, seeded per-epoch shuffling and a digest.
import CraftFiles
import Crypto
import Foundation
import TensorCore

/// Training examples read from a JSONL file.
///
/// ```swift
/// let dataset = try TrainingDataset(contentsOf: URL(fileURLWithPath: "data/train.jsonl"))
/// let (train, validation) = dataset.split(validationFraction: 0.1)
/// for batch in train.batches(size: 8, epoch: 0, seed: 42) { … }
/// ```
public struct TrainingDataset: Sendable {
    /// The examples in file order.
    public private(set) var examples: [TrainingExample]
    /// The file the examples came from (for messages and the digest).
    public let sourceURL: URL?

    /// The longest line accepted, in bytes (a guard against a file that is not JSONL).
    public static let maximumLineBytes = 1 << 20

    /// Examples given directly.
    public init(examples: [TrainingExample], sourceURL: URL? = nil) {
        self.examples = examples
        self.sourceURL = sourceURL
    }

    /// Reads and validates a JSONL file: one JSON object per non-blank line.
    ///
    /// - Throws: ``TrainingError`` (`io`) when the file cannot be read, (`invalidDataset`) naming the
    ///   file and line when a line is not a JSON object, a required field (`image`, `prompt`,
    ///   `answer`) is missing, empty or not a string, an optional field is not a string, the image
    ///   path is absolute, contains `..`, or resolves (through a symbolic link) outside the dataset's
    ///   directory, or the file has no examples. Image URLs are the resolved paths.
    public init(contentsOf url: URL) throws {
        let data: Data
        do { data = try BoundedFile.read(url, limit: BoundedFile.largeDocumentLimit) } catch {
            throw TrainingError(.io, "cannot read the dataset \(url.path): \(error.localizedDescription)")
        }
        let name = url.path
        let directory = url.deletingLastPathComponent()
        var examples: [TrainingExample] = []
        let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        for (index, rawLine) in lines.enumerated() {
            let lineNumber = index + 1
            func fail(_ reason: String) -> TrainingError {
                TrainingError(.invalidDataset, "\(name) line \(lineNumber): \(reason)")
            }
            var bytes = Data(rawLine)
            if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
            if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            guard bytes.count <= Self.maximumLineBytes else {
                throw fail("the line is \(bytes.count) bytes, more than \(Self.maximumLineBytes); each line must be one JSON object")
            }
            guard let object = (try? JSONSerialization.jsonObject(with: bytes)) as? [String: Any] else {
                throw fail("not a JSON object; each line must look like {\"image\": ..., \"prompt\": ..., \"answer\": ...}")
            }
            func required(_ key: String) throws -> String {
                guard let value = object[key] else { throw fail("missing \"\(key)\"") }
                guard let text = value as? String else { throw fail("\"\(key)\" must be a string") }
                guard !text.isEmpty else { throw fail("\"\(key)\" is empty") }
                return text
            }
            func optional(_ key: String) throws -> String? {
                guard let value = object[key], !(value is NSNull) else { return nil }
                guard let text = value as? String else { throw fail("\"\(key)\" must be a string when present") }
                return text
            }
            let image = try required("image")
            let prompt = try required("prompt")
            let answer = try required("answer")
            let caption = try optional("caption")
            let label = try optional("label")
            let components = image.split(separator: "/", omittingEmptySubsequences: false)
            guard !image.hasPrefix("/"), !components.contains(".."), !image.contains("\0") else {
                throw fail("image path \"\(image)\" must be relative to the dataset file and stay inside its directory")
            }
            let imageURL = try DatasetPaths.contained(image, in: directory) { reason in
                fail("image path \"\(image)\" \(reason); keep the images as regular files inside \(directory.path)")
            }
            examples.append(TrainingExample(
                imageURL: imageURL, imagePath: image, prompt: prompt, answer: answer,
                caption: caption, label: label, line: lineNumber))
        }
        guard !examples.isEmpty else {
            throw TrainingError(.invalidDataset, "\(name) holds no examples; add one JSON object per line")
        }
        self.init(examples: examples, sourceURL: url)
    }

    /// The number of examples.
    public var count: Int { examples.count }

    /// Splits off a validation set deterministically: an example goes to validation when the SHA-256
    /// of its image path, prompt and answer falls in the lowest `validationFraction` of the hash
    /// range. The split depends only on each example's content, not on the file's order or length.
    ///
    /// - Returns: the training and validation datasets (either may be empty for extreme fractions).
    public func split(validationFraction: Double) -> (training: TrainingDataset, validation: TrainingDataset) {
        var training: [TrainingExample] = [], validation: [TrainingExample] = []
        let threshold = UInt64(Swift.min(Swift.max(validationFraction, 0), 1) * 1_000_000)
        for example in examples {
            let key = Data("\(example.imagePath)\u{1F}\(example.prompt)\u{1F}\(example.answer)".utf8)
            let digest = Array(SHA256.hash(data: key))
            let value = digest.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            if value % 1_000_000 < threshold { validation.append(example) } else { training.append(example) }
        }
        return (TrainingDataset(examples: training, sourceURL: sourceURL), TrainingDataset(examples: validation, sourceURL: sourceURL))
    }

    /// The order of the examples in `epoch`: a Fisher–Yates shuffle driven by ``SplitMix64`` seeded
    /// from `seed` and `epoch`, the same on every run and platform.
    public func order(epoch: Int, seed: UInt64) -> [Int] {
        var generator = SplitMix64(seed: seed &+ 0x9E37_79B9_7F4A_7C15 &* UInt64(epoch + 1))
        var order = Array(examples.indices)
        guard order.count > 1 else { return order }
        for index in stride(from: order.count - 1, to: 0, by: -1) {
            let other = Int(generator.next() % UInt64(index + 1))
            order.swapAt(index, other)
        }
        return order
    }

    /// The mini-batches of `epoch` in shuffled order; the last may be smaller (it is kept).
    public func batches(size: Int, epoch: Int, seed: UInt64) -> [[TrainingExample]] {
        let order = order(epoch: epoch, seed: seed)
        let size = Swift.max(size, 1)
        return stride(from: 0, to: order.count, by: size).map { start in
            order[start..<Swift.min(start + size, order.count)].map { examples[$0] }
        }
    }

    /// A SHA-256 digest (lowercase hex) over the dataset file and every image it names, in file
    /// order, so a checkpoint or a report can say exactly which data it was trained on.
    ///
    /// - Throws: ``TrainingError`` (`io`) naming the file and line of an image that cannot be read.
    public func digest() throws -> String {
        var hasher = SHA256()
        if let sourceURL {
            do { hasher.update(data: try BoundedFile.read(sourceURL, limit: BoundedFile.largeDocumentLimit)) } catch {
                throw TrainingError(.io, "cannot read the dataset \(sourceURL.path) to digest it: \(error.localizedDescription)")
            }
        }
        for example in examples {
            hasher.update(data: Data(example.imagePath.utf8))
            hasher.update(data: Data([0]))
            do { hasher.update(data: try BoundedFile.read(example.imageURL, limit: BoundedFile.largeDocumentLimit)) } catch {
                throw TrainingError(.io, "\(sourceURL?.path ?? "dataset") line \(example.line): cannot read image \(example.imagePath): \(error.localizedDescription)")
            }
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}

/// Resolving a dataset's image paths without letting them leave the dataset's directory.
enum DatasetPaths {
    /// The real path of the image `relative` to `directory`, after resolving every symbolic link, or
    /// an error from `fail` when the resolved path lies outside the directory's real path.
    ///
    /// A path that does not exist (yet) is resolved as far as it exists: its deepest existing ancestor
    /// must be inside the directory, and the rest is appended unresolved (loading it later reports the
    /// missing file). So a link anywhere on the path (`images -> /etc`, `a.png -> ../../secret.png`)
    /// is refused, while a link that stays inside the directory is followed.
    static func contained(
        _ relative: String, in directory: URL, fail: (String) -> TrainingError
    ) throws -> URL {
        guard let root = realPath(directory.path) else {
            throw fail("cannot be checked because the dataset's directory cannot be resolved")
        }
        var existing = directory.appendingPathComponent(relative).path
        var missing: [String] = []
        var resolved = realPath(existing)
        while resolved == nil {
            let parent = (existing as NSString).deletingLastPathComponent
            guard parent != existing, !parent.isEmpty else { break }
            missing.insert((existing as NSString).lastPathComponent, at: 0)
            existing = parent
            resolved = realPath(existing)
        }
        guard let resolved else {
            throw fail("cannot be resolved")
        }
        guard resolved == root || resolved.hasPrefix(root == "/" ? "/" : root + "/") else {
            throw fail("leads outside the dataset's directory (it resolves to \(resolved))")
        }
        // A missing component may still be a dangling link: refuse it rather than follow it later.
        var url = URL(fileURLWithPath: resolved)
        for component in missing {
            url.appendPathComponent(component)
            if (try? FileManager.default.destinationOfSymbolicLink(atPath: url.path)) != nil {
                throw fail("is a symbolic link that leads nowhere or outside the dataset's directory")
            }
        }
        return url
    }

    /// `realpath(3)`: the absolute path with every link, `.` and `..` resolved, or nil when it does not exist.
    static func realPath(_ path: String) -> String? {
        guard let pointer = realpath(path, nil) else { return nil }
        defer { free(pointer) }
        return String(cString: pointer)
    }
}
