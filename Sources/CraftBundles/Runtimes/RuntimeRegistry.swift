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

/// Maps runtime ids (and runtime versions) to factories that turn an unpacked bundle into a live model.
///
/// Start from ``builtIn`` (the runtimes Craft ships) and ``register(_:versions:kind:summary:factory:)``
/// your own; then ``load(_:as:)`` builds a model from an ``UnpackedBundle`` with the factory matching
/// its `runtime.id` and `runtime.version`. A bundle whose runtime is unknown is a ``BundleError`` with
/// code ``BundleError/Code/unknownRuntime`` naming it and listing the known ones.
///
/// Factories are generic over what they build: built-in runtimes build `TableEncoder`/`TableBackend`
/// today; model runtimes (SigLIP, Llama, GPT-2) build `VisionEncoder`/`LanguageBackend` values.
///
/// ```swift
/// var runtimes = RuntimeRegistry.builtIn
/// runtimes.register("my-encoder", versions: try VersionRange("^1.0"), kind: .encoder) { bundle in
///     try MyEncoder(directory: bundle.directory)
/// }
/// let encoder = try runtimes.load(unpacked, as: MyEncoder.self)
/// ```
public struct RuntimeRegistry: Sendable, RuntimeAvailability {
    /// One registration: descriptor plus a type-erased factory.
    struct Registration: Sendable {
        var descriptor: RuntimeDescriptor
        var modelType: String
        var factory: @Sendable (UnpackedBundle) throws -> Any
    }

    private var registrations: [Registration] = []

    /// An empty registry.
    public init() {}

    /// A registry holding the runtimes built into Craft (`table-encoder`, `table-backend`).
    public static var builtIn: RuntimeRegistry {
        var registry = RuntimeRegistry()
        TableRuntime.registerBuiltIns(in: &registry)
        return registry
    }

    /// Registers a factory for runtime `id` at the runtime versions in `versions`.
    ///
    /// A later registration for an overlapping id and version wins, so an application can replace a
    /// built-in runtime.
    /// - Parameters:
    ///   - id: The runtime id, `[a-z0-9][a-z0-9._-]{0,63}`.
    ///   - versions: The `runtime.version`s accepted; default every release.
    ///   - kind: Whether the runtime loads encoder or backend bundles.
    ///   - summary: One line for listings.
    ///   - factory: Builds the live model from an unpacked bundle; throw ``BundleError`` on bad content.
    public mutating func register<Model>(
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
            throw BundleError(.runtimeFailed, "runtime \(runtime.id) builds \(registration.modelType) from \(bundle.manifest.reference), not \(Model.self); load it as \(registration.modelType)")
        }
        return model
    }

    /// Builds a vision encoder from an unpacked encoder bundle (a runtime registered for encoders
    /// whose factory returns a `VisionEncoder`).
    public func loadEncoder(_ bundle: UnpackedBundle) throws -> any VisionEncoder {
        try load(bundle, as: (any VisionEncoder).self)
    }

    /// Builds a language backend from an unpacked backend bundle (a runtime registered for backends
    /// whose factory returns a `LanguageBackend`).
    public func loadBackend(_ bundle: UnpackedBundle) throws -> any LanguageBackend {
        try load(bundle, as: (any LanguageBackend).self)
    }

    /// The error for a bundle whose runtime is not registered.
    public func unknownRuntimeError(for manifest: BundleManifest) -> BundleError {
        let runtime = manifest.runtime
        let known = knownRuntimes.map(\.description)
        let sameID = registrations.filter { $0.descriptor.id == runtime.id }
        let detail = sameID.isEmpty
            ? "no runtime \"\(runtime.id)\" is registered"
            : "runtime \"\(runtime.id)\" is registered only for \(sameID.map { "\($0.descriptor.versions) (\($0.descriptor.kind.rawValue))" }.joined(separator: ", "))"
        return BundleError(.unknownRuntime, "\(manifest.reference) needs runtime \(runtime.id)@\(runtime.version) for a\(manifest.kind == .encoder ? "n" : "") \(manifest.kind.rawValue), but \(detail); known runtimes: \(known.isEmpty ? "none" : known.joined(separator: ", ")); register it (see examples/custom-runtime) or update Craft", entry: "runtime.id")
    }

    private func registration(_ id: String, version: SemanticVersion, kind: BundleKind?) -> Registration? {
        registrations.last { registration in
            registration.descriptor.id == id && (kind == nil || registration.descriptor.kind == kind)
                && registration.descriptor.versions.contains(version, includePrerelease: true)
        }
    }

    // MARK: RuntimeAvailability

    public func isRegistered(runtime id: String, version: String, role: PairingRole) -> Bool {
        guard let parsed = SemanticVersion(version) else { return false }
        return contains(id, version: parsed, kind: role == .encoder ? .encoder : .backend)
    }

    public var registeredRuntimeDescriptions: [String] { knownRuntimes.map(\.description) }
}
