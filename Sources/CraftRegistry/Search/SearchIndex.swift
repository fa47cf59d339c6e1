// The registry-wide search index, `index/search.tsv`: one line per name (two when a pre-release is
// newer than the newest stable version) holding everything `list` and `search` show, so a client of a
// remote registry fetches one file instead of one shard per name (docs/registry.md, "The search index").
import CraftBundles
import CraftFiles
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `index/search.tsv`: the newest visible versions of every name, tab-separated.
///
/// ```
/// craft.registry.search/v1<TAB>ROWS
/// name<TAB>version<TAB>kind<TAB>…<TAB>signatures          (the column names, ``columns``)
/// derm-vq<TAB>1.0.0<TAB>encoder<TAB>…<TAB>[]              (ROWS rows, sorted by name)
/// ```
///
/// Per name, the row of its newest version that is neither yanked nor a pre-release, then, when the
/// newest visible pre-release is newer, that one's row. No field can hold a tab or a line break: the
/// index rules forbid control characters in every text field (docs/registry.md, "Validation"), and the
/// signatures column is compact JSON. Writers rebuild it under the registry lock after the shards and
/// `registry.json`; readers treat it as they treat a shard: every row they use is validated.
package struct SearchIndex {
    package static let relativePath = "index/search.tsv"
    static let format = "craft.registry.search/v1"
    static let columns = [
        "name", "version", "kind", "runtime", "runtime_version", "codebook_hash", "codebook_entries", "codebook_dim",
        "codebook_depth", "codebook_metric", "digest", "size", "license", "domains", "summary", "signatures",
    ]

    // MARK: - Writing

    /// The records of `shard` the index holds: the newest stable visible version, then the newest
    /// visible pre-release when it is newer.
    static func records(of shard: IndexShard) -> [IndexedVersion] {
        let stable = shard.latest(includePrerelease: false)
        let newest = shard.latest(includePrerelease: true)
        return [stable, newest == stable ? nil : newest].compactMap { $0 }
    }

    /// The lines of one name (without line breaks).
    static func lines(of shard: IndexShard) throws -> [String] {
        try records(of: shard).map { record in
            let signatures = try record.signatures.isEmpty ? "[]" : String(decoding: compactEncoder.encode(record.signatures), as: UTF8.self)
            let fields = [
                shard.name, record.version, record.kind.rawValue, record.runtime.id, record.runtime.version, record.codebook.hash,
                String(record.codebook.entries), String(record.codebook.dim), String(record.codebook.depth), record.codebook.metric,
                record.digest, String(record.size), record.license, record.domains.joined(separator: ","), record.summary, signatures,
            ]
            if let bad = fields.first(where: { $0.contains { $0 == "\t" || $0.isNewline } }) {
                throw RegistryError(.io, "cannot write \(relativePath): a field of \(shard.name)@\(record.version) holds a tab or line break (\"\(IndexValidation.shown(bad))\"); fix the shard and run craft-registry reindex")
            }
            return fields.joined(separator: "\t")
        }
    }

    /// The whole file for `lines`, which must already be sorted by name.
    static func document(_ lines: [String]) -> Data {
        var text = "\(format)\t\(lines.count)\n" + columns.joined(separator: "\t") + "\n"
        text.reserveCapacity(lines.reduce(text.utf8.count) { $0 + $1.utf8.count + 1 })
        for line in lines { text += line + "\n" }
        return Data(text.utf8)
    }

    /// The file for `shards` (in any order).
    package static func document(of shards: [IndexShard]) throws -> Data {
        try document(shards.sorted { $0.name < $1.name }.flatMap(lines(of:)))
    }

    private static let compactEncoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    // MARK: - Reading

    /// The file's bytes.
    let data: Data
    /// Where the file is, as users know it (a URL for a remote registry), for messages.
    let source: String
    /// The byte offset of each row's first byte and of the end (one past the last row's line break).
    private let rowStarts: [Int]

    /// Checks the file's frame: format line, column line, row count, a line break at the end, no NUL.
    ///
    /// - Throws: ``RegistryError/Code/corruptIndex`` naming the file and what is wrong with it.
    init(data: Data, source: String) throws {
        self.data = data
        self.source = source
        func damaged(_ problem: String) -> RegistryError {
            RegistryError(.corruptIndex, "\(source) \(problem); the search index is damaged: rebuild it with craft-registry reindex in the registry's directory")
        }
        var starts: [Int] = []
        let count = data.count
        let frame: (lines: Int, hasNUL: Bool) = data.withUnsafeBytes { raw in
            guard let base = raw.baseAddress, count > 0 else { return (0, false) }
            var offset = 0
            starts.reserveCapacity(count / 200)
            while offset < count {
                starts.append(offset)
                guard let found = memchr(base + offset, 0x0A, count - offset) else { offset = count + 1; break }
                offset = base.distance(to: UnsafeRawPointer(found)) + 1
            }
            return (starts.count, memchr(base, 0, count) != nil)
        }
        guard count > 0, data.last == 0x0A else { throw damaged("is empty or does not end with a line break (a truncated download or write)") }
        guard !frame.hasNUL else { throw damaged("holds a NUL byte") }
        guard frame.lines >= 2 else { throw damaged("lacks its column line") }
        let header = String(decoding: data[starts[0]..<(starts[1] - 1)], as: UTF8.self).split(separator: "\t", omittingEmptySubsequences: false)
        guard header.count == 2, header[0] == Self.format, let rows = Int(header[1]) else {
            throw damaged("does not start with \"\(Self.format)<TAB>ROWS\"")
        }
        let columnLine = String(decoding: data[starts[1]..<((starts.count > 2 ? starts[2] : count) - 1)], as: UTF8.self)
        guard columnLine == Self.columns.joined(separator: "\t") else {
            throw damaged("has the columns \"\(IndexValidation.shown(columnLine))\" but \(Self.format) has \(Self.columns.joined(separator: ","))")
        }
        guard frame.lines - 2 == rows else {
            throw damaged("announces \(rows) rows but holds \(frame.lines - 2) (a truncated or edited file)")
        }
        rowStarts = Array(starts.dropFirst(2)) + [count]
    }

    var rowCount: Int { rowStarts.count - 1 }

    /// The rows a listing shows: per name, the newest visible version (stable unless
    /// `includePrerelease`), in name order.
    ///
    /// - Throws: ``RegistryError/Code/corruptIndex`` when the rows are not sorted by name, or a name has
    ///   more rows than a stable and a newer pre-release.
    func visibleRows(includePrerelease: Bool) throws -> [Int] {
        var chosen: [Int] = []
        chosen.reserveCapacity(rowCount)
        try data.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            func field(_ row: Int, skipping skipped: Int) -> (start: Int, end: Int) {
                var start = rowStarts[row]
                let end = rowStarts[row + 1] - 1
                for _ in 0..<skipped {
                    guard let tab = memchr(base + start, 0x09, end - start) else { return (end, end) }
                    start = base.distance(to: UnsafeRawPointer(tab)) + 1
                }
                let tab = memchr(base + start, 0x09, end - start).map { base.distance(to: UnsafeRawPointer($0)) } ?? end
                return (start, tab)
            }
            func isPrerelease(_ row: Int) -> Bool {
                let (start, end) = field(row, skipping: 1)
                for offset in start..<end {
                    let byte = raw[offset]
                    if byte == 0x2B { return false }  // '+': build metadata follows
                    if byte == 0x2D { return true }  // '-'
                }
                return false
            }
            var previous: (start: Int, end: Int)?
            var sameName = 0
            for row in 0..<rowCount {
                let name = field(row, skipping: 0)
                var order: Int32 = 1
                if let previous {
                    let shorter = min(previous.end - previous.start, name.end - name.start)
                    order = memcmp(base + name.start, base + previous.start, shorter)
                    if order == 0 { order = Int32(name.end - name.start) - Int32(previous.end - previous.start) }
                }
                guard order >= 0 else {
                    throw RegistryError(.corruptIndex, "\(source) row \(row + 1) is not in name order; the search index is damaged: rebuild it with craft-registry reindex in the registry's directory")
                }
                sameName = order == 0 ? sameName + 1 : 0
                let prerelease = isPrerelease(row)
                if sameName > 0 {
                    guard sameName == 1, prerelease, !isPrerelease(row - 1) else {
                        throw RegistryError(.corruptIndex, "\(source) row \(row + 1) repeats a name other than as one newer pre-release after its stable version; the search index is damaged: rebuild it with craft-registry reindex in the registry's directory")
                    }
                    if includePrerelease { chosen[chosen.count - 1] = row }
                } else if includePrerelease || !prerelease {
                    chosen.append(row)
                }
                previous = name
            }
        }
        return chosen
    }

    /// The rows among `rows` whose line holds every term (compared in lower case): a superset of the
    /// rows ``SearchRanking`` can match, since each of its matches is a term found in a field.
    func rows(_ rows: [Int], containingAll terms: [String]) -> [Int] {
        guard !terms.isEmpty, !rows.isEmpty else { return rows }
        // Lowercasing maps no character to a line break, so line N of the copy is line N of the file;
        // a native string is NUL-terminated (and the frame check ruled out NULs inside) for strstr.
        let lowered = String(decoding: data, as: UTF8.self).lowercased()
        let length = lowered.utf8.count
        var matches = [Int](repeating: 0, count: rowCount)
        lowered.withCString { start in
            var starts: [Int] = []
            starts.reserveCapacity(rowCount + 1)
            var offset = 0
            var line = 0
            while offset < length, starts.count < rowCount {
                if line >= 2 { starts.append(offset) }
                guard let found = memchr(start + offset, 0x0A, length - offset) else { break }
                offset = UnsafeRawPointer(start).distance(to: UnsafeRawPointer(found)) + 1
                line += 1
            }
            starts.append(length)
            guard starts.count == rowCount + 1 else { return }
            for (position, term) in terms.enumerated() {
                var row = 0
                var cursor = start + starts[0]
                term.withCString { needle in
                    while let hit = strstr(cursor, needle) {
                        let at = start.distance(to: UnsafePointer(hit))
                        while row + 1 < starts.count, starts[row + 1] <= at { row += 1 }
                        guard row < rowCount else { break }
                        if matches[row] == position { matches[row] = position + 1 }
                        cursor = start + starts[row + 1]
                    }
                }
            }
        }
        return rows.filter { matches[$0] == terms.count }
    }

    /// The record of `row`, every field validated as a shard's are.
    ///
    /// - Throws: ``RegistryError/Code/corruptIndex`` naming the file, the row and the field.
    func record(at row: Int) throws -> (name: String, record: IndexedVersion) {
        let line = String(decoding: data[rowStarts[row]..<(rowStarts[row + 1] - 1)], as: UTF8.self)
        let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        func damaged(_ problem: String) -> RegistryError {
            RegistryError(.corruptIndex, "\(source) row \(row + 1): \(problem); the search index is damaged: rebuild it with craft-registry reindex in the registry's directory")
        }
        guard fields.count == Self.columns.count else {
            throw damaged("has \(fields.count) fields but \(Self.format) has \(Self.columns.count)")
        }
        let name = fields[0]
        guard IndexValidation.isValidName(name) else { throw damaged("name is \"\(IndexValidation.shown(name))\" but must be a bundle name") }
        guard let kind = BundleKind(rawValue: fields[2]) else { throw damaged("kind is \"\(IndexValidation.shown(fields[2]))\" but must be encoder or backend") }
        guard let entries = Int(fields[6]), let dim = Int(fields[7]), let depth = Int(fields[8]), let size = Int64(fields[11]) else {
            throw damaged("codebook_entries, codebook_dim, codebook_depth and size must be integers")
        }
        var signatures: [BundleSignature] = []
        if fields[15] != "[]" {
            do {
                signatures = try JSONDecoder().decode([BundleSignature].self, from: Data(fields[15].utf8))
            } catch {
                throw damaged("signatures is not a JSON array of signatures (\(JSONFormatting.describe(error)))")
            }
        }
        let record = IndexedVersion(
            version: fields[1], kind: kind, summary: fields[14], domains: fields[13].isEmpty ? [] : fields[13].split(separator: ",").map(String.init),
            license: fields[12], runtime: .init(id: fields[3], version: fields[4]),
            codebook: .init(hash: fields[5], entries: entries, dim: dim, depth: depth, metric: fields[9]),
            digest: fields[10], size: size, path: Registry.bundlePath(name: name, version: fields[1]), signatures: signatures)
        if let problem = IndexValidation.problems(in: record, name: name).first {
            throw damaged("\(problem)")
        }
        return (name, record)
    }
}

