// The backend's prompt template: where the image's visual tokens and the user's text go.
import CraftBundles
import CraftCore

/// A prompt template with an `<image>` placeholder (the visual tokens) and an optional `{prompt}`
/// placeholder (the user's text; appended at the end when absent), from `backend.prompt_template`.
///
/// ```swift
/// let template = try PromptTemplate("<image>\nQuestion: {prompt}\nAnswer:")
/// let segments = template.segments(visual: tokens, prompt: "what is this?")
/// ```
public struct PromptTemplate: Sendable, Equatable {
    /// The image placeholder.
    public static let imagePlaceholder = "<image>"
    /// The text placeholder.
    public static let promptPlaceholder = "{prompt}"
    /// The default template when a backend declares none: the image, then the prompt.
    public static let `default` = PromptTemplate(unchecked: "<image>{prompt}")

    /// The template text.
    public let text: String

    private init(unchecked text: String) { self.text = text }

    /// A template, which must hold `<image>` exactly once and `{prompt}` at most once.
    ///
    /// - Throws: ``BundleError`` (`invalidManifest`, entry `backend.prompt_template`) otherwise.
    public init(_ text: String) throws {
        let images = text.components(separatedBy: Self.imagePlaceholder).count - 1
        let prompts = text.components(separatedBy: Self.promptPlaceholder).count - 1
        guard images == 1, prompts <= 1 else {
            throw BundleError(.invalidManifest, "the prompt template \"\(text)\" must hold \(Self.imagePlaceholder) exactly once (it has \(images)) and \(Self.promptPlaceholder) at most once (it has \(prompts))", entry: "backend.prompt_template")
        }
        self.text = text
    }

    /// The template a backend manifest declares, or ``default``.
    public init(manifest: BundleManifest) throws {
        if let text = manifest.backend?.promptTemplate {
            do {
                try self.init(text)
            } catch let error as BundleError {
                throw BundleError(.invalidManifest, "\(manifest.reference): \(error.message)", entry: "backend.prompt_template")
            }
        } else {
            self = .default
        }
    }

    /// The prompt segments: text before the image, the visual tokens, text after (empty texts dropped).
    public func segments(visual: VisualTokens, prompt: String) -> [PromptSegment] {
        segments(image: .visual(visual), prompt: prompt)
    }

    /// The prompt segments with `image` in the image's place (visual tokens, or codebook-space
    /// vectors for a training surrogate): text before it, `image`, text after (empty texts dropped).
    public func segments(image: PromptSegment, prompt: String) -> [PromptSegment] {
        // Split the template (not the filled text) so an "<image>" typed by the user stays text.
        let parts = text.components(separatedBy: Self.imagePlaceholder)
        let hasPrompt = text.contains(Self.promptPlaceholder)
        let fill = { (piece: String) in piece.replacingOccurrences(of: Self.promptPlaceholder, with: prompt) }
        let head = fill(parts[0])
        let after = parts.count > 1 ? parts[1] : ""
        let tail = hasPrompt ? fill(after) : after + prompt
        var segments: [PromptSegment] = []
        if !head.isEmpty { segments.append(.text(head)) }
        segments.append(image)
        if !tail.isEmpty { segments.append(.text(tail)) }
        return segments
    }
}
