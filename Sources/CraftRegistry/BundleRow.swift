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
    /// `null` otherwise.
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

    public func encode(to encoder: any Encoder) throws {
        enum Key: String, CodingKey {
            case name, version, kind, summary, domains, license, runtime, codebook, digest, size, yanked, prerelease, signedBy, file, source
        }
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(name, forKey: .name)
        try container.encode(version, forKey: .version)
        try container.encode(kind, forKey: .kind)
        try container.encode(summary, forKey: .summary)
        try container.encode(domains, forKey: .domains)
        try container.encode(license, forKey: .license)
        try container.encode(runtime, forKey: .runtime)
        try container.encode(codebook, forKey: .codebook)
        try container.encode(digest, forKey: .digest)
        try container.encode(size, forKey: .size)
        try container.encode(yanked, forKey: .yanked)
        try container.encode(prerelease, forKey: .prerelease)
        try container.encode(signedBy, forKey: .signedBy)
        try container.encode(file, forKey: .file)
        try container.encode(source, forKey: .source)  // always present: null for a single registry
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
