// A language backend served by an out-of-process plugin: Craft sends the prompt's segments (text,
// token ids, and each visual segment's codes and codebook-space vectors) and checks what comes back.
import CraftBundles
import CraftCore
import Foundation
import TensorCore

/// A ``LanguageBackend`` whose tokenizer and generation run in a runtime plugin
/// (docs/runtime-protocol.md).
///
/// The codebook hash is the bundle's declared one: the compatibility checker compares it with the
/// encoder's (recomputed by Craft) before the plugin starts, and every visual segment sent must
/// carry that hash. Token ids the plugin returns are checked to be non-negative and its text to be
/// within the limits.
public struct PluginBackend: LanguageBackend, @unchecked Sendable {
    let connection: PluginConnection
    let reference: String
    let lifetime: PluginLifetime
    public let codebookHash: String
    public let contextLength: Int

    /// The most tokens or characters a plugin may return for one call.
    static let maximumAnswer = 1 << 20

    init(bundle: UnpackedBundle, connection: PluginConnection, runtime: PluginOffer, manifestObject: Any) throws {
        let manifest = bundle.manifest
        reference = manifest.reference
        self.connection = connection
        lifetime = PluginLifetime(connection)
        codebookHash = manifest.codebook.hash
        guard let specifics = manifest.backend else {
            throw BundleError(.invalidManifest, "\(manifest.reference) has no backend section (context_length, ...); a plugin backend's bundle needs one", entry: "backend")
        }
        contextLength = specifics.contextLength
        _ = try connection.request(
            ["type": "load", "runtime": runtime.id, "kind": "backend", "directory": bundle.directory.path, "manifest": manifestObject],
            expecting: "loaded", timeout: connection.timeouts.load, doing: "loading \(manifest.reference)")
    }

    public func tokenize(_ text: String) throws -> [Int32] {
        let (answer, _) = try connection.request(["type": "tokenize", "text": text], expecting: "tokenized",
                                                  timeout: connection.timeouts.call, doing: "tokenizing for \(reference)")
        return try tokens(answer["tokens"], field: "tokens of \"tokenized\"")
    }

    public func detokenize(_ tokens: [Int32]) throws -> String {
        let (answer, _) = try connection.request(["type": "detokenize", "tokens": tokens.map(Int.init)], expecting: "detokenized",
                                                  timeout: connection.timeouts.call, doing: "detokenizing for \(reference)")
        return try text(answer["text"], field: "text of \"detokenized\"")
    }

    public func generate(_ prompt: [PromptSegment], options: GenerationOptions) throws -> GeneratedText {
        // The plugin protocol sends codes, not position ids: refuse rather than let the plugin renumber.
        try options.checkVisualPositionIDs(supportedBy: self)
        var segments: [[String: Any]] = []
        var tensors: [PluginTensor] = []
        for segment in prompt {
            switch segment {
            case .text(let text):
                segments.append(["text": text])
            case .tokens(let ids):
                segments.append(["tokens": ids.map(Int.init)])
            case .visual(let visual):
                guard visual.codebookHash == codebookHash else {
                    throw CraftCoreError(.shapeMismatch, "\(reference) reads codebook \(codebookHash), but a visual segment carries tokens of \(visual.codebookHash)")
                }
                let index = segments.count
                segments.append(["visual": index])
                tensors.append(PluginTensor(name: "codes.\(index)", dataType: .int32, shape: visual.codes.shape,
                                            bytes: visual.codes.scalars.withUnsafeBytes { Array($0) }))
                if let features = visual.features {
                    tensors.append(PluginTensor(name: "vectors.\(index)", floats: features.scalars, shape: features.shape))
                }
            case .vectors(let vectors):
                let index = segments.count
                segments.append(["visual": index])
                tensors.append(PluginTensor(name: "vectors.\(index)", floats: vectors.scalars, shape: vectors.shape))
            }
        }
        guard tensors.count <= PluginLimits.tensors else {
            throw CraftCoreError(.shapeMismatch, "a prompt for \(reference) has \(tensors.count) visual tensors; craft.runtime/v1 sends at most \(PluginLimits.tensors)")
        }
        let request: [String: Any] = [
            "type": "generate", "segments": segments,
            "options": ["max_tokens": options.maximumNewTokens, "temperature": Double(options.temperature), "top_k": options.topK,
                        "seed": NSNumber(value: options.seed), "stop": options.stopSequences],
        ]
        let (answer, _) = try connection.request(request, tensors: tensors, expecting: "generated", timeout: connection.timeouts.call,
                                                  doing: "generating for \(reference)")
        let generated = try tokens(answer["tokens"], field: "tokens of \"generated\"")
        guard generated.count <= options.maximumNewTokens else {
            throw invalid("\(generated.count) tokens where at most \(options.maximumNewTokens) were asked for")
        }
        let reason: FinishReason
        switch answer["finish_reason"] as? String {
        case "eos": reason = .endOfSequence
        case "stop": reason = .stopSequence
        case "length": reason = .length
        case "context": reason = .contextFull
        case let other: throw invalid("the finish reason \(other.map { "\"\($0)\"" } ?? "(missing)"); it must be eos, stop, length or context")
        }
        return GeneratedText(text: try text(answer["text"], field: "text of \"generated\""), tokens: generated, finishReason: reason)
    }

    private func tokens(_ value: Any?, field: String) throws -> [Int32] {
        guard let list = value as? [Any], list.count <= Self.maximumAnswer else { throw invalid("no list of at most \(Self.maximumAnswer) token ids as the \(field)") }
        return try list.map { element in
            guard let number = element as? Int, number >= 0, number <= Int(Int32.max) else { throw invalid("\(element) among the \(field), not a token id") }
            return Int32(number)
        }
    }

    private func text(_ value: Any?, field: String) throws -> String {
        guard let text = value as? String, text.utf8.count <= Self.maximumAnswer else { throw invalid("no string of at most \(Self.maximumAnswer) bytes as the \(field)") }
        return text
    }

    private func invalid(_ what: String) -> PluginError {
        connection.process.failure(.invalidAnswer, "the runtime plugin \(connection.name) returned \(what) for \(reference); it was stopped")
    }
}
