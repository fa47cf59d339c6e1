// Reading the JSONL datasets of an adaptation, with every problem reported as one sentence naming the
// file and line, before any training starts.
import CraftTraining
import Foundation

/// Loading and checking datasets.
enum AdaptationDatasets {
    /// Reads a JSONL dataset and checks every image it names exists.
    ///
    /// - Parameter role: what the file is for, in messages (`training data`, `validation data`).
    /// - Throws: ``AdaptationError`` (`notFound`) when the file does not exist; (`invalidData`) naming
    ///   the file and line for a bad JSON line, a missing field, an image path leaving the directory,
    ///   or a file without examples; (`notFound`) for an image that does not exist.
    static func load(_ url: URL, role: String) throws -> TrainingDataset {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw AdaptationError(.notFound, "the \(role) \(url.path) does not exist; pass a JSONL file of {\"image\", \"prompt\", \"answer\"} lines")
        }
        let dataset = try AdaptationError.converting { try TrainingDataset(contentsOf: url) }
        for example in dataset.examples {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: example.imageURL.path, isDirectory: &isDirectory), !isDirectory.boolValue else {
                throw AdaptationError(.notFound, "\(url.path) line \(example.line): the image \(example.imagePath) does not exist (looked for \(example.imageURL.path)); fix the path or remove the line")
            }
        }
        return dataset
    }

    /// The training and validation sets: the given validation file, else a deterministic split of the
    /// training file (``TrainingDataset/split(validationFraction:)``).
    ///
    /// - Throws: ``AdaptationError`` (`invalidData`) when either side of the split is empty.
    static func trainingAndValidation(
        training url: URL, validation validationURL: URL?, fraction: Double
    ) throws -> (training: TrainingDataset, validation: TrainingDataset) {
        let training = try load(url, role: "training data")
        if let validationURL {
            return (training, try load(validationURL, role: "validation data"))
        }
        guard fraction > 0, fraction < 1 else {
            throw AdaptationError(.invalidRequest, "the validation fraction is \(fraction); use a number between 0 and 1 (exclusive) such as 0.1, or give a validation file")
        }
        let (kept, held) = training.split(validationFraction: fraction)
        guard held.count > 0 else {
            throw AdaptationError(.invalidData, "\(url.path): holding out a fraction \(fraction) of its \(training.count) examples leaves an empty validation split; give a validation file or a larger fraction")
        }
        guard kept.count > 0 else {
            throw AdaptationError(.invalidData, "\(url.path): holding out a fraction \(fraction) of its \(training.count) examples leaves an empty training split; give a validation file or a smaller fraction")
        }
        return (kept, held)
    }
}
