import Foundation

/// One training example: an image with a prompt and the expected answer (docs/training.md).
///
/// A line of a JSONL dataset: `{"image": "images/cat.png", "prompt": "What animal is this?",
/// "answer": "cat", "caption": "a cat on a sofa", "label": "cat"}`; `caption` and `label` are
/// optional and give the texts of the contrastive term (the caption and "a photo of a {label}").
public struct TrainingExample: Sendable, Equatable, Codable {
    /// The image file, resolved against the dataset file's directory.
    public var imageURL: URL
    /// The image path as written in the file.
    public var imagePath: String
    /// The prompt (question or instruction) before the answer.
    public var prompt: String
    /// The answer the surrogate should give.
    public var answer: String
    /// An optional caption.
    public var caption: String?
    /// An optional class label.
    public var label: String?
    /// The 1-based line in the dataset file.
    public var line: Int

    /// Creates an example.
    public init(imageURL: URL, imagePath: String, prompt: String, answer: String, caption: String? = nil, label: String? = nil, line: Int) {
        self.imageURL = imageURL
        self.imagePath = imagePath
        self.prompt = prompt
        self.answer = answer
        self.caption = caption
        self.label = label
        self.line = line
    }

    /// The texts the contrastive term pairs with the image: its caption and "a photo of a {label}",
    /// whichever it has (both when it has both); empty when it has neither.
    public var contrastiveTexts: [String] {
        var texts: [String] = []
        if let caption, !caption.isEmpty { texts.append(caption) }
        if let label, !label.isEmpty { texts.append("a photo of a \(label)") }
        return texts
    }
}
