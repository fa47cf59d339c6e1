// The result of checking an encoder against a backend: named checks with stable codes (docs/compatibility.md).
import Foundation

/// The stable code of one compatibility check. Codes never change meaning; new ones may be added.
public struct CompatibilityCheckCode: Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    public init(from decoder: Decoder) throws { rawValue = try decoder.singleValueContainer().decode(String.self) }
    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    /// The side's manifest passed validation.
    public static let manifestValid = Self("manifest.valid")
    /// The side is the kind it is used as (an encoder bundle as encoder, a backend bundle as backend).
    public static let bundleKind = Self("bundle.kind")
    /// The encoder's declared codebook hash equals the hash recomputed from its codebook tensor.
    public static let codebookHashRecomputed = Self("encoder.codebook-hash.recomputed")
    /// The backend's declared codebook hash equals the encoder's codebook hash.
    public static let codebookHashMatch = Self("codebook.hash-match")
    /// Entries, dimension and depth agree.
    public static let codebookShape = Self("codebook.shape")
    /// Both use the same metric.
    public static let codebookMetric = Self("codebook.metric")
    /// The side's runtime is registered.
    public static let runtimeRegistered = Self("runtime.registered")
    /// The encoder's tokens per image fit the backend's context length.
    public static let contextFits = Self("context.fits")
    /// The side's Craft version range admits this build.
    public static let craftVersion = Self("craft.version")
}

/// Which part of a pairing a check is about, or is to blame.
public enum CheckSubject: String, Sendable, Codable {
    case encoder
    case backend
    case pair
}

/// One named check: passed or failed, with a reason.
public struct CompatibilityCheck: Sendable, Equatable, Codable {
    public var code: CompatibilityCheckCode
    /// What the check is about.
    public var subject: CheckSubject
    public var passed: Bool
    /// Why it passed or failed, one sentence naming bundles and values.
    public var reason: String
    /// For a failure, the side that is wrong (nil when neither side alone is to blame).
    public var wrongSide: CheckSubject?

    public init(code: CompatibilityCheckCode, subject: CheckSubject, passed: Bool, reason: String, wrongSide: CheckSubject? = nil) {
        self.code = code
        self.subject = subject
        self.passed = passed
        self.reason = reason
        self.wrongSide = passed ? nil : wrongSide
    }

    enum CodingKeys: String, CodingKey {
        case code, subject, passed, reason
        case wrongSide = "wrong_side"
    }

    /// Writes every key, `wrong_side` as `null` when there is none, so the JSON keys are stable.
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(code, forKey: .code)
        try container.encode(subject, forKey: .subject)
        try container.encode(passed, forKey: .passed)
        try container.encode(reason, forKey: .reason)
        try container.encode(wrongSide, forKey: .wrongSide)
    }
}

/// The outcome of checking an encoder against a backend (docs/compatibility.md).
///
/// A list of named checks with stable codes, each passed or failed with a reason. ``pairing`` is
/// present only when every check passed: it is the only way to obtain a ``CheckedPair``, so nothing
/// can be wired from an unchecked or failing pairing.
public struct CompatibilityReport: Sendable {
    /// The encoder and backend checked.
    public let encoder: CompatibilityCandidate
    public let backend: CompatibilityCandidate
    /// Every check, in a fixed order.
    public let checks: [CompatibilityCheck]
    /// The Craft version that checked.
    public let craftVersion: String
    /// The proof of compatibility, present iff ``isCompatible``.
    public let pairing: CheckedPair?

    init(encoder: CompatibilityCandidate, backend: CompatibilityCandidate, checks: [CompatibilityCheck], craftVersion: String) {
        self.encoder = encoder
        self.backend = backend
        self.checks = checks
        self.craftVersion = craftVersion
        let compatible = checks.allSatisfy(\.passed)
        pairing = compatible ? CheckedPair(encoder: encoder, backend: backend, codebook: encoder.effectiveCodebook) : nil
    }

    /// Whether every check passed.
    public var isCompatible: Bool { pairing != nil }

    /// The failed checks.
    public var failures: [CompatibilityCheck] { checks.filter { !$0.passed } }

