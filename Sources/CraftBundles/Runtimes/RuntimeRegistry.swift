// Runtimes: the plugin mechanism that turns an unpacked bundle into a live model (docs/runtimes.md).
// Keyed by id like mlx-swift-lm's ModelTypeRegistry, with version ranges and `contains(_:)`.
import CraftCore
import Foundation

/// A registered runtime: the id bundles name, the runtime versions it accepts, and what it builds.
public struct RuntimeDescriptor: Sendable, Equatable, CustomStringConvertible {
    /// The id bundles name in `runtime.id`.
    public var id: String
    /// The `runtime.version`s this registration loads.
    public var versions: VersionRange
    /// Whether it builds encoders or backends.
    public var kind: BundleKind
    /// One line about it.
    public var summary: String

    public var description: String { "\(id) \(versions) (\(kind.rawValue))" }
}

/// Finds runtimes that are not registered in a ``RuntimeRegistry``, by id: Craft's out-of-process
/// plugins (CraftPlugins, docs/runtime-protocol.md) resolve an id to an installed executable.
///
/// Resolving must not start anything: the compatibility checker asks before any plugin runs.
public protocol RuntimeResolver: Sendable {
    /// A factory building a model of `kind` for bundles naming runtime `id`, or `nil` when the
    /// resolver knows no such runtime. The factory may start a process; it throws ``BundleError``.
    func factory(for id: String, kind: BundleKind) -> (@Sendable (UnpackedBundle) throws -> Any)?
    /// One line naming where a resolved runtime comes from (for listings and messages).
    func summary(for id: String) -> String?
}

/// Maps runtime ids (and runtime versions) to factories that turn an unpacked bundle into a live
/// ``VisionEncoder`` or ``LanguageBackend``: the plugin seam of Craft (docs/runtimes.md).
///
/// Start from `RuntimeRegistry.craftDefault` (CraftRuntimes: every runtime Craft ships) and add your
/// own with ``registerEncoder(_:versions:summary:factory:)`` or
/// ``registerBackend(_:versions:summary:factory:)``; a later registration for the same id and version
/// wins, so an application can replace a shipped runtime. ``loadEncoder(_:)`` and ``loadBackend(_:)``
/// build a model with the factory matching the bundle's `runtime.id` and `runtime.version`; a bundle
/// whose runtime is unknown is a ``BundleError`` `unknownRuntime` naming it and listing the known ones.
///
/// ```swift
/// var runtimes = RuntimeRegistry.craftDefault
/// runtimes.registerBackend("caption-backend", versions: try VersionRange("^1.0")) { bundle in
///     try CaptionBackend(bundle: bundle)          // any LanguageBackend
/// }
/// let backend = try runtimes.loadBackend(unpacked)
/// ```
public struct RuntimeRegistry: Sendable, RuntimeAvailability {
    /// One registration: descriptor plus a type-erased factory.
    struct Registration: Sendable {
        var descriptor: RuntimeDescriptor
        var modelType: String
        var factory: @Sendable (UnpackedBundle) throws -> Any
    }

    private var registrations: [Registration] = []

    /// Consulted for a runtime id no registration has (out-of-process plugins); `nil` by default.
    /// Registered runtimes always win over resolved ones.
    public var resolver: (any RuntimeResolver)?

    /// An empty registry.
    public init() {}

    /// The table runtimes (`table-encoder`, `table-backend`) alone; `RuntimeRegistry.craftDefault`
    /// (CraftRuntimes) holds them with the model runtimes, and is what every command uses.
    package static var tables: RuntimeRegistry {
        var registry = RuntimeRegistry()
        TableRuntime.registerBuiltIns(in: &registry)
        return registry
    }

    /// Registers a vision encoder runtime: bundles of kind `encoder` naming `id` at a version in
    /// `versions` are loaded by `factory`.
    ///
    /// - Parameters:
    ///   - id: The runtime id, `[a-z0-9][a-z0-9._-]{0,63}`.
    ///   - versions: The `runtime.version`s accepted; default every release.
    ///   - summary: One line for listings.
    ///   - factory: Builds the encoder from an unpacked, verified bundle; throw ``BundleError`` on bad content.
    public mutating func registerEncoder(
        _ id: String, versions: VersionRange = .any, summary: String = "",
        factory: @escaping @Sendable (UnpackedBundle) throws -> any VisionEncoder
    ) {
        register(id, versions: versions, kind: .encoder, summary: summary, factory: factory)
    }

    /// Registers a language backend runtime: bundles of kind `backend` naming `id` at a version in
    /// `versions` are loaded by `factory`. A backend that also implements ``SurrogateBackend`` can
    /// serve as the training surrogate of `craft train`.
    public mutating func registerBackend(
        _ id: String, versions: VersionRange = .any, summary: String = "",
        factory: @escaping @Sendable (UnpackedBundle) throws -> any LanguageBackend
    ) {
        register(id, versions: versions, kind: .backend, summary: summary, factory: factory)
    }

    /// Registers a factory building any type: what the typed methods above call (and tests of the
    /// registry itself); applications register encoders and backends through the typed methods.
    package mutating func register<Model>(
        _ id: String, versions: VersionRange = .any, kind: BundleKind, summary: String = "",
        factory: @escaping @Sendable (UnpackedBundle) throws -> Model
    ) {
        let descriptor = RuntimeDescriptor(id: id, versions: versions, kind: kind, summary: summary)
        registrations.append(Registration(descriptor: descriptor, modelType: String(describing: Model.self), factory: { try factory($0) }))
    }

