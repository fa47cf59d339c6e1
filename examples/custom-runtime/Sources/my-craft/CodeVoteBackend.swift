// A custom runtime an application registers: `code-vote`, a language backend with no neural network.
// It answers a prompt about an image from votes its bundle holds: for each prompt it was built for,
// how often each visual code appeared with each answer (built by `my-craft build-votes` from a
// training set encoded by a real encoder). It reads the encoder's codebook, so the compatibility
// checker pairs it with every encoder sharing that codebook, as it does for Craft's own backends.
import CraftBundles
import CraftCore
import Foundation

/// The votes of a `code-vote` bundle (`votes.json`): per prompt, per first-level code, answer counts.
public struct CodeVotes: Codable, Sendable, Equatable {
    /// `votes[prompt][code] = [answer: count]`, codes written as decimal strings.
    public var votes: [String: [String: [String: Int]]]
    /// The answer when a prompt is unknown or no code of the image voted.
    public var fallback: String

    public init(votes: [String: [String: [String: Int]]] = [:], fallback: String = "I don't know.") {
        self.votes = votes
        self.fallback = fallback
    }

    /// Counts one example: every first-level code of the image votes for its answer.
    public mutating func add(codes: [Int32], prompt: String, answer: String) {
        for code in codes {
            votes[prompt, default: [:]][String(code), default: [:]][answer, default: 0] += 1
        }
    }

    /// The answer with the most votes from `codes` (each code's counts normalised to sum to one, so
    /// frequent codes do not drown rare informative ones); ties go to the alphabetically first answer.
    public func answer(codes: [Int32], prompt: String) -> String {
        guard let table = votes[prompt] else { return fallback }
        var score: [String: Double] = [:]
        for code in codes {
            guard let counts = table[String(code)] else { continue }
            let total = Double(counts.values.reduce(0, +))
            for (answer, count) in counts { score[answer, default: 0] += Double(count) / total }
        }
        return score.max { $0.value < $1.value || ($0.value == $1.value && $0.key > $1.key) }?.key ?? fallback
    }
}

/// The `code-vote` backend: a ``LanguageBackend`` (generation only; it cannot be a training surrogate).
public struct CodeVoteBackend: LanguageBackend {
    /// The runtime id its bundles name.
    public static let runtimeID = "code-vote"
    /// The file holding the votes.
    public static let votesFile = "votes.json"

    public let codebookHash: String
    public let contextLength: Int
    public let votes: CodeVotes

    /// Loads the backend from an unpacked, verified bundle.
    public init(bundle: UnpackedBundle) throws {
        let manifest = bundle.manifest
        guard manifest.file(at: Self.votesFile) != nil else {
            throw BundleError(.invalidManifest, "\(manifest.reference) does not list \(Self.votesFile), which the code-vote runtime reads", entry: "files")
        }
        let url = bundle.url(for: Self.votesFile)
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        let limit = 64 << 20
        let data = try handle.read(upToCount: limit + 1) ?? Data()
        guard data.count <= limit else {
            throw BundleError(.limitExceeded, "\(Self.votesFile) of \(manifest.reference) is over \(limit) bytes", entry: Self.votesFile)
        }
        do {
            votes = try JSONDecoder().decode(CodeVotes.self, from: data)
        } catch {
            throw BundleError(.invalidManifest, "\(Self.votesFile) of \(manifest.reference) is not {\"votes\": {prompt: {code: {answer: count}}}, \"fallback\": text}: \(error)", entry: Self.votesFile)
        }
        codebookHash = manifest.codebook.hash
        contextLength = manifest.backend?.contextLength ?? 4096
    }

    /// Text is tokenized as its UTF-8 bytes (the backend needs no vocabulary of its own).
    public func tokenize(_ text: String) throws -> [Int32] { text.utf8.map { Int32($0) } }

    public func detokenize(_ tokens: [Int32]) throws -> String {
        String(decoding: tokens.map { UInt8(clamping: $0) }, as: UTF8.self)
    }

    /// Answers from the votes of the image's first-level codes for the prompt's text.
    public func generate(_ prompt: [PromptSegment], options: GenerationOptions) throws -> GeneratedText {
        var codes: [Int32] = []
        var text = ""
        for segment in prompt {
            switch segment {
            case .visual(let tokens):
                guard tokens.codebookHash == codebookHash else {
                    throw BundleError(.runtimeFailed, "visual tokens of codebook \(tokens.codebookHash) reached a code-vote backend of \(codebookHash)")
                }
                let depth = tokens.codes.shape[1]
                codes += stride(from: 0, to: tokens.codes.scalars.count, by: depth).map { tokens.codes.scalars[$0] }
            case .text(let piece): text += piece
            case .tokens, .vectors: break
            }
        }
        let answer = votes.answer(codes: codes, prompt: text.trimmingCharacters(in: .whitespacesAndNewlines))
        let tokens = Array(try tokenize(answer).prefix(options.maximumNewTokens))
        return GeneratedText(
            text: try detokenize(tokens), tokens: tokens,
            finishReason: tokens.count < answer.utf8.count ? .length : .endOfSequence)
    }
}

extension RuntimeRegistry {
    /// Registers `code-vote` 1.x, so its bundles load and count as registered for the checker.
    public mutating func registerCodeVote() {
        registerBackend(
            CodeVoteBackend.runtimeID, versions: (try? VersionRange("^1.0")) ?? .any,
            summary: "answers from votes of the image's visual codes (no neural network)"
        ) { bundle in
            try CodeVoteBackend(bundle: bundle)
        }
    }
}
