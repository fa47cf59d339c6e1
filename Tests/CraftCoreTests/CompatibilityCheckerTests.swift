import Foundation
import Testing

@testable import CraftCore

/// The checker on manifest-independent candidates (the bundle side is tested in CraftBundlesTests).
@Suite("Compatibility checker")
struct CompatibilityCheckerTests {
    struct Runtimes: RuntimeAvailability {
        var known: [String: PairingRole] = ["vq-encoder": .encoder, "llama": .backend]
        func isRegistered(runtime id: String, version: String, role: PairingRole) -> Bool { known[id] == role && version.hasPrefix("1.") }
        var registeredRuntimeDescriptions: [String] { known.keys.sorted().map { "\($0) ^1.0 (\(known[$0]!.rawValue))" } }
    }

    static let hashA = "sha256:" + String(repeating: "a", count: 64)
    static let hashB = "sha256:" + String(repeating: "b", count: 64)

    func encoder(declared: String = hashA, recomputed: RecomputedHash? = nil, tokens: Int? = 196) -> CompatibilityCandidate {
        let identity = CodebookIdentity(hash: declared, entries: 1024, dimension: 64, depth: 1, metric: .l2)
        return CompatibilityCandidate(
            name: "enc", version: "1.0.0", declaredRole: .encoder, declaredCodebook: identity,
            recomputedCodebook: recomputed ?? .recomputed(identity), runtimeID: "vq-encoder", runtimeVersion: "1.0.0",
            tokensPerImage: tokens, craftRequirement: CraftRequirement(range: "^0.1", admitsCurrentVersion: true))
    }

    func backend(hash: String = hashA, entries: Int = 1024, metric: CodebookMetric = .l2, context: Int? = 2048, runtime: String = "llama") -> CompatibilityCandidate {
        CompatibilityCandidate(
            name: "dec", version: "2.0.0", declaredRole: .backend,
            declaredCodebook: CodebookIdentity(hash: hash, entries: entries, dimension: 64, depth: 1, metric: metric),
            recomputedCodebook: .notRecomputed, runtimeID: runtime, runtimeVersion: "1.3.0", contextLength: context)
    }

    func failedCodes(_ report: CompatibilityReport) -> [String] { report.failures.map(\.code.rawValue) }

    @Test("a compatible pair passes all 13 checks and carries a CheckedPair")
    func passing() throws {
        let report = CompatibilityChecker(runtimes: Runtimes()).check(encoder: encoder(), backend: backend())
        #expect(report.isCompatible)
        #expect(report.checks.count == 13)
        #expect(try report.requirePairing().codebook.hash == Self.hashA)
        #expect(report.renderText().hasSuffix("compatible: enc@1.0.0 can be paired with dec@2.0.0\n"))
    }

    @Test("an honest mismatch blames the backend and names both hashes")
    func honestMismatch() throws {
        let report = CompatibilityChecker(runtimes: Runtimes()).check(encoder: encoder(), backend: backend(hash: Self.hashB))
        #expect(failedCodes(report) == ["codebook.hash-match"])
        let check = try #require(report.failures.first)
        #expect(check.wrongSide == .backend)
        #expect(check.reason.contains(Self.hashA) && check.reason.contains(Self.hashB))
        #expect(check.reason.contains("enc@1.0.0") && check.reason.contains("dec@2.0.0"))
        #expect(report.pairing == nil)
        #expect(throws: CraftCoreError.self) { try report.requirePairing() }
    }

    @Test("a relabelled encoder is blamed even when the backend matches its label")
    func relabelledEncoder() throws {
        let real = CodebookIdentity(hash: Self.hashB, entries: 1024, dimension: 64, depth: 1, metric: .l2)
        let report = CompatibilityChecker(runtimes: Runtimes()).check(encoder: encoder(declared: Self.hashA, recomputed: .recomputed(real)), backend: backend(hash: Self.hashA))
        #expect(failedCodes(report) == ["encoder.codebook-hash.recomputed", "codebook.hash-match"])
        #expect(report.failures.allSatisfy { $0.wrongSide == .encoder })
    }

    @Test("an unproven or unreadable encoder hash fails the recomputation check")
    func unprovenHash() {
        let checker = CompatibilityChecker(runtimes: Runtimes())
        let unproven = checker.check(encoder: encoder(recomputed: .notRecomputed), backend: backend())
        #expect(failedCodes(unproven) == ["encoder.codebook-hash.recomputed"])
        let unreadable = checker.check(encoder: encoder(recomputed: .failed("tensor 'codebook' is missing")), backend: backend())
        #expect(unreadable.failures.first?.reason.contains("tensor 'codebook' is missing") == true)
    }

    @Test("shape, metric, runtime, context and version failures each have their code")
    func otherFailures() {
        let checker = CompatibilityChecker(runtimes: Runtimes())
        #expect(failedCodes(checker.check(encoder: encoder(), backend: backend(entries: 512))) == ["codebook.shape"])
        #expect(failedCodes(checker.check(encoder: encoder(), backend: backend(metric: .cosine))) == ["codebook.metric"])
        let unknown = checker.check(encoder: encoder(), backend: backend(runtime: "gpt2"))
        #expect(failedCodes(unknown) == ["runtime.registered"])
        #expect(unknown.failures.first?.reason.contains("llama ^1.0 (backend), vq-encoder ^1.0 (encoder)") == true)
        #expect(failedCodes(checker.check(encoder: encoder(tokens: 4096), backend: backend())) == ["context.fits"])
        #expect(failedCodes(checker.check(encoder: encoder(tokens: nil), backend: backend())) == ["context.fits"])
        var old = encoder()
        old.craftRequirement = CraftRequirement(range: "^2.0", admitsCurrentVersion: false)
        #expect(failedCodes(checker.check(encoder: old, backend: backend())) == ["craft.version"])
        var invalid = backend()
        invalid.manifestProblems = ["files[0].sha256: expected 64 lowercase hex digits"]
        let report = checker.check(encoder: encoder(), backend: invalid)
        #expect(failedCodes(report) == ["manifest.valid"])
        #expect(report.failures.first?.reason.contains("files[0].sha256") == true)
    }

    @Test("text rendering aligns the check column; JSON rendering is stable")
    func rendering() throws {
        let report = CompatibilityChecker(runtimes: Runtimes()).check(encoder: encoder(), backend: backend(hash: Self.hashB))
        let lines = report.renderText().split(separator: "\n")
        let checkLines = lines.filter { $0.hasPrefix("PASS") || $0.hasPrefix("FAIL") }
        #expect(checkLines.count == 13)
        // Every reason starts in the same column: right after the widest "code (subject)" label and two spaces.
        let width = report.checks.map { "\($0.code) (\($0.subject.rawValue))".count }.max() ?? 0
        for line in checkLines {
            let characters = Array(line)
            #expect(characters.count > 6 + width + 2)
            let label = String(characters[6..<(6 + width)]).trimmingCharacters(in: .whitespaces)
            #expect(label.hasSuffix(")"), "\(line)")
            #expect(characters[6 + width] == " " && characters[6 + width + 1] == " " && characters[6 + width + 2] != " ", "\(line)")
        }
        #expect(try report.renderJSON() == report.renderJSON())
        let object = try #require(try JSONSerialization.jsonObject(with: Data(report.renderJSON().utf8)) as? [String: Any])
        #expect(object["craft_version"] as? String == CraftVersion.current)
    }
}