    /// Whether any runtime is registered under `id`.
    public func contains(_ id: String) -> Bool {
        registrations.contains { $0.descriptor.id == id }
    }

    /// Whether a runtime registered under `id` accepts `version` (and builds `kind`, when given).
    public func contains(_ id: String, version: SemanticVersion, kind: BundleKind? = nil) -> Bool {
        registration(id, version: version, kind: kind) != nil
    }

    /// Every registration, in registration order.
    public var knownRuntimes: [RuntimeDescriptor] { registrations.map(\.descriptor) }

    /// Builds a model from an unpacked bundle with the runtime its manifest names.
    ///
    /// - Throws: ``BundleError`` `unknownRuntime` naming the runtime and listing the known ones;
    ///   `runtimeFailed` when the runtime builds something other than `Model`; or what the factory throws.
    public func load<Model>(_ bundle: UnpackedBundle, as type: Model.Type = Model.self) throws -> Model {
        let runtime = bundle.manifest.runtime
        guard let registration = registration(runtime.id, version: runtime.version, kind: bundle.manifest.kind) else {
            throw unknownRuntimeError(for: bundle.manifest)
        }
        let built: Any
        do {
            built = try registration.factory(bundle)
        } catch let error as BundleError {
            throw error
        } catch {
            let reason = (error as? LocalizedError)?.errorDescription ?? String(describing: error)
            throw BundleError(.runtimeFailed, "runtime \(runtime.id)@\(runtime.version) could not load \(bundle.manifest.reference): \(reason)", cause: error)
        }
        guard let model = built as? Model else {
            throw BundleError(.runtimeFailed, "runtime \(runtime.id) does not make the kind of model this needs from \(bundle.manifest.reference) (a \(bundle.manifest.kind.rawValue) bundle); use it where a \(bundle.manifest.kind.rawValue) is expected")
        }
        return model
    }

    /// Builds a vision encoder from an unpacked encoder bundle with the runtime its manifest names.
    public func loadEncoder(_ bundle: UnpackedBundle) throws -> any VisionEncoder {
        try load(bundle, as: (any VisionEncoder).self)
    }

    /// Builds a language backend from an unpacked backend bundle with the runtime its manifest names.
    public func loadBackend(_ bundle: UnpackedBundle) throws -> any LanguageBackend {
        try load(bundle, as: (any LanguageBackend).self)
    }

    /// Builds a backend that can serve as the training surrogate (``SurrogateBackend``).
    ///
    /// - Throws: ``BundleError`` `runtimeFailed` when the bundle's runtime builds a backend that gives
    ///   no differentiable logits (it can answer prompts, not train encoders).
    public func loadSurrogate(_ bundle: UnpackedBundle) throws -> any SurrogateBackend {
        let backend = try loadBackend(bundle)
        guard let surrogate = backend as? any SurrogateBackend else {
            let runtime = bundle.manifest.runtime
            throw BundleError(.runtimeFailed, "\(bundle.manifest.reference)'s runtime \(runtime.id)@\(runtime.version) answers prompts but gives no differentiable logits, so it cannot be the training surrogate; use a backend of a model runtime (llama, gpt2) that shares the codebook")
        }
        return surrogate
    }

    /// The error for a bundle whose runtime is not registered.
    public func unknownRuntimeError(for manifest: BundleManifest) -> BundleError {
        let runtime = manifest.runtime
        let known = knownRuntimes.map(\.description)
        let sameID = registrations.filter { $0.descriptor.id == runtime.id }
        let detail = sameID.isEmpty
            ? "no runtime \"\(runtime.id)\" is registered"
            : "runtime \"\(runtime.id)\" is registered only for \(sameID.map { "\($0.descriptor.versions) (\($0.descriptor.kind.rawValue))" }.joined(separator: ", "))"
        return BundleError(.unknownRuntime, "\(manifest.reference) needs runtime \(runtime.id)@\(runtime.version) for a\(manifest.kind == .encoder ? "n" : "") \(manifest.kind.rawValue), but \(detail); known runtimes: \(known.isEmpty ? "none" : known.joined(separator: ", ")); install a runtime plugin named craft-runtime-\(runtime.id) on $CRAFT_RUNTIME_PATH, ~/.craft/runtimes or $PATH (docs/runtime-protocol.md), register it in Swift (examples/custom-runtime), or update Craft", entry: "runtime.id")
    }

    private func registration(_ id: String, version: SemanticVersion, kind: BundleKind?) -> Registration? {
        let registered = registrations.last { registration in
            registration.descriptor.id == id && (kind == nil || registration.descriptor.kind == kind)
                && registration.descriptor.versions.contains(version, includePrerelease: true)
        }
        if let registered { return registered }
        // A runtime no registration knows: an out-of-process plugin, when the resolver finds one.
        guard !contains(id), let resolver else { return nil }
        for candidate in kind.map({ [$0] }) ?? [.encoder, .backend] {
            if let factory = resolver.factory(for: id, kind: candidate) {
                let descriptor = RuntimeDescriptor(id: id, versions: .any, kind: candidate, summary: resolver.summary(for: id) ?? "plugin")
                return Registration(descriptor: descriptor, modelType: candidate == .encoder ? "VisionEncoder" : "LanguageBackend", factory: factory)
            }
        }
        return nil
    }

    // MARK: RuntimeAvailability

    public func isRegistered(runtime id: String, version: String, role: PairingRole) -> Bool {
        guard let parsed = SemanticVersion(version) else { return false }
        return contains(id, version: parsed, kind: role == .encoder ? .encoder : .backend)
    }

    public var registeredRuntimeDescriptions: [String] { knownRuntimes.map(\.description) }
}
