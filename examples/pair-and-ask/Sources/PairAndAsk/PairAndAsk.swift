// pair-and-ask: what an integrator writes against Craft's library API. Open a registry, pull an
// encoder and a backend, let the compatibility checker prove they share a codebook (CheckedPair),
// wire them into a Pipeline and answer a question about a PNG or JPEG.
//
// This file is also compiled into Craft's own test target (Tests/CraftRuntimesTests/PairAndAskExample,
// a symbolic link), so `make test` checks that the example keeps working without building this
// package (which would rebuild all of Craft: minutes on two cores).
import CraftBundles
import CraftCore
import CraftRegistry
import CraftRuntimes
import Foundation

/// What to pair and what to ask.
public struct PairAndAskRequest: Sendable {
    /// The registry directory (default `registry`, the one embedded at the top of the repository).
    public var registry: URL
    /// The encoder reference (`NAME`, `NAME@VERSION`, `NAME@RANGE`); `nil` picks the first encoder of a
    /// model runtime that has a compatible backend.
    public var encoder: String?
    /// The backend reference; `nil` picks the first compatible backend of a model runtime.
    public var backend: String?
    /// The image to ask about (PNG or JPEG).
    public var image: URL
    /// The question.
    public var prompt: String
    /// The most tokens to generate.
    public var maximumNewTokens: Int
    /// The fraction of visual tokens to keep (codebook-rarity pruning), in `(0, 1]`.
    public var keepRatio: Double
    /// Where pulled bundles are unpacked (default `$CRAFT_CACHE` or `~/.craft/cache`).
    public var cache: URL?

    /// Creates a request.
    public init(
        registry: URL, encoder: String? = nil, backend: String? = nil, image: URL, prompt: String,
        maximumNewTokens: Int = 16, keepRatio: Double = 1, cache: URL? = nil
    ) {
        self.registry = registry
        self.encoder = encoder
        self.backend = backend
        self.image = image
        self.prompt = prompt
        self.maximumNewTokens = maximumNewTokens
        self.keepRatio = keepRatio
        self.cache = cache
    }
}

/// What pairing and asking produced.
public struct PairAndAskResult: Sendable {
    /// `NAME@VERSION` of the encoder and the backend that were paired.
    public var encoder: String
    public var backend: String
    /// The codebook hash the checker proved both share.
    public var codebookHash: String
    /// The names of the compatibility checks that passed.
    public var passedChecks: [String]
    /// The answer.
    public var answer: String
    /// Visual tokens, counted prefill FLOPs and latency of the answer.
    public var measurement: InferenceMeasurement

    /// The lines the example prints.
    public var report: String {
        var lines = [
            "encoder: \(encoder)",
            "backend: \(backend)",
            "codebook: \(codebookHash) (\(passedChecks.count) checks passed)",
            "visual tokens: \(measurement.visualTokensBefore) -> \(measurement.visualTokensAfter)",
        ]
        if let full = measurement.prefillFLOPsFull, let pruned = measurement.prefillFLOPsPruned {
            lines.append("prefill FLOPs: \(Int(full)) -> \(Int(pruned))")
        }
        lines.append("answer: \(answer)")
        return lines.joined(separator: "\n") + "\n"
    }
}

/// A failure of the example, with the exit status `main` uses (Craft's: 2 not found, 3 incompatible,
/// 4 integrity, 64 usage, 1 other).
public struct PairAndAskError: Error, LocalizedError, CategorizedError {
    public var category: ErrorCategory
    public var message: String
    public init(_ category: ErrorCategory, _ message: String) {
        self.category = category
        self.message = message
    }
    public var errorDescription: String? { message }
}

public enum PairAndAsk {
    /// Model runtimes the automatic choice considers (table runtimes have no images to look at).
    static let modelRuntimes: Set<String> = [ModelRuntimes.siglipVQ, ModelRuntimes.llama, ModelRuntimes.gpt2]

    /// Pulls, checks, wires and asks.
    ///
    /// - Throws: a ``CategorizedError``: not found (no such bundle, image or registry), incompatible
    ///   (the checker refused the pair), integrity (a bundle failed verification), usage.
    public static func run(_ request: PairAndAskRequest) throws -> PairAndAskResult {
        let registry = Registry(root: request.registry)
        guard registry.exists else {
            throw PairAndAskError(.notFound, "no registry at \(request.registry.path); pass --registry DIR (a directory holding registry.json)")
        }
        let cache = request.cache.map { BundleCache(root: $0) } ?? .locate()

        // 1. Choose the two bundles: as named, or the first compatible pair of model runtimes.
        let (encoderReference, backendReference) = try choose(request, in: registry)

        // 2. Pull them: copied out of the registry, digest checked against the index, unpacked.
        let encoder = try BundleArchive.open(directory: registry.pull(encoderReference, cache: cache).directory)
        let backend = try BundleArchive.open(directory: registry.pull(backendReference, cache: cache).directory)

        // 3. Check them. Only a passing report hands out a CheckedPair; without one, nothing is wired.
        let report = checkCompatibility(encoder: encoder, backend: backend, runtimes: .craftDefault)
        guard let pair = report.pairing else {
            let reasons = report.failures.map { "\($0.code.rawValue): \($0.reason)" }.joined(separator: "; ")
            throw PairAndAskError(.incompatible, "\(encoder.manifest.reference) and \(backend.manifest.reference) cannot be paired: \(reasons)")
        }

        // 4. Wire and ask.
        let pipeline = try Pipeline(pair: pair, encoder: encoder, backend: backend)
        guard FileManager.default.fileExists(atPath: request.image.path) else {
            throw PairAndAskError(.notFound, "the image \(request.image.path) does not exist; pass a PNG or JPEG file")
        }
        let image = try ImageInput.rgbImage(contentsOf: request.image)
        let result = try pipeline.measuredAnswer(
            image: image, prompt: request.prompt, keepRatio: request.keepRatio,
            options: GenerationOptions(maximumNewTokens: request.maximumNewTokens))
        return PairAndAskResult(
            encoder: pair.encoder.reference, backend: pair.backend.reference, codebookHash: pair.codebook.hash,
            passedChecks: report.checks.filter(\.passed).map(\.code.rawValue), answer: result.answer.text,
            measurement: result.measurement)
    }

