// The manifest-independent view of one bundle that the compatibility checker reads (docs/compatibility.md).

/// Which side of a pairing a bundle is on.
public enum PairingRole: String, Sendable, Codable, CaseIterable {
    case encoder
    case backend
}

/// What is known about the hash of a candidate's codebook tensor.
public enum RecomputedHash: Sendable, Equatable {
    /// The hash was recomputed from the bundle's codebook tensor.
    case recomputed(CodebookIdentity)
    /// Recomputing failed (missing tensor, wrong shape, NaN...): the reason.
    case failed(String)
    /// Not recomputed (backends carry no codebook tensor; or the caller only had a manifest).
    case notRecomputed
}

/// What a Craft version requirement says about this build.
public struct CraftRequirement: Sendable, Equatable {
    /// The range as written (`>=0.1 <1.0`).
    public var range: String
    /// Whether the range admits ``CraftVersion/current``.
    public var admitsCurrentVersion: Bool

    public init(range: String, admitsCurrentVersion: Bool) {
        self.range = range
        self.admitsCurrentVersion = admitsCurrentVersion
    }
}

/// One bundle as the compatibility checker sees it, built by the packaging side from a manifest and
/// (for encoders) the hash recomputed from the codebook tensor.
///
/// `CraftCore` does not know the manifest format; `CraftBundles` builds candidates from bundles.
public struct CompatibilityCandidate: Sendable, Equatable {
    public var name: String
    /// The bundle version, as text.
    public var version: String
    /// What the bundle says it is (`encoder` or `backend`).
    public var declaredRole: PairingRole
    /// The codebook the manifest declares.
    public var declaredCodebook: CodebookIdentity
    /// The codebook hash recomputed from the bundle's tensor.
    public var recomputedCodebook: RecomputedHash
    /// The runtime id and version the bundle names.
    public var runtimeID: String
    public var runtimeVersion: String
    /// Visual tokens per image (encoders).
    public var tokensPerImage: Int?
    /// Context length in tokens (backends).
    public var contextLength: Int?
    /// The Craft versions the bundle needs, evaluated against this build (nil: no requirement).
    public var craftRequirement: CraftRequirement?
    /// Problems found when validating the manifest (empty: valid), each `field: reason`.
    public var manifestProblems: [String]

    public init(
        name: String, version: String, declaredRole: PairingRole, declaredCodebook: CodebookIdentity,
        recomputedCodebook: RecomputedHash, runtimeID: String, runtimeVersion: String, tokensPerImage: Int? = nil,
        contextLength: Int? = nil, craftRequirement: CraftRequirement? = nil, manifestProblems: [String] = []
    ) {
        self.name = name
        self.version = version
        self.declaredRole = declaredRole
        self.declaredCodebook = declaredCodebook
        self.recomputedCodebook = recomputedCodebook
        self.runtimeID = runtimeID
        self.runtimeVersion = runtimeVersion
        self.tokensPerImage = tokensPerImage
        self.contextLength = contextLength
        self.craftRequirement = craftRequirement
        self.manifestProblems = manifestProblems
    }

    /// `NAME@VERSION`.
    public var reference: String { "\(name)@\(version)" }

    /// The codebook this bundle really has: the recomputed one when available, else the declared one.
    public var effectiveCodebook: CodebookIdentity {
        if case .recomputed(let identity) = recomputedCodebook { return identity }
        return declaredCodebook
    }
}

/// Answers whether a runtime can load a bundle; `CraftBundles`' `RuntimeRegistry` conforms.
public protocol RuntimeAvailability: Sendable {
    /// Whether a runtime registered for `role` accepts runtime `id` at `version`.
    func isRegistered(runtime id: String, version: String, role: PairingRole) -> Bool
    /// The registered runtimes, one line each (`table-encoder ^1.0 (encoder)`), for messages.
    var registeredRuntimeDescriptions: [String] { get }
}
