import CraftBundles
import CraftFiles
import Foundation

/// What ``Registry/reindex(limits:)`` did.
public struct ReindexResult: Sendable {
    /// Every name of the rebuilt `registry.json`.
    public var names: [String]
    /// How many versions the rebuilt index lists.
    public var versionCount: Int
    /// `NAME@VERSION`s whose record was kept from an intact shard (signatures and yanked state kept).
    public var kept: [String]
    /// `NAME@VERSION`s indexed from their bundle file (no intact record existed); each file passed the
    /// checks of `publish`.
    public var added: [String]
    /// `NAME@VERSION`s an intact shard listed but whose bundle file is gone: no longer listed.
    public var dropped: [String]
    /// Index files written (registry-relative paths); an intact index rewrites nothing.
    public var rewritten: [String]
    /// Index files removed (shards of names without bundle files, damaged or not).
    public var removed: [String]
    /// Damage that was repaired: one sentence per unreadable shard whose records were rebuilt from the
    /// bundle files (the signatures and yanked marks it held are lost).
    public var repaired: [String]
    /// Bundle files that could not be indexed, or whose bytes are not the published ones. Empty when
    /// every file is indexed as published.
    public var problems: [RegistryError]
}

extension Registry {
    /// Rebuilds the index (`registry.json` and every shard) from the bundle files present under
    /// `bundles/`, under the registry lock.
    ///
    /// For each `bundles/NAME/NAME-VERSION.craft`: when an intact shard has a record for that version
    /// with the file's digest, the record is kept as it is (signatures, yanked state); when it records
    /// another digest, the record is kept and the file reported (the published bytes were replaced:
    /// `verify` and `pull` refuse it); when there is no record, the file is verified as `publish`
    /// verifies (hostile archive checks, codebook hash recomputed, name and version matching its path)
    /// and indexed without signatures. Records of files that are gone are dropped. Every index file is
    /// replaced atomically, shards before `registry.json`, so lock-free readers never see a name
    /// without its shard; shards of names without files are removed last.
    ///
    /// - Throws: ``RegistryError/Code/noRegistry`` when the directory does not exist; I/O errors.
    ///   Bundle files that cannot be indexed do not stop the rebuild: they are in
    ///   ``ReindexResult/problems``.
    public func reindex(limits: BundleLimits = .default) throws -> ReindexResult {
        try requireWritable("reindex")
        guard exists else { throw noRegistry() }
        return try FileLock.withExclusiveLock(at: lockURL) {
            _ = sweepScratch()
            var problems: [RegistryError] = []
            var repaired: [String] = []
            // What the old index says, where it can still be read.
            let listed = (try? readIndex())?.names ?? []
            var intact: [String: IndexShard] = [:]
            var shardFiles = shardNamesOnDisk()
            for name in Set(listed).union(shardFiles).sorted() {
                do {
                    if let shard = try readShard(named: name) { intact[name] = shard }
                } catch let error as RegistryError {
                    let what = error.message.split(separator: ";").first.map(String.init) ?? error.message
                    repaired.append("\(what): rebuilt from the bundle files; the signatures and yanked marks it held are lost (publish the .sig files again, yank again)")
                }
            }
            var rebuilt: [String: IndexShard] = [:]
            var kept: [String] = []
            var added: [String] = []
            for (name, files) in bundleFilesOnDisk() {
                var shard = IndexShard(name: name)
                for (version, file) in files {
                    let reference = "\(name)@\(version)"
                    let old = intact[name]?.record(for: version)
                    do {
                        let digest = try BundleArchive.digest(of: file)
                        if let old {
                            if old.digest != digest {
                                problems.append(RegistryError(
                                    .digestMismatch, "\(file.path) has digest \(digest) but its shard records \(old.digest) for \(reference): the published file was replaced; its record is kept (verify and pull refuse the file): put the published file back, or remove \(reference)"))
                            }
                            shard.versions.append(old)
                            kept.append(reference)
                            continue
                        }
                        let record = try indexRecord(for: file, name: name, version: version, limits: limits)
                        if let clash = shard.versions.first(where: {
                            Self.withoutBuildMetadata($0.version) == Self.withoutBuildMetadata(version)
                        }) {
                            throw RegistryError(
                                .conflict, "\(file.path) is \(reference), which differs from \(name)@\(clash.version) only in build metadata; published versions are immutable: remove one of the two files")
                        }
                        shard.versions.append(record)
                        added.append(reference)
                    } catch let error as RegistryError {
                        problems.append(error)
                    } catch {
                        let reason = (error as? LocalizedError)?.errorDescription ?? String(describing: error)
                        problems.append(RegistryError(
                            .corruptIndex, "\(file.path) was left out of the index: \(reason); remove the file or publish a good bundle of \(reference)", cause: error))
                    }
                }
                if !shard.versions.isEmpty {
                    shard.sortVersions()
                    rebuilt[name] = shard
                }
            }
            let dropped = intact.flatMap { name, shard in
                shard.versions.filter { record in rebuilt[name]?.record(for: record.version) == nil }.map { "\(name)@\($0.version)" }
            }.sorted()

            // Shards first, then registry.json and the search index, then the shards of names that are gone.
            var rewritten: [String] = []
            for (name, shard) in rebuilt.sorted(by: { $0.key < $1.key }) {
                let path = IndexShard.relativePath(for: name)
                if try writeIfChanged(JSONFormatting.encode(shard), to: shardURL(for: name)) { rewritten.append(path) }
            }
            let index = RegistryIndex(names: rebuilt.keys.sorted())
            if try writeIfChanged(JSONFormatting.encode(index), to: indexURL) { rewritten.append("registry.json") }
            if try writeIfChanged(SearchIndex.document(of: Array(rebuilt.values)), to: searchIndexURL) {
                rewritten.append(SearchIndex.relativePath)
            }
            var removed: [String] = []
            shardFiles.subtract(rebuilt.keys)
            for name in shardFiles.sorted() {
                if (try? FileManager.default.removeItem(at: shardURL(for: name))) != nil {
                    removed.append(IndexShard.relativePath(for: name))
                }
            }
            return ReindexResult(
                names: index.names, versionCount: rebuilt.values.reduce(0) { $0 + $1.versions.count },
                kept: kept.sorted(), added: added.sorted(), dropped: dropped, rewritten: rewritten, removed: removed,
                repaired: repaired, problems: problems)
        }
    }