    /// The checked pair, or an error (category `incompatible`, exit code 3) listing the failures.
    public func requirePairing() throws -> CheckedPair {
        if let pairing { return pairing }
        let reasons = failures.map { "\($0.code): \($0.reason)" }.joined(separator: " ")
        throw CraftCoreError(.incompatible, "\(encoder.reference) and \(backend.reference) cannot be paired (\(failures.count) check\(failures.count == 1 ? "" : "s") failed). \(reasons)")
    }

    // MARK: - Rendering

    /// Aligned human-readable text: the two bundles, one line per check, the verdict.
    public func renderText() -> String {
        var lines: [String] = []
        let encoderHash = encoder.effectiveCodebook.hash
        lines.append("encoder  \(encoder.reference)  codebook \(encoderHash)")
        lines.append("backend  \(backend.reference)  codebook \(backend.declaredCodebook.hash)")
        let width = (checks.map { $0.code.rawValue.count + $0.subject.rawValue.count + 3 }.max() ?? 0)
        for check in checks {
            let label = "\(check.code) (\(check.subject.rawValue))"
            let padded = label.padding(toLength: max(width, label.count), withPad: " ", startingAt: 0)
            lines.append("\(check.passed ? "PASS" : "FAIL")  \(padded)  \(check.reason)")
        }
        if isCompatible {
            lines.append("compatible: \(encoder.reference) can be paired with \(backend.reference)")
        } else {
            lines.append("incompatible: \(failures.count) of \(checks.count) checks failed")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// JSON with stable keys: `schema_version` (1), `compatible`, `craft_version`, `encoder`, `backend`
    /// (`name`, `version`, `codebook_hash`, `runtime`), `checks` (`code`, `subject`, `passed`,
    /// `reason`, `wrong_side`).
    public func renderJSON() throws -> String {
        let encoderOut = JSONReport.Side(encoder, hash: encoder.effectiveCodebook.hash)
        let backendOut = JSONReport.Side(backend, hash: backend.declaredCodebook.hash)
        let report = JSONReport(compatible: isCompatible, craftVersion: craftVersion, encoder: encoderOut, backend: backendOut, checks: checks)
        let coder = JSONEncoder()
        coder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        let data = try coder.encode(report)
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    private struct JSONReport: Encodable {
        struct Side: Encodable {
            var name: String
            var version: String
            var codebookHash: String
            var runtime: String
            init(_ candidate: CompatibilityCandidate, hash: String) {
                name = candidate.name
                version = candidate.version
                codebookHash = hash
                runtime = "\(candidate.runtimeID)@\(candidate.runtimeVersion)"
            }
            enum CodingKeys: String, CodingKey {
                case name, version, runtime
                case codebookHash = "codebook_hash"
            }
        }
        var schemaVersion = 1
        var compatible: Bool
        var craftVersion: String
        var encoder: Side
        var backend: Side
        var checks: [CompatibilityCheck]
        enum CodingKeys: String, CodingKey {
            case compatible, encoder, backend, checks
            case craftVersion = "craft_version"
            case schemaVersion = "schema_version"
        }
    }
}

/// An encoder and a backend proven compatible by a passing ``CompatibilityReport``.
///
/// It has no public initializer: the only way to get one is ``CompatibilityReport/pairing`` (or
/// ``CompatibilityReport/requirePairing()``) of a report whose every check passed. Wiring APIs (the
/// pipeline) take a `CheckedPair`, so an unchecked pairing cannot be built.
public struct CheckedPair: Sendable, Equatable {
    public let encoder: CompatibilityCandidate
    public let backend: CompatibilityCandidate
    /// The codebook both share: the identity recomputed from the encoder's tensor (once, when its
    /// bundle was opened), which the pipeline compares the loaded models with instead of hashing again.
    public let codebook: CodebookIdentity

    init(encoder: CompatibilityCandidate, backend: CompatibilityCandidate, codebook: CodebookIdentity) {
        self.encoder = encoder
        self.backend = backend
        self.codebook = codebook
    }
}
