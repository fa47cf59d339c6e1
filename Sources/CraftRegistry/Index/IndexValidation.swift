import CraftBundles
import CraftCore
import Foundation

/// The rules every index field must satisfy before anything uses it (docs/registry.md, "Validation").
///
/// An index is input like any other: a hostile or damaged `registry.json` or shard must not steer a
/// path, a cache entry or a deletion. Each check names the field (`versions[0].digest`) and what the
/// value must look like; ``Registry`` turns the first problem into a ``RegistryError/Code/corruptIndex``
/// error naming the file.
enum IndexValidation {
    /// One problem: the field path and the rule it breaks.
    struct Problem: CustomStringConvertible {
        var field: String
        var reason: String
        var description: String { "\(field) \(reason)" }
    }

    /// `[a-z0-9][a-z0-9._-]{0,63}`: bundle names, runtime ids and domain tags.
    static func isValidName(_ text: String) -> Bool {
        BundleReference.isValidName(text)
    }

    /// `sha256:` followed by exactly 64 lowercase hex digits.
    static func isValidDigest(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count == 7 + 64, text.hasPrefix("sha256:") else { return false }
        return bytes.dropFirst(7).allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    /// A SemVer 2.0 version (whose grammar admits neither `/` nor `..` as a path component).
    static func isValidVersion(_ text: String) -> Bool {
        SemanticVersion(text) != nil && !text.contains("/")
    }

    /// Lower-case hex of a given length (key ids).
    static func isHex(_ text: String, count: Int) -> Bool {
        text.utf8.count == count && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    /// Base64 decoding to exactly `bytes` bytes.
    static func isBase64(_ text: String, bytes: Int) -> Bool {
        Data(base64Encoded: text)?.count == bytes
    }

    static let digestRule = "must be \"sha256:\" followed by 64 lowercase hex digits"
    static let nameRule = "must match [a-z0-9][a-z0-9._-]{0,63}"

    /// Problems in `registry.json`.
    static func problems(in index: RegistryIndex) -> [Problem] {
        var found: [Problem] = []
        if index.format != RegistryIndex.currentFormat {
            found.append(Problem(field: "format", reason: "is \"\(index.format)\" but this Craft reads \(RegistryIndex.currentFormat)"))
        }
        var seen: Set<String> = []
        for (position, name) in index.names.enumerated() {
            if !isValidName(name) {
                found.append(Problem(field: "names[\(position)]", reason: "is \"\(shown(name))\" but \(nameRule)"))
            } else if !seen.insert(name).inserted {
                found.append(Problem(field: "names[\(position)]", reason: "repeats \"\(name)\""))
            }
        }
        if index.shardLayout != RegistryIndex().shardLayout {
            found.append(Problem(field: "shard_layout", reason: "is \"\(shown(index.shardLayout))\" but format v1 defines \"\(RegistryIndex().shardLayout)\""))
        }
        return found
    }

    /// Problems in the shard of `name`.
    static func problems(in shard: IndexShard, name: String) -> [Problem] {
        var found: [Problem] = []
        if shard.format != IndexShard.currentFormat {
            found.append(Problem(field: "format", reason: "is \"\(shown(shard.format))\" but this Craft reads \(IndexShard.currentFormat)"))
        }
        if shard.name != name {
            found.append(Problem(field: "name", reason: "is \"\(shown(shard.name))\" but the shard's file is the one of \"\(name)\""))
        }
        var versions: Set<String> = []
        for (position, record) in shard.versions.enumerated() {
            let prefix = "versions[\(position)]"
            found += problems(in: record, name: name).map { Problem(field: "\(prefix).\($0.field)", reason: $0.reason) }
            if isValidVersion(record.version), !versions.insert(Registry.withoutBuildMetadata(record.version)).inserted {
                found.append(Problem(field: "\(prefix).version", reason: "repeats \(record.version) (or differs from another version only in build metadata)"))
            }
        }
        return found
    }

    /// Problems in one version record of `name`'s shard; field paths are relative to the record.
    static func problems(in record: IndexedVersion, name: String) -> [Problem] {
        var found: [Problem] = []
        func add(_ field: String, _ reason: String) { found.append(Problem(field: field, reason: reason)) }
        let versionIsValid = isValidVersion(record.version)
        if !versionIsValid { add("version", "is \"\(shown(record.version))\" but must be a SemVer 2.0 version") }
        if record.summary.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { add("summary", "must not be empty") }
        if record.summary.count > 500 { add("summary", "must be at most 500 characters") }
        for (position, domain) in record.domains.enumerated() where !isValidName(domain) {
            add("domains[\(position)]", "is \"\(shown(domain))\" but \(nameRule)")
        }
        if record.license.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { add("license", "must not be empty") }
        // Both are printed on terminals: a control character (an ANSI escape) is never text.
        if hasControlCharacter(record.summary) { add("summary", "holds a control character (\"\(shown(record.summary))\")") }
        if hasControlCharacter(record.license) { add("license", "holds a control character (\"\(shown(record.license))\")") }
        if !isValidName(record.runtime.id) { add("runtime.id", "is \"\(shown(record.runtime.id))\" but \(nameRule)") }
        if !isValidVersion(record.runtime.version) {
            add("runtime.version", "is \"\(shown(record.runtime.version))\" but must be a SemVer 2.0 version")
        }
        if !isValidDigest(record.codebook.hash) { add("codebook.hash", "is \"\(shown(record.codebook.hash))\" but \(digestRule)") }
        if record.codebook.entries <= 0 { add("codebook.entries", "must be a positive integer") }
        if record.codebook.dim <= 0 { add("codebook.dim", "must be a positive integer") }
        if record.codebook.depth <= 0 { add("codebook.depth", "must be a positive integer") }
        if CodebookMetric(rawValue: record.codebook.metric) == nil {
            add("codebook.metric", "is \"\(shown(record.codebook.metric))\" but must be one of \(CodebookMetric.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let digestIsValid = isValidDigest(record.digest)
        if !digestIsValid { add("digest", "is \"\(shown(record.digest))\" but \(digestRule)") }
        if record.size < 0 { add("size", "must not be negative") }
        if let problem = pathProblem(record.path, name: name, version: versionIsValid ? record.version : nil) {
            add("path", problem)
        }
        for (position, signature) in record.signatures.enumerated() {
            let prefix = "signatures[\(position)]"
            if signature.format != BundleSignature.currentFormat {
                add("\(prefix).format", "is \"\(shown(signature.format))\" but must be \(BundleSignature.currentFormat)")
            }
            if signature.algorithm != BundleSignature.ed25519 {
                add("\(prefix).algorithm", "is \"\(shown(signature.algorithm))\" but must be \(BundleSignature.ed25519)")
            }
            if !isHex(signature.keyID, count: 16) { add("\(prefix).key_id", "must be 16 lowercase hex digits") }
            if !isBase64(signature.publicKey, bytes: 32) { add("\(prefix).public_key", "must be 32 bytes of base64") }
            if !isBase64(signature.signature, bytes: 64) { add("\(prefix).signature", "must be 64 bytes of base64") }
            if !isValidDigest(signature.digest) {
                add("\(prefix).digest", "is \"\(shown(signature.digest))\" but \(digestRule)")
            } else if digestIsValid, signature.digest != record.digest {
                add("\(prefix).digest", "is \(signature.digest) but the record's digest is \(record.digest)")
            }
        }
        return found
    }

    /// Why `path` is not the bundle path of `name@version`: it must be exactly
    /// `bundles/NAME/NAME-VERSION.craft`, three components, none empty, `.` or `..`.
    static func pathProblem(_ path: String, name: String, version: String?) -> String? {
        let components = path.split(separator: "/", omittingEmptySubsequences: false)
        guard components.count == 3, components.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }),
              !path.hasPrefix("/"), !path.contains("\\"), !path.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F })
        else {
            return "is \"\(shown(path))\" but must be bundles/\(name)/\(name)-VERSION.craft"
        }
        if let version {
            let expected = Registry.bundlePath(name: name, version: version)
            if path != expected { return "is \"\(shown(path))\" but must be \"\(expected)\"" }
        }
        return nil
    }

    /// Whether `text` holds a C0 or C1 control character or DEL (tabs and newlines included: one line).
    static func hasControlCharacter(_ text: String) -> Bool {
        text.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F || (0x80...0x9F).contains($0.value) }
    }

    /// A value as it may appear in a one-line message: control characters escaped, at most 80 characters.
    static func shown(_ text: String) -> String {
        var result = ""
        for scalar in text.unicodeScalars.prefix(80) {
            if scalar.value < 0x20 || scalar.value == 0x7F || (0x80...0x9F).contains(scalar.value) {
                result += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
        return text.unicodeScalars.count > 80 ? result + "…" : result
    }
}