    /// The bundle files under `bundles/`: `NAME/NAME-VERSION.craft` with a valid name and a SemVer
    /// version, by name and version. Hidden files are skipped (scratch names).
    func bundleFilesOnDisk() -> [(name: String, files: [(version: String, url: URL)])] {
        let fileManager = FileManager.default
        let bundles = root.appendingPathComponent("bundles")
        let names = ((try? fileManager.contentsOfDirectory(atPath: bundles.path)) ?? []).filter(BundleReference.isValidName).sorted()
        return names.compactMap { name in
            let directory = bundles.appendingPathComponent(name)
            let files = ((try? fileManager.contentsOfDirectory(atPath: directory.path)) ?? []).sorted().compactMap {
                file -> (version: String, url: URL)? in
                guard !file.hasPrefix("."), file.hasPrefix(name + "-"), file.hasSuffix(".craft") else { return nil }
                let version = String(file.dropFirst(name.count + 1).dropLast(6))
                guard IndexValidation.isValidVersion(version) else { return nil }
                return (version, directory.appendingPathComponent(file))
            }
            return files.isEmpty ? nil : (name, files)
        }
    }

    /// The index record of a bundle file that no intact shard describes, after the checks of `publish`.
    private func indexRecord(for file: URL, name: String, version: String, limits: BundleLimits) throws -> IndexedVersion {
        let verified = try BundleArchive.verify(file, limits: limits)
        try CodebookCheck.verify(file, manifest: verified.manifest, limits: limits, source: file.path)
        let manifest = verified.manifest
        guard manifest.name == name, manifest.version.description == version else {
            throw RegistryError(
                .corruptIndex, "\(file.path) holds \(manifest.name)@\(manifest.version), not \(name)@\(version); a bundle file must be bundles/NAME/NAME-VERSION.craft: move or remove it")
        }
        let record = IndexedVersion(
            manifest: manifest, digest: verified.digest, size: verified.size,
            path: Self.bundlePath(name: name, version: version))
        if let problem = IndexValidation.problems(in: record, name: name).first {
            throw RegistryError(.corruptIndex, "\(file.path) cannot be indexed: its record would be invalid (\(problem)); remove the file")
        }
        return record
    }

    /// Atomically replaces `url` with `data` unless it already holds exactly those bytes.
    private func writeIfChanged(_ data: Data, to url: URL) throws -> Bool {
        if (try? BoundedFile.read(url, limit: data.count)) == data { return false }
        try AtomicFile.write(data, to: url)
        return true
    }
}
