// The exported digits data (scripts/export_digits.py, docs/experiment.md "Data"): JSONL datasets per
// domain and split, and the images preprocessed once into pixel tensors.
import CraftCore
import CraftImaging
import CraftTraining
import Foundation
import TensorCore

/// An image domain of the miniature.
public enum Domain: String, Sendable, Codable, CaseIterable {
    /// The digits as they are.
    case general
    /// Lowered contrast, light blur and noise.
    case mild
    /// Inverted contrast, blur, sensor noise and a brightness offset.
    case strong
}

/// The miniature's data directory (`examples/data/digits`).
public struct ExperimentData: Sendable {
    /// The directory holding `{domain}-{split}.jsonl`, `images/` and `tokenizer.json`.
    public let directory: URL
    /// The settings (image limits, size).
    public let settings: ExperimentSettings

    /// Opens the data directory.
    ///
    /// - Throws: ``ExperimentError`` when the directory has no `tokenizer.json`.
    public init(directory: URL, settings: ExperimentSettings) throws {
        guard FileManager.default.fileExists(atPath: directory.appendingPathComponent("tokenizer.json").path) else {
            throw ExperimentError("\(directory.path) holds no tokenizer.json; export the data with scripts/export_digits.py or pass --data")
        }
        self.directory = directory
        self.settings = settings
    }

    /// The shared WordLevel tokenizer file.
    public var tokenizerURL: URL { directory.appendingPathComponent("tokenizer.json") }

    /// The JSONL file of a domain and split.
    public func url(_ domain: Domain, _ split: String) -> URL {
        directory.appendingPathComponent("\(domain.rawValue)-\(split).jsonl")
    }

    /// The examples of a domain's split, cut to the settings' image limit (every image keeps all its
    /// questions).
    public func dataset(_ domain: Domain, _ split: String) throws -> TrainingDataset {
        let full = try step("reading \(url(domain, split).path)") { try TrainingDataset(contentsOf: url(domain, split)) }
        guard let limit = split == "train" ? settings.trainImages : settings.testImages else { return full }
        var seen: [String] = []
        let kept = full.examples.filter { example in
            if let index = seen.firstIndex(of: example.imagePath) { return index < limit }
            seen.append(example.imagePath)
            return seen.count <= limit
        }
        return TrainingDataset(examples: kept, sourceURL: full.sourceURL)
    }

    /// The preprocessing every encoder of the miniature uses: the image's size, mean and std 0.5.
    public var preprocessing: ImagePreprocessing {
        ImagePreprocessing(width: settings.imageSize, height: settings.imageSize)
    }
}

/// Images decoded and preprocessed once, by path: `[3, size, size]` pixel tensors.
public struct PixelCache: Sendable {
    /// The pixels by image path as written in the JSONL.
    public let pixels: [String: Tensor]

    /// Decodes every distinct image of the datasets.
    ///
    /// - Throws: ``ExperimentError`` naming the file and line of an image that cannot be read.
    public init(datasets: [TrainingDataset], preprocessing: ImagePreprocessing) throws {
        var pixels: [String: Tensor] = [:]
        for dataset in datasets {
            for example in dataset.examples where pixels[example.imagePath] == nil {
                let values = try step("\(dataset.sourceURL?.path ?? "dataset") line \(example.line): image \(example.imagePath)") {
                    try Image(contentsOf: example.imageURL).pixelValues(preprocessing)
                }
                pixels[example.imagePath] = Tensor(values.values, shape: values.shape)
            }
        }
        self.pixels = pixels
    }

    /// The pixels of an example's image.
    public func pixels(for example: TrainingExample) throws -> Tensor {
        guard let tensor = pixels[example.imagePath] else {
            throw ExperimentError("image \(example.imagePath) (line \(example.line)) was not preloaded; include its dataset in the pixel cache")
        }
        return tensor
    }

    /// The trainer's input closure over this cache.
    public var inputs: @Sendable (TrainingExample) throws -> Tensor {
        let pixels = self.pixels
        return { example in
            guard let tensor = pixels[example.imagePath] else {
                throw ExperimentError("image \(example.imagePath) (line \(example.line)) was not preloaded; include its dataset in the pixel cache")
            }
            return tensor
        }
    }
}

extension TrainingDataset {
    /// The distinct images in file order, with every question about each.
    var imagesInOrder: [(path: String, examples: [TrainingExample])] {
        var order: [String] = []
        var groups: [String: [TrainingExample]] = [:]
        for example in examples {
            if groups[example.imagePath] == nil { order.append(example.imagePath) }
            groups[example.imagePath, default: []].append(example)
        }
        return order.map { ($0, groups[$0] ?? []) }
    }
}
