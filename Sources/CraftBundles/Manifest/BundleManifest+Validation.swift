// The rules of `craft.bundle/v1` that JSON decoding alone cannot check (docs/bundle-format.md).
import CraftCore
import Foundation

/// One problem found in a manifest: the field path and what is wrong with it.
public struct ManifestProblem: Sendable, Equatable, CustomStringConvertible {
    /// The field path in manifest notation, `files[2].sha256`.
    public var field: String
    /// What is wrong, with the expected form.
    public var reason: String
    public var description: String { "\(field): \(reason)" }
}

extension BundleManifest {
    /// Checks the manifest and throws on the first problem, naming the field.
    ///
    /// - Throws: ``BundleError`` with code ``BundleError/Code/invalidManifest`` and ``BundleError/entry``
    ///   set to the field path, for example `files[2].sha256: expected 64 lowercase hex digits`.
    public func validate() throws {
        if let problem = problems().first {
            throw BundleError(.invalidManifest, "craft.json of \(name): \(problem); fix the manifest (see docs/bundle-format.md)", entry: problem.field)
        }
    }

    /// Every problem in the manifest, in field order (empty when it is valid).
    public func problems() -> [ManifestProblem] {
        var found: [ManifestProblem] = []
        func add(_ field: String, _ reason: String) { found.append(ManifestProblem(field: field, reason: reason)) }

        if schema != Self.schemaIdentifier { add("schema", "expected \"\(Self.schemaIdentifier)\", found \"\(schema)\"") }
        if !Self.isValidName(name) { add("name", "expected [a-z0-9][a-z0-9._-]{0,63}, found \"\(name)\"") }
        if summary.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { add("summary", "must not be empty") }
        if summary.count > 500 { add("summary", "must be at most 500 characters") }
        for (index, domain) in domains.enumerated() where !Self.isValidName(domain) {
            add("domains[\(index)]", "expected a tag matching [a-z0-9][a-z0-9._-]{0,63}, found \"\(domain)\"")
        }
        if license.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { add("license", "must not be empty (use an SPDX identifier such as MIT or Apache-2.0)") }
        if !Self.isValidName(runtime.id) { add("runtime.id", "expected [a-z0-9][a-z0-9._-]{0,63}, found \"\(runtime.id)\"") }

        if !Self.isValidDigest(codebook.hash, prefixed: true) {
            add("codebook.hash", "expected \"sha256:\" followed by 64 lowercase hex digits")
        }
        if codebook.entries <= 0 { add("codebook.entries", "must be a positive integer") }
        if codebook.dimension <= 0 { add("codebook.dim", "must be a positive integer") }
        if codebook.depth <= 0 { add("codebook.depth", "must be a positive integer") }

        // Linear in the total path length: each path is looked up with its parent directories, and the
        // parent directories of the paths seen so far are kept in a set.
        var seen: [String: Int] = [:]
        var parents: Set<Substring> = []
        for (index, file) in files.enumerated() {
            let ancestors = file.path.indices.filter { file.path[$0] == "/" }.map { file.path[..<$0] }
            if let reason = BundlePath.problem(with: file.path) {
                add("files[\(index)].path", reason)
            } else if file.path == Self.fileName {
                add("files[\(index)].path", "craft.json is the manifest itself and must not be listed")
            } else if let first = seen[file.path] {
                add("files[\(index)].path", "\"\(file.path)\" is already listed at files[\(first)]")
            } else if parents.contains(Substring(file.path)) || ancestors.contains(where: { seen[String($0)] != nil }) {
                add("files[\(index)].path", "\"\(file.path)\" is both a file and a directory of another listed file")
            }
            seen[file.path] = seen[file.path] ?? index
            parents.formUnion(ancestors)
            if file.size < 0 { add("files[\(index)].size", "must not be negative") }
            if !Self.isValidDigest(file.sha256, prefixed: false) { add("files[\(index)].sha256", "expected 64 lowercase hex digits") }
        }
        func checkListed(_ path: String, field: String) {
            if seen[path] == nil { add(field, "\"\(path)\" is not listed in files") }
        }

        switch kind {
        case .encoder:
            if let tensor = codebook.tensor {
                checkListed(tensor.file, field: "codebook.tensor.file")
                if tensor.name.isEmpty { add("codebook.tensor.name", "must not be empty") }
            } else {
                add("codebook.tensor", "an encoder must name its codebook tensor ({\"file\": ..., \"name\": ...})")
            }
            if let specifics = encoder {
                if specifics.imageSize <= 0 { add("encoder.image_size", "must be a positive integer") }
                if specifics.tokensPerImage <= 0 { add("encoder.tokens_per_image", "must be a positive integer") }
                if let mean = specifics.mean, mean.isEmpty || !mean.allSatisfy(\.isFinite) {
                    add("encoder.mean", "expected one finite number per channel")
                }
                if let std = specifics.std, std.isEmpty || !std.allSatisfy({ $0.isFinite && $0 > 0 }) {
                    add("encoder.std", "expected one positive number per channel")
                }
                if let mean = specifics.mean, let std = specifics.std, mean.count != std.count {
                    add("encoder.std", "has \(std.count) channels but encoder.mean has \(mean.count)")
                }
                if let layer = specifics.quantizationLayer, layer < 0 { add("encoder.quantization_layer", "must not be negative") }
            } else {
                add("encoder", "an encoder bundle needs an encoder section (image_size, tokens_per_image, ...)")
            }
            if backend != nil { add("backend", "an encoder bundle must not have a backend section") }
        case .backend:
            if let specifics = backend {
                if specifics.contextLength <= 0 { add("backend.context_length", "must be a positive integer") }
                if let tokenizer = specifics.tokenizer { checkListed(tokenizer, field: "backend.tokenizer") }
                if let projector = specifics.projector {
                    checkListed(projector.file, field: "backend.projector.file")
                    if projector.name.isEmpty { add("backend.projector.name", "must not be empty") }
                }
            } else {
                add("backend", "a backend bundle needs a backend section (context_length, ...)")
            }
            if encoder != nil { add("encoder", "a backend bundle must not have an encoder section") }
            if let tensor = codebook.tensor { checkListed(tensor.file, field: "codebook.tensor.file") }
        }
        if let config, config.objectValue == nil { add("config", "expected a JSON object") }
        if let provenance, provenance.objectValue == nil { add("provenance", "expected a JSON object") }
        return found
    }

