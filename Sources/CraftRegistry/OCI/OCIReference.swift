// `oci://HOST[:PORT]/REPOSITORY[:TAG|@sha256:DIGEST]`: where a bundle lives in an OCI distribution
// registry (docs/registry.md, "OCI registries").
import Foundation

/// A bundle's place in an OCI distribution registry.
public struct OCIReference: Sendable, Equatable, CustomStringConvertible {
    /// `HOST[:PORT]`.
    public var host: String
    /// The repository, `a/b/c` (lowercase path components).
    public var repository: String
    /// The tag, when the reference names one.
    public var tag: String?
    /// The manifest digest, when the reference pins one (`@sha256:…`).
    public var digest: String?

    /// The scheme prefix.
    public static let scheme = "oci://"

    /// Whether `text` is an `oci://` reference.
    public static func isOCI(_ text: String) -> Bool { text.lowercased().hasPrefix(scheme) }

    /// Parses `oci://HOST[:PORT]/REPOSITORY[:TAG|@sha256:DIGEST]`.
    ///
    /// - Throws: ``RegistryError`` `badReference` saying which part is malformed.
    public init(parsing text: String) throws {
        guard Self.isOCI(text) else {
            throw RegistryError(.badReference, "\"\(text)\" is not an OCI reference; write oci://HOST[:PORT]/REPOSITORY[:TAG]")
        }
        let rest = String(text.dropFirst(Self.scheme.count))
        guard let slash = rest.firstIndex(of: "/"), slash != rest.startIndex else {
            throw RegistryError(.badReference, "\"\(text)\" names no repository; write oci://HOST[:PORT]/REPOSITORY[:TAG]")
        }
        host = String(rest[..<slash])
        var path = String(rest[rest.index(after: slash)...])
        if let at = path.firstIndex(of: "@") {
            digest = String(path[path.index(after: at)...])
            path = String(path[..<at])
            guard IndexValidation.isValidDigest(digest ?? "") else {
                throw RegistryError(.badReference, "the digest in \"\(text)\" is not sha256: followed by 64 lowercase hex digits")
            }
        }
        if let colon = path.lastIndex(of: ":"), !path[colon...].contains("/") {
            tag = String(path[path.index(after: colon)...])
            path = String(path[..<colon])
        }
        repository = path
        let hostAllowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: ".-:[]"))
        guard !host.isEmpty, host.unicodeScalars.allSatisfy(hostAllowed.contains) else {
            throw RegistryError(.badReference, "the host \"\(host)\" in \"\(text)\" is not a host name with an optional port")
        }
        guard Self.isValidRepository(repository) else {
            throw RegistryError(.badReference, "the repository \"\(repository)\" in \"\(text)\" is not valid: lowercase letters, digits and . _ - between them, path components separated by /")
        }
        if let tag, !Self.isValidTag(tag) {
            throw RegistryError(.badReference, "the tag \"\(tag)\" in \"\(text)\" is not valid: up to 128 letters, digits, _ . -, not starting with . or -")
        }
    }

    public init(host: String, repository: String, tag: String?, digest: String? = nil) {
        self.host = host
        self.repository = repository
        self.tag = tag
        self.digest = digest
    }

    /// What the manifest is fetched by: the digest when pinned, else the tag (`latest` when none).
    public var manifestReference: String { digest ?? tag ?? "latest" }

    public var description: String {
        Self.scheme + host + "/" + repository + (tag.map { ":" + $0 } ?? "") + (digest.map { "@" + $0 } ?? "")
    }

    /// A tag for a bundle version: SemVer's `+` is not allowed in tags and becomes `_`.
    public static func tag(forVersion version: String) -> String {
        version.replacingOccurrences(of: "+", with: "_")
    }

    static func isValidRepository(_ text: String) -> Bool {
        guard !text.isEmpty, text.count <= 255 else { return false }
        return text.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { component in
            guard let first = component.first, let last = component.last, first.isASCII, last.isASCII,
                  first.isLetter || first.isNumber, last.isLetter || last.isNumber else { return false }
            return component.allSatisfy { ($0.isASCII && ($0.isLowercase || $0.isNumber)) || "._-".contains($0) }
        }
    }

    static func isValidTag(_ text: String) -> Bool {
        guard let first = text.first, text.count <= 128, first != ".", first != "-" else { return false }
        return text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) }
    }
}
