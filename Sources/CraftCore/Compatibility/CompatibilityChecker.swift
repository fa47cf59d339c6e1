// Checks that an encoder and a backend can be paired (docs/compatibility.md).

/// Decides whether an encoder and a language backend can be wired together.
///
/// The checker never trusts a declared codebook hash: the encoder's identity is the hash recomputed
/// from its codebook tensor (see ``RecomputedHash``), and the backend's declared hash must equal it.
/// Every check runs (a failure does not hide the others), in a fixed order, with a stable code.
///
/// ```swift
/// let report = CompatibilityChecker(runtimes: registry).check(encoder: encoderCandidate, backend: backendCandidate)
/// print(report.renderText())
/// let pair = try report.requirePairing()   // throws (exit code 3) when incompatible
/// ```
public struct CompatibilityChecker: Sendable {
    public var runtimes: any RuntimeAvailability
    /// The Craft version reported (requirements are evaluated when candidates are built).
    public var craftVersion: String

    public init(runtimes: any RuntimeAvailability, craftVersion: String = CraftVersion.current) {
        self.runtimes = runtimes
        self.craftVersion = craftVersion
    }

    /// Runs every check on the pair.
    public func check(encoder: CompatibilityCandidate, backend: CompatibilityCandidate) -> CompatibilityReport {
        var checks: [CompatibilityCheck] = []
        let e = encoder.reference, b = backend.reference

        for (candidate, side) in [(encoder, CheckSubject.encoder), (backend, .backend)] {
            if candidate.manifestProblems.isEmpty {
                checks.append(.init(code: .manifestValid, subject: side, passed: true, reason: "craft.json of \(candidate.reference) is valid"))
            } else {
                checks.append(.init(code: .manifestValid, subject: side, passed: false,
                    reason: "craft.json of \(candidate.reference) is invalid: \(candidate.manifestProblems.joined(separator: "; "))", wrongSide: side))
            }
        }
        for (candidate, side, wanted) in [(encoder, CheckSubject.encoder, PairingRole.encoder), (backend, .backend, .backend)] {
            let passed = candidate.declaredRole == wanted
            checks.append(.init(code: .bundleKind, subject: side, passed: passed,
                reason: passed ? "\(candidate.reference) is a\(wanted == .encoder ? "n" : "") \(wanted.rawValue) bundle"
                    : "\(candidate.reference) is a\(candidate.declaredRole == .encoder ? "n" : "") \(candidate.declaredRole.rawValue) bundle but is used as the \(wanted.rawValue); swap the arguments or pick a\(wanted == .encoder ? "n" : "") \(wanted.rawValue)",
                wrongSide: side))
        }

        // The encoder's identity: recomputed from its tensor, never taken on trust.
        let declared = encoder.declaredCodebook.hash
        switch encoder.recomputedCodebook {
        case .recomputed(let identity) where identity.hash == declared:
            checks.append(.init(code: .codebookHashRecomputed, subject: .encoder, passed: true,
                reason: "the codebook tensor of \(e) hashes to its declared \(declared)"))
        case .recomputed(let identity):
            checks.append(.init(code: .codebookHashRecomputed, subject: .encoder, passed: false,
                reason: "\(e) declares codebook hash \(declared) but its codebook tensor hashes to \(identity.hash); the encoder bundle is wrong (tampered with or mislabelled)",
                wrongSide: .encoder))
        case .failed(let why):
            checks.append(.init(code: .codebookHashRecomputed, subject: .encoder, passed: false,
                reason: "the codebook hash of \(e) could not be recomputed: \(why)", wrongSide: .encoder))
        case .notRecomputed:
            checks.append(.init(code: .codebookHashRecomputed, subject: .encoder, passed: false,
                reason: "the codebook hash of \(e) was not recomputed from its tensor, so its declared \(declared) is unproven; check the unpacked or verified bundle, not only its manifest",
                wrongSide: .encoder))
        }

        let encoderCodebook = encoder.effectiveCodebook
        let backendHash = backend.declaredCodebook.hash
        if backendHash == encoderCodebook.hash {
            checks.append(.init(code: .codebookHashMatch, subject: .pair, passed: true,
                reason: "\(b) reads codebook \(backendHash), which \(e) emits"))
        } else if backendHash == declared {
            checks.append(.init(code: .codebookHashMatch, subject: .pair, passed: false,
                reason: "\(b) reads codebook \(backendHash), which \(e) declares, but \(e)'s codebook tensor hashes to \(encoderCodebook.hash); the encoder side is wrong: its tensor is not the codebook it claims",
                wrongSide: .encoder))
        } else {
            checks.append(.init(code: .codebookHashMatch, subject: .pair, passed: false,
                reason: "\(e) emits codebook \(encoderCodebook.hash) but \(b) reads codebook \(backendHash); the backend side is wrong for this encoder: choose a backend trained on \(encoderCodebook.hash) (or an encoder for \(backendHash))",
                wrongSide: .backend))
        }

        let backendCodebook = backend.declaredCodebook
        let sameShape = encoderCodebook.entries == backendCodebook.entries && encoderCodebook.dimension == backendCodebook.dimension
            && encoderCodebook.depth == backendCodebook.depth
        checks.append(.init(code: .codebookShape, subject: .pair, passed: sameShape,
            reason: sameShape ? "both codebooks are depth×K×D = \(encoderCodebook.depth)×\(encoderCodebook.entries)×\(encoderCodebook.dimension)"
                : "\(e) has a depth×K×D = \(encoderCodebook.depth)×\(encoderCodebook.entries)×\(encoderCodebook.dimension) codebook but \(b) reads \(backendCodebook.depth)×\(backendCodebook.entries)×\(backendCodebook.dimension)",
            wrongSide: .backend))
        let sameMetric = encoderCodebook.metric == backendCodebook.metric
        checks.append(.init(code: .codebookMetric, subject: .pair, passed: sameMetric,
            reason: sameMetric ? "both search the codebook with the \(encoderCodebook.metric.rawValue) metric"
                : "\(e) quantizes with the \(encoderCodebook.metric.rawValue) metric but \(b) expects \(backendCodebook.metric.rawValue)",
            wrongSide: .backend))

        for (candidate, side, role) in [(encoder, CheckSubject.encoder, PairingRole.encoder), (backend, .backend, .backend)] {
            let registered = runtimes.isRegistered(runtime: candidate.runtimeID, version: candidate.runtimeVersion, role: role)
            let known = runtimes.registeredRuntimeDescriptions
            checks.append(.init(code: .runtimeRegistered, subject: side, passed: registered,
                reason: registered ? "runtime \(candidate.runtimeID)@\(candidate.runtimeVersion) of \(candidate.reference) is registered"
                    : "\(candidate.reference) needs runtime \(candidate.runtimeID)@\(candidate.runtimeVersion) as \(role.rawValue), which is not registered (known: \(known.isEmpty ? "none" : known.joined(separator: ", "))); register it or update Craft",
                wrongSide: side))
        }

        switch (encoder.tokensPerImage, backend.contextLength) {
        case let (tokens?, context?) where tokens <= context:
            checks.append(.init(code: .contextFits, subject: .pair, passed: true,
                reason: "\(tokens) tokens per image fit the \(context)-token context of \(b) (\(context - tokens) left for text)"))
        case let (tokens?, context?):
            checks.append(.init(code: .contextFits, subject: .pair, passed: false,
                reason: "\(e) emits \(tokens) tokens per image but \(b) has a context of only \(context) tokens; pick a backend with a longer context (or enable token pruning in the encoder)",
                wrongSide: .backend))
        case (nil, _):
            checks.append(.init(code: .contextFits, subject: .pair, passed: false,
                reason: "\(e) does not declare tokens per image (encoder.tokens_per_image)", wrongSide: .encoder))
        case (_, nil):
            checks.append(.init(code: .contextFits, subject: .pair, passed: false,
                reason: "\(b) does not declare a context length (backend.context_length)", wrongSide: .backend))
        }

        for (candidate, side) in [(encoder, CheckSubject.encoder), (backend, .backend)] {
            if let requirement = candidate.craftRequirement {
                checks.append(.init(code: .craftVersion, subject: side, passed: requirement.admitsCurrentVersion,
                    reason: requirement.admitsCurrentVersion ? "\(candidate.reference) requires Craft \(requirement.range), which admits \(craftVersion)"
                        : "\(candidate.reference) requires Craft \(requirement.range) but this is Craft \(craftVersion); use a matching Craft or another version of the bundle",
                    wrongSide: side))
            } else {
                checks.append(.init(code: .craftVersion, subject: side, passed: true,
                    reason: "\(candidate.reference) states no Craft version requirement"))
            }
        }
        return CompatibilityReport(encoder: encoder, backend: backend, checks: checks, craftVersion: craftVersion)
    }
}
