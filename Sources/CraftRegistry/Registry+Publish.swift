import CraftBundles
import Foundation

/// What a publish did.
public struct PublishResult: Sendable, Equatable {
    /// What changed in the registry.
    public enum Outcome: String, Sendable {
        /// A new version was added.
        case published
        /// The same bytes were already published under this name and version: nothing changed.
        case unchanged
        /// The same bytes were already published; new signatures were added to the record.
        case signaturesAdded = "signatures-added"
    }

    /// What changed.
    public var outcome: Outcome
    /// The bundle name.
    public var name: String
    /// The index record as it now stands.
    public var record: IndexedVersion
    /// The bundle file in the registry.
    public var file: URL
}

extension Registry {
    /// Publishes a `.craft` file: verifies it (hostile, via ``BundleArchive/verify(_:limits:)``),
    /// checks the signatures given, copies it in and updates the name's shard, atomically.
    ///
    /// The bundle is first copied into the registry's staging directory and the *copy* is verified,
    /// so the bytes published are the bytes checked. Writers hold the registry lock from reading the
    /// shard to renaming the new one. Publishing the same bytes again is a no-op (new signatures are
    /// merged); other bytes under a published name and version are refused with
    /// ``RegistryError/Code/conflict`` (exit 4): a published version is immutable — yank it and
    /// publish a new version instead.
    ///
    /// - Parameters:
    ///   - bundle: the `.craft` file.
    ///   - signatures: detached signatures to carry along; each must verify against the digest.
    ///   - limits: archive limits for the verification.
    ///   - allowPartial: publish a bundle whose provenance says `partial: true` (a training run
    ///     stopped by its step limit before its planned end); without it such a bundle is refused
    ///     with ``RegistryError/Code/usage``.
    @discardableResult
    public func publish(
        _ bundle: URL, signatures: [BundleSignature] = [], limits: BundleLimits = .default, allowPartial: Bool = false
    ) throws -> PublishResult {
        try requireWritable("publish")
        guard FileManager.default.fileExists(atPath: bundle.path) else {
            throw RegistryError(.notFound, "the bundle file \(bundle.path) does not exist; check the path")
        }
        try AtomicFile.createDirectory(stagingURL)
        // What killed publishes left behind (their process is gone), swept under the lock.
        try FileLock.withExclusiveLock(at: lockURL) { _ = sweepScratch() }
        let staged = stagingURL.appendingPathComponent(ScratchFiles.name(RegistryScratch.publishPrefix) + ".craft")
        let tracked = ScratchFiles.track(staged)
        defer { ScratchFiles.remove(tracked) }
        do {
            try FileManager.default.copyItem(at: bundle, to: staged)
        } catch {
            throw RegistryError(
                .io, "cannot copy \(bundle.path) into \(stagingURL.path) (\(error.localizedDescription)); check permissions and free space", cause: error)
        }
        let verified = try BundleArchive.verify(staged, limits: limits)
        let manifest = verified.manifest
        let name = manifest.name
        let version = manifest.version.description
        if !allowPartial, manifest.provenance?["partial"]?.boolValue == true {
            let step = manifest.provenance?["steps"]?.integerValue.map { " at step \($0)" } ?? ""
            throw RegistryError(
                .usage, "\(bundle.path) holds a partial training run (stopped\(step) before its planned end, provenance.partial); finish the run (craft train again without --stop-after-steps) or pass --force to publish it anyway")
        }
        do {
            try CodebookCheck.verify(staged, manifest: manifest, limits: limits, source: "refusing to publish \(bundle.path)")
        } catch var error as RegistryError where error.code == .codebookMismatch {
            error.message += "; repack it with craft-registry pack, which recomputes the hash"
            throw error
        }
        for (position, signature) in signatures.enumerated() {
            try signature.verifyIntegrity(
                digest: verified.digest,
                source: "signature \(position + 1) given for \(bundle.lastPathComponent)")
        }
        let record = IndexedVersion(
            manifest: manifest, digest: verified.digest, size: verified.size,
            path: Self.bundlePath(name: name, version: version), signatures: signatures)
        // What this publish writes must read back: the writer obeys the reader's rules.
        if let problem = IndexValidation.problems(in: record, name: name).first {
            // craft.json allows what an index record does not (a control character in the summary).
            throw BundleError(
                .invalidManifest, "cannot publish \(bundle.path): its index record would be invalid (\(problem)); fix craft.json and pack again",
                entry: problem.field)
        }

        return try FileLock.withExclusiveLock(at: lockURL) {
            // A damaged index is never written over: the next registry.json would drop every name it
            // does not list, and a new shard would drop the versions of a missing one.
            let state = try inspectIndex()
            if let damage = state.problems.first {
                throw RegistryError(
                    .corruptIndex, "cannot publish \(bundle.lastPathComponent) while the index is damaged: \(damage.message)\(state.problems.count > 1 ? " (and \(state.problems.count - 1) more problem\(state.problems.count == 2 ? "" : "s"))" : "")", cause: damage)
            }
            var index = state.index ?? RegistryIndex()
            var shard = try readShard(named: name) ?? IndexShard(name: name)
            let core = Self.withoutBuildMetadata(version)
            if let position = shard.versions.firstIndex(where: { Self.withoutBuildMetadata($0.version) == core }) {
                var existing = shard.versions[position]
                guard existing.version == version, existing.digest == verified.digest else {
                    throw RegistryError(
                        .conflict, "\(name)@\(existing.version) is already published with digest \(existing.digest), and \(bundle.lastPathComponent) (\(verified.digest)) differs; published versions are immutable: bump the version and publish again")
                }
                let known = Set(existing.signatures.map(\.signature))
                let added = signatures.filter { !known.contains($0.signature) }
                let file = bundleURL(for: existing)
                if !FileManager.default.fileExists(atPath: file.path) {
                    // The index names the bundle but its file is gone: restore it from the verified copy.
                    try AtomicFile.move(staged, to: file)
                }
                guard !added.isEmpty else {
                    return PublishResult(outcome: .unchanged, name: name, record: existing, file: file)
                }
                existing.signatures += added
                shard.versions[position] = existing
                try AtomicFile.write(JSONFormatting.encode(shard), to: shardURL(for: name))
                try updateSearchIndex(name: name, shard: shard)
                return PublishResult(outcome: .signaturesAdded, name: name, record: existing, file: file)
            }
            // Order matters for lock-free readers: bundle file, then shard, then the top-level index,
            // then the search index.
            let file = bundleURL(for: record)
            try AtomicFile.move(staged, to: file)
            shard.versions.append(record)
            shard.sortVersions()
            try AtomicFile.write(JSONFormatting.encode(shard), to: shardURL(for: name))
            if !index.names.contains(name) || !FileManager.default.fileExists(atPath: indexURL.path) {
                index.names = Array(Set(index.names).union([name])).sorted()
                try AtomicFile.write(JSONFormatting.encode(index), to: indexURL)
            }
            try updateSearchIndex(name: name, shard: shard)
            return PublishResult(outcome: .published, name: name, record: record, file: file)
        }
    }

