import CraftBundles
import Foundation

/// A published version picked by a ``BundleReference``.
public struct ResolvedBundle: Sendable, Equatable {
    /// The bundle name.
    public var name: String
    /// The index record of the chosen version.
    public var record: IndexedVersion
    /// The bundle file in the registry; for a remote registry, where its download is kept.
    public var file: URL
    /// Where a remote registry serves the bundle file; `nil` for a directory registry.
    public var remoteURL: URL?
    /// The bundle file as users know it: its URL when remote, else its path.
    public var location: String { remoteURL?.absoluteString ?? file.path }
    /// `NAME@VERSION`.
    public var reference: String { "\(name)@\(record.version)" }
    /// The configured name of the registry it comes from, when several are configured
    /// (``RegistryConfiguration``); `nil` otherwise.
    public var source: String?
}

extension Registry {
    func resolved(_ name: String, _ record: IndexedVersion) -> ResolvedBundle {
        ResolvedBundle(name: name, record: record, file: bundleURL(for: record), remoteURL: remote?.url(of: record.path), source: label)
    }

    /// The version a reference names.
    ///
    /// `NAME` picks the newest non-yanked version (stable unless `includePrerelease`); `NAME@RANGE`
    /// the newest non-yanked version in the range (pre-releases only when asked for, or when the range
    /// itself names a pre-release of the same core, as npm does); `NAME@VERSION` exactly that version,
    /// even when yanked.
    ///
    /// - Throws: ``RegistryError/Code/notFound`` naming what was asked and what exists.
    public func resolve(_ reference: BundleReference, includePrerelease: Bool = false) throws -> ResolvedBundle {
        if !alternates.isEmpty {
            // The first registry that holds the name answers: a later one never shadows it.
            guard let (holder, shard) = try holding(reference.name) else { throw notFoundInAnyMember(reference.name) }
            return try holder.resolve(reference, in: shard, includePrerelease: includePrerelease)
        }
        return try resolve(reference, in: shard(named: reference.name), includePrerelease: includePrerelease)
    }

    /// The version `reference` names in `shard`, one of this registry's.
    private func resolve(_ reference: BundleReference, in shard: IndexShard, includePrerelease: Bool) throws -> ResolvedBundle {
        let chosen: IndexedVersion?
        switch reference.requirement {
        case .latest:
            chosen = shard.latest(includePrerelease: includePrerelease)
        case .exact(let version):
            let wanted = SemanticVersion(version)
            chosen = shard.versions.first { $0.version == version }
                ?? shard.versions.first { record in wanted.map { record.semanticVersion == $0 } ?? false }
        case .range(let text):
            let range = try VersionRange(text)
            chosen = shard.versions.last { record in
                guard !record.yanked, let version = record.semanticVersion else { return false }
                return range.contains(version, includePrerelease: includePrerelease)
            }
        }
        guard let chosen else {
            let available = shard.versions.map { $0.version + ($0.yanked ? " (yanked)" : "") }.joined(separator: ", ")
            let hasPrerelease = shard.versions.contains { $0.isPrerelease && !$0.yanked }
            let hint = includePrerelease || !hasPrerelease ? "" : "; add --include-prerelease to consider pre-releases"
            throw RegistryError(
                .notFound, "no version of '\(reference.name)' matches '\(reference)' (available: \(available))\(hint)")
        }
        return resolved(shard.name, chosen)
    }

    /// The newest visible version of every name, in name order, with one problem per broken shard.
    public func list(
        kind: BundleKind? = nil, domain: String? = nil, includePrerelease: Bool = false
    ) throws -> (bundles: [ResolvedBundle], problems: [RegistryError]) {
        if !alternates.isEmpty {
            // Every registry's bundles, each with its source, in configuration order.
            var bundles: [ResolvedBundle] = [], problems: [RegistryError] = []
            for member in members {
                let part = try member.list(kind: kind, domain: domain, includePrerelease: includePrerelease)
                bundles += part.bundles
                problems += part.problems
            }
            return (bundles, problems)
        }
        return try visible(terms: [], kind: kind, domain: domain, includePrerelease: includePrerelease)
    }

    /// The newest visible version of every name passing the filters. A remote registry's are read from
    /// its search index (one file, ``SearchIndex``), narrowed to the rows holding every term of
    /// `terms`; a directory's, and a remote registry's without a search index, from every shard.
    private func visible(
        terms: [String], kind: BundleKind?, domain: String?, includePrerelease: Bool
    ) throws -> (bundles: [ResolvedBundle], problems: [RegistryError]) {
        var found: [ResolvedBundle]?
        var problems: [RegistryError] = []
        do {
            found = try indexedBundles(terms: terms, includePrerelease: includePrerelease)
        } catch let damage as RegistryError where damage.code == .corruptIndex {
            // Reported as index damage (exit 4); the shards still give the whole answer.
            problems.append(damage)
        }
        if found == nil {
            let (shards, shardProblems) = try allShards()
            found = shards.compactMap { shard in shard.latest(includePrerelease: includePrerelease).map { resolved(shard.name, $0) } }
            problems += shardProblems
        }
        let bundles = (found ?? []).filter { bundle in
            if let kind, bundle.record.kind != kind { return false }
            if let domain, !bundle.record.domains.contains(where: { $0.lowercased() == domain.lowercased() }) { return false }
            return true
        }
        return (bundles, problems)
    }

    /// Ranked search over the newest visible version of every name (``SearchRanking``).
    public func search(
        _ query: String, kind: BundleKind? = nil, domain: String? = nil, includePrerelease: Bool = false
    ) throws -> (hits: [SearchHit], problems: [RegistryError]) {
        if !alternates.isEmpty {
            var hits: [SearchHit] = [], problems: [RegistryError] = []
            for member in members {
                let part = try member.search(query, kind: kind, domain: domain, includePrerelease: includePrerelease)
                hits += part.hits
                problems += part.problems
            }
            return (SearchRanking.sorted(hits), problems)
        }
        let terms = query.trimmingCharacters(in: .whitespacesAndNewlines).lowercased().split(whereSeparator: \.isWhitespace).map(String.init)
        let (bundles, problems) = try visible(terms: terms, kind: kind, domain: domain, includePrerelease: includePrerelease)
        let hits = bundles.compactMap { bundle in
            SearchRanking.score(query: query, name: bundle.name, record: bundle.record).map {
                SearchHit(bundle: bundle, score: $0.score, reasons: $0.reasons)
            }
        }
        return (SearchRanking.sorted(hits), problems)
    }

    /// Bundles on the other side (encoder ↔ backend) that share the codebook hash of `reference`.
    ///
    /// For each partner name, the newest visible version with that hash is returned (an older version
    /// of a backend may read another codebook). This is an index lookup; `pair` proves it.
    public func compatible(
        with reference: BundleReference, includePrerelease: Bool = false
    ) throws -> (subject: ResolvedBundle, partners: [ResolvedBundle], problems: [RegistryError]) {
        let subject = try resolve(reference, includePrerelease: includePrerelease)
        let otherKind: BundleKind = subject.record.kind == .encoder ? .backend : .encoder
        var partners: [ResolvedBundle] = [], problems: [RegistryError] = []
        for member in members {
            let (shards, found) = try member.allShards()
            problems += found
            partners += shards.compactMap { shard -> ResolvedBundle? in
                let match = shard.versions.last { record in
                    !record.yanked && record.kind == otherKind && record.codebook.hash == subject.record.codebook.hash
                        && (includePrerelease || !record.isPrerelease)
                }
                return match.map { member.resolved(shard.name, $0) }
            }
        }
        return (subject, partners, problems)
    }
}