extension Registry {
    var searchIndexURL: URL { root.appendingPathComponent(SearchIndex.relativePath) }

    /// The search index of a remote registry, brought up to date (one conditional GET); `nil` when the
    /// registry has none (it was written by a Craft without one: its shards are read instead).
    func remoteSearchIndex() throws -> SearchIndex? {
        guard let remote, try remote.refresh(SearchIndex.relativePath) else { return nil }
        let data: Data
        do {
            data = try BoundedFile.read(searchIndexURL, limit: RemoteRegistry.documentLimit)
        } catch {
            throw RegistryError(.io, "cannot read \(searchIndexURL.path) (\(error.localizedDescription)); check permissions", cause: error)
        }
        return try SearchIndex(data: data, source: shown(searchIndexURL))
    }

    /// `list` and `search` of a remote registry from its search index, with `terms` (lower case) as a
    /// filter every row must pass (``SearchIndex/rows(_:containingAll:)``); `nil` when the registry
    /// has no search index.
    ///
    /// - Throws: ``RegistryError/Code/corruptIndex`` when the search index is damaged.
    func indexedBundles(terms: [String], includePrerelease: Bool) throws -> [ResolvedBundle]? {
        guard let index = try remoteSearchIndex() else { return nil }
        return try index.rows(index.visibleRows(includePrerelease: includePrerelease), containingAll: terms).map { row in
            let (name, record) = try index.record(at: row)
            return resolved(name, record)
        }
    }

    /// Rewrites `index/search.tsv` with `shard` as the lines of `name` (`nil`: the name is gone).
    /// Call it holding the registry lock, after the shard and `registry.json` are written. A missing
    /// or damaged search index is rebuilt from every shard.
    func updateSearchIndex(name: String, shard: IndexShard?) throws {
        var lines: [String]
        if let data = try? BoundedFile.read(searchIndexURL, limit: BoundedFile.largeDocumentLimit),
           (try? SearchIndex(data: data, source: searchIndexURL.path)) != nil {
            lines = String(decoding: data, as: UTF8.self).split(separator: "\n").dropFirst(2)
                .filter { String($0.prefix { $0 != "\t" }) != name }.map(String.init)
        } else {
            lines = try readAllShards().shards.filter { $0.name != name }.sorted { $0.name < $1.name }.flatMap(SearchIndex.lines(of:))
        }
        let position = lines.firstIndex { String($0.prefix { $0 != "\t" }) > name } ?? lines.endIndex
        lines.insert(contentsOf: try shard.map(SearchIndex.lines(of:)) ?? [], at: position)
        try AtomicFile.write(SearchIndex.document(lines), to: searchIndexURL)
    }
}