    /// `[a-z0-9][a-z0-9._-]{0,63}`: bundle names, runtime ids and domain tags.
    public static func isValidName(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard (1...64).contains(bytes.count) else { return false }
        func isLowerAlnum(_ b: UInt8) -> Bool { (0x61...0x7A).contains(b) || (0x30...0x39).contains(b) }
        guard isLowerAlnum(bytes[0]) else { return false }
        return bytes.dropFirst().allSatisfy { isLowerAlnum($0) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D }
    }

    static func isValidDigest(_ text: String, prefixed: Bool) -> Bool {
        var hex = Substring(text)
        if prefixed {
            guard hex.hasPrefix("sha256:") else { return false }
            hex = hex.dropFirst(7)
        }
        return hex.utf8.count == 64 && hex.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }
}

/// The rules for paths inside a bundle, shared by the manifest and the archive reader.
package enum BundlePath {
    /// Longest path accepted regardless of limits (tar's pax headers allow more; we do not).
    static let hardMaximumLength = 1024

    /// Why `path` is not an acceptable bundle path, or `nil` when it is.
    package static func problem(with path: String) -> String? {
        if path.isEmpty { return "path must not be empty" }
        if path.utf8.count > hardMaximumLength { return "path is longer than \(hardMaximumLength) bytes" }
        if path.hasPrefix("/") { return "\"\(path)\" is absolute; bundle paths are relative" }
        if path.hasSuffix("/") { return "\"\(path)\" ends with '/'; list files, not directories" }
        for component in path.split(separator: "/", omittingEmptySubsequences: false) {
            if component.isEmpty { return "\"\(path)\" has an empty component ('//')" }
            if component == "." || component == ".." { return "\"\(path)\" contains '\(component)'" }
            let allowed = component.utf8.allSatisfy { b in
                (0x61...0x7A).contains(b) || (0x41...0x5A).contains(b) || (0x30...0x39).contains(b)
                    || b == 0x2E || b == 0x5F || b == 0x2D || b == 0x2B
            }
            if !allowed { return "\"\(path)\" has characters outside [A-Za-z0-9._+-] in '\(component)'" }
        }
        return nil
    }
}