    /// The references to pull: the request's, or the first encoder (by name) of a model runtime with a
    /// compatible backend of a model runtime.
    static func choose(_ request: PairAndAskRequest, in registry: Registry) throws -> (BundleReference, BundleReference) {
        func parse(_ text: String, _ role: String) throws -> BundleReference {
            do {
                return try BundleReference(parsing: text)
            } catch {
                throw PairAndAskError(.usage, "--\(role) \(text) is not a bundle reference; write NAME, NAME@VERSION or NAME@RANGE")
            }
        }
        if let encoder = request.encoder, let backend = request.backend {
            return (try parse(encoder, "encoder"), try parse(backend, "backend"))
        }
        let encoders: [BundleReference]
        if let encoder = request.encoder {
            encoders = [try parse(encoder, "encoder")]
        } else {
            encoders = try registry.list(kind: .encoder).bundles
                .filter { modelRuntimes.contains($0.record.runtime.id) }
                .map { BundleReference(name: $0.name, requirement: .exact($0.record.version)) }
        }
        for encoder in encoders {
            let partners = try registry.compatible(with: encoder).partners.filter { modelRuntimes.contains($0.record.runtime.id) }
            if let backend = request.backend {
                return (encoder, try parse(backend, "backend"))
            }
            if let first = partners.first {
                return (encoder, BundleReference(name: first.name, requirement: .exact(first.record.version)))
            }
        }
        throw PairAndAskError(.notFound, "\(registry.root.path) holds no \(request.encoder.map { "backend compatible with \($0)" } ?? "encoder with a compatible backend") for the siglip-vq, llama or gpt2 runtimes; name them with --encoder and --backend")
    }

    /// The command line: `pair-and-ask --image FILE [--prompt TEXT] [--registry DIR] [--encoder REF]
    /// [--backend REF] [--max-tokens N] [--keep-ratio R] [--cache DIR]`.
    ///
    /// - Returns: the request, or `nil` after printing the usage for `--help`.
    /// - Throws: ``PairAndAskError`` (usage) for an unknown option, a missing value or a bad number.
    public static func parse(_ arguments: [String], currentDirectory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)) throws -> PairAndAskRequest? {
        var values: [String: String] = [:]
        var index = 0
        let known = ["--registry", "--encoder", "--backend", "--image", "--prompt", "--max-tokens", "--keep-ratio", "--cache"]
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "--help" || argument == "-h" { return nil }
            guard known.contains(argument) else {
                throw PairAndAskError(.usage, "unknown argument \(argument); \(usage)")
            }
            guard index + 1 < arguments.count else { throw PairAndAskError(.usage, "\(argument) needs a value; \(usage)") }
            values[argument] = arguments[index + 1]
            index += 2
        }
        guard let image = values["--image"] else { throw PairAndAskError(.usage, "--image is required; \(usage)") }
        func path(_ text: String) -> URL {
            text.hasPrefix("/") ? URL(fileURLWithPath: text) : currentDirectory.appendingPathComponent(text)
        }
        let maximumNewTokens = values["--max-tokens"].map { Int($0) } ?? 16
        guard let maximumNewTokens, maximumNewTokens >= 0 else {
            throw PairAndAskError(.usage, "--max-tokens must be a whole number, 0 or more")
        }
        let keepRatio = values["--keep-ratio"].map { Double($0) } ?? 1
        guard let keepRatio, keepRatio > 0, keepRatio <= 1 else {
            throw PairAndAskError(.usage, "--keep-ratio must be a number in (0, 1], such as 0.5")
        }
        return PairAndAskRequest(
            registry: path(values["--registry"] ?? "registry"), encoder: values["--encoder"], backend: values["--backend"],
            image: path(image), prompt: values["--prompt"] ?? "What is shown in the image?",
            maximumNewTokens: maximumNewTokens, keepRatio: keepRatio, cache: values["--cache"].map(path))
    }

    /// One line of usage.
    public static let usage = "usage: pair-and-ask --image FILE [--prompt TEXT] [--registry DIR] [--encoder REF] [--backend REF] [--max-tokens N] [--keep-ratio R] [--cache DIR]"

    /// Runs the command line: prints the report on stdout, or one error sentence on stderr; returns
    /// the exit status (0, or Craft's codes by the error's category).
    public static func main(_ arguments: [String]) -> Int32 {
        do {
            guard let request = try parse(arguments) else {
                print(usage)
                return 0
            }
            print(try run(request).report, terminator: "")
            return 0
        } catch {
            let text = (error as? LocalizedError)?.errorDescription ?? String(describing: error)
            FileHandle.standardError.write(Data("error: \(text)\n".utf8))
            switch (error as? CategorizedError)?.category {
            case .notFound: return 2
            case .incompatible: return 3
            case .integrity: return 4
            case .usage: return 64
            default: return 1
            }
        }
    }
}
