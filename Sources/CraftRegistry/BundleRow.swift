import Foundation

/// The JSON shape of one bundle version in `craft-registry --json` output and the registry server's
/// API (keys documented in docs/cli.md; encoded with snake_case keys).
public struct BundleRow: Encodable, Sendable {
    public var name: String
    public var version: String
    public var kind: String
    public var summary: String
    public var domains: [String]
    public var license: String
    public var runtime: IndexedVersion.Runtime
    public var codebook: IndexedVersion.Codebook
    public var digest: String
    public var size: Int64
    public var yanked: Bool
    public var prerelease: Bool
    public var signedBy: [String]
    public var file: String
    /// The configured registry it comes from when several are configured (``RegistryConfiguration``);
    /// absent otherwise.
    public var source: String?

    public init(_ bundle: ResolvedBundle) {
        let record = bundle.record
        name = bundle.name
        version = record.version
        kind = record.kind.rawValue
        summary = record.summary
        domains = record.domains
        license = record.license
        runtime = record.runtime
        codebook = record.codebook
        digest = record.digest
        size = record.size
        yanked = record.yanked
        prerelease = record.isPrerelease
        signedBy = record.signatures.map(\.keyID)
        file = bundle.location
        source = bundle.source
    }
}

/// The JSON shape of one version in a name's version list (`info`, and the server's API).
public struct VersionRow: Encodable, Sendable {
    public var version: String
    public var yanked: Bool
    public var prerelease: Bool
    public var digest: String
    public var size: Int64

    public init(_ record: IndexedVersion) {
        version = record.version
        yanked = record.yanked
        prerelease = record.isPrerelease
        digest = record.digest
        size = record.size
    }
}