    /// Marks `name@version` yanked (or, with `yanked: false`, restores it).
    ///
    /// A yanked version stays downloadable by its exact version but no longer satisfies a bare name
    /// or a range. Returns the updated record.
    @discardableResult
    public func yank(name: String, version: String, yanked: Bool = true) throws -> IndexedVersion {
        try requireWritable(yanked ? "yank" : "unyank")
        return try FileLock.withExclusiveLock(at: lockURL) {
            var shard = try shard(named: name)
            guard let position = shard.versions.firstIndex(where: { $0.version == version }) else {
                throw versionNotFound(name: name, version: version, in: shard)
            }
            shard.versions[position].yanked = yanked
            try AtomicFile.write(JSONFormatting.encode(shard), to: shardURL(for: name))
            try updateSearchIndex(name: name, shard: shard)
            return shard.versions[position]
        }
    }

    /// Deletes `name@version` from the index and its bundle file; the name disappears with its last
    /// version. Prefer ``yank(name:version:yanked:)``: removal breaks whoever pinned the version.
    @discardableResult
    public func remove(name: String, version: String) throws -> IndexedVersion {
        try requireWritable("remove")
        return try FileLock.withExclusiveLock(at: lockURL) {
            let state = try inspectIndex()
            guard var index = state.index, state.problems.isEmpty else {
                let damage = state.problems.first
                throw RegistryError(
                    .corruptIndex, "cannot remove \(name)@\(version) while the index is damaged: \(damage?.message ?? "registry.json is unreadable")", cause: damage)
            }
            var shard = try shard(named: name)
            guard let position = shard.versions.firstIndex(where: { $0.version == version }) else {
                throw versionNotFound(name: name, version: version, in: shard)
            }
            let removed = shard.versions.remove(at: position)
            // Reverse of publish: stop advertising first, then delete what was advertised.
            try updateSearchIndex(name: name, shard: shard.versions.isEmpty ? nil : shard)
            if shard.versions.isEmpty {
                index.names.removeAll { $0 == name }
                try AtomicFile.write(JSONFormatting.encode(index), to: indexURL)
                try? FileManager.default.removeItem(at: shardURL(for: name))
            } else {
                try AtomicFile.write(JSONFormatting.encode(shard), to: shardURL(for: name))
            }
            try? FileManager.default.removeItem(at: bundleURL(for: removed))
            return removed
        }
    }

    private func versionNotFound(name: String, version: String, in shard: IndexShard) -> RegistryError {
        RegistryError(
            .notFound, "'\(name)' has no version \(version) (published: \(shard.versions.map(\.version).joined(separator: ", "))); give an exact published version")
    }

    static func withoutBuildMetadata(_ version: String) -> String {
        String(version.split(separator: "+", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
    }
}

extension IndexedVersion {
    /// The index record of a verified bundle.
    public init(manifest: BundleManifest, digest: String, size: Int64, path: String, signatures: [BundleSignature] = []) {
        self.init(
            version: manifest.version.description, kind: manifest.kind, summary: manifest.summary,
            domains: manifest.domains, license: manifest.license,
            runtime: Runtime(id: manifest.runtime.id, version: manifest.runtime.version.description),
            codebook: Codebook(
                hash: manifest.codebook.hash, entries: manifest.codebook.entries, dim: manifest.codebook.dimension,
                depth: manifest.codebook.depth, metric: manifest.codebook.metric.rawValue),
            digest: digest, size: size, path: path, yanked: false, signatures: signatures)
    }
}
