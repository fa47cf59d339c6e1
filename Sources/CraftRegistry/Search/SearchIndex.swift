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

    /// The whole file for `lines`, which must already be sorted by name. The first line announces the
    /// row count and the file's length in bytes, so a truncated file is told in constant time.
    static func document(_ lines: [String]) -> Data {
        var body = columns.joined(separator: "\t") + "\n"
        body.reserveCapacity(lines.reduce(body.utf8.count) { $0 + $1.utf8.count + 1 })
        for line in lines { body += line + "\n" }
        let prefix = "\(format)\t\(lines.count)\t"
        var total = prefix.utf8.count + body.utf8.count + 1
        while prefix.utf8.count + String(total).utf8.count + 1 + body.utf8.count != total {
            total = prefix.utf8.count + String(total).utf8.count + 1 + body.utf8.count
        }
        return Data((prefix + "\(total)\n" + body).utf8)
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
    /// The rows the first line announces.
    let rowCount: Int
    /// The offset of the first row (after the format and column lines).
    private let firstRow: Int

    /// Checks the file's frame in constant time: the format line, the column line, the length the
    /// first line announces (a truncated file is shorter), a line break at the end, no NUL byte.
    /// Rows are checked as they are used.
    ///
    /// - Throws: ``RegistryError/Code/corruptIndex`` naming the file and what is wrong with it.
    init(data: Data, source: String) throws {
        self.data = data
        self.source = source
        let count = data.count
        let frame: (header: Int, columns: Int, hasNUL: Bool)? = data.withUnsafeBytes { raw in
            guard let base = raw.baseAddress, count > 0,
                  let first = memchr(base, 0x0A, count).map({ base.distance(to: UnsafeRawPointer($0)) }),
                  let second = memchr(base + first + 1, 0x0A, count - first - 1).map({ base.distance(to: UnsafeRawPointer($0)) })
            else { return nil }
            return (first, second, memchr(base, 0, count) != nil)
        }
        func damaged(_ problem: String) -> RegistryError { Self.damage(in: source, problem) }
        guard count > 0, data.last == 0x0A else { throw damaged("is empty or does not end with a line break (a truncated download or write)") }
        guard let frame else { throw damaged("lacks its format or column line") }
        guard !frame.hasNUL else { throw damaged("holds a NUL byte") }
        let header = String(decoding: data[data.startIndex..<(data.startIndex + frame.header)], as: UTF8.self)
            .split(separator: "\t", omittingEmptySubsequences: false)
        guard header.count == 3, header[0] == Self.format, let rows = Int(header[1]), let bytes = Int(header[2]) else {
            throw damaged("does not start with \"\(Self.format)<TAB>ROWS<TAB>BYTES\"")
        }
        let columnLine = String(decoding: data[(data.startIndex + frame.header + 1)..<(data.startIndex + frame.columns)], as: UTF8.self)
        guard columnLine == Self.columns.joined(separator: "\t") else {
            throw damaged("has the columns \"\(IndexValidation.shown(columnLine))\" but \(Self.format) has \(Self.columns.joined(separator: ","))")
        }
        guard bytes == count else {
            throw damaged("announces \(rows) rows in \(bytes) bytes but is \(count) bytes long (a truncated or edited file)")
        }
        rowCount = rows
        firstRow = frame.columns + 1
    }

    /// Every row (byte ranges without the line break), checked against the announced count and for
    /// name order.
    func allRows() throws -> [Range<Int>] {
        var rows: [Range<Int>] = []
        rows.reserveCapacity(rowCount)
        data.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            var offset = firstRow
            while offset < raw.count, let found = memchr(base + offset, 0x0A, raw.count - offset) {
                let end = base.distance(to: UnsafeRawPointer(found))
                rows.append(offset..<end)
                offset = end + 1
            }
        }
        guard rows.count == rowCount else {
            throw damage("holds \(rows.count) rows but announces \(rowCount) (an edited file)")
        }
        return rows
    }

    /// The newest visible version's row of each name among `rows` (sorted by offset): stable unless
    /// `includePrerelease`. A row is hidden by a same-name row right after it (its newer pre-release)
    /// when pre-releases are shown, and is hidden itself when it is a pre-release and they are not.
    ///
    /// - Throws: ``RegistryError/Code/corruptIndex`` when `checkOrder` and the rows are not sorted by
    ///   name with at most a stable row and a newer pre-release per name.
    func visible(_ rows: [Range<Int>], includePrerelease: Bool, checkOrder: Bool) throws -> [Range<Int>] {
        try data.withUnsafeBytes { raw -> [Range<Int>] in
            guard let base = raw.baseAddress else { return [] }
            func name(_ row: Range<Int>) -> Range<Int> {
                row.lowerBound..<(memchr(base + row.lowerBound, 0x09, row.count).map { base.distance(to: UnsafeRawPointer($0)) } ?? row.upperBound)
            }
            func compare(_ lhs: Range<Int>, _ rhs: Range<Int>) -> Int {
                let order = memcmp(base + lhs.lowerBound, base + rhs.lowerBound, min(lhs.count, rhs.count))
                return order != 0 ? Int(order) : lhs.count - rhs.count
            }
            func isPrerelease(_ row: Range<Int>) -> Bool {
                let start = name(row).upperBound + 1
                guard start < row.upperBound else { return false }
                for offset in start..<row.upperBound {
                    switch raw[offset] {
                    case 0x09, 0x2B: return false  // end of the field, or build metadata
                    case 0x2D: return true  // '-'
                    default: continue
                    }
                }
                return false
            }
            func next(after row: Range<Int>) -> Range<Int>? {
                let start = row.upperBound + 1
                guard start < raw.count, let found = memchr(base + start, 0x0A, raw.count - start) else { return nil }
                return start..<base.distance(to: UnsafeRawPointer(found))
            }
            var chosen: [Range<Int>] = []
            chosen.reserveCapacity(rows.count)
            var previous: Range<Int>?
            for (position, row) in rows.enumerated() {
                let prerelease = isPrerelease(row)
                if checkOrder, let previous {
                    let order = compare(name(row), name(previous))
                    if order < 0 { throw damage(row: position, "is not in name order") }
                    if order == 0, !(prerelease && !isPrerelease(previous)) || (position > 1 && compare(name(rows[position - 2]), name(row)) == 0) {
                        throw damage(row: position, "repeats a name other than as one newer pre-release after its stable version")
                    }
                }
                previous = row
                if includePrerelease {
                    if let following = next(after: row), compare(name(following), name(row)) == 0 { continue }
                } else if prerelease {
                    continue
                }
                chosen.append(row)
            }
            return chosen
        }
    }

    /// The rows whose line holds every term (compared in lower case), sorted: a superset of the rows
    /// ``SearchRanking`` can match, since each of its matches is a term found in a field. For a file
    /// that is not all ASCII (lowercasing may change byte offsets), every row.
    func rows(containingAll terms: [String]) throws -> [Range<Int>] {
        guard !terms.isEmpty, let buffer = malloc(data.count + 1)?.assumingMemoryBound(to: CChar.self) else { return try allRows() }
        defer { free(buffer) }
        // One pass: the index lowercased into the buffer (ASCII), and whether it is all ASCII (else
        // every row is read and matched as Unicode text).
        let ascii = data.withUnsafeBytes { raw -> Bool in
            let bytes = raw.bindMemory(to: UInt8.self)
            let lowered = UnsafeMutableRawPointer(buffer).assumingMemoryBound(to: UInt8.self)
            var seen: UInt8 = 0
            for index in 0..<bytes.count {
                let byte = bytes[index]
                seen |= byte
                lowered[index] = byte &- 0x41 < 26 ? byte | 0x20 : byte
            }
            lowered[bytes.count] = 0
            return seen < 0x80
        }
        guard ascii else { return try allRows() }
        // Each hit of the first term gives its row; the other terms are looked for in those rows only,
        // each ended by a NUL for the time of the search.
        var rows: [Range<Int>] = []
        var cursor = buffer + firstRow
        while let hit = strstr(cursor, terms[0]) {
            var start = buffer.distance(to: hit)
            while start > firstRow, buffer[start - 1] != 0x0A { start -= 1 }
            let end = memchr(buffer + start, 0x0A, data.count - start).map { buffer.distance(to: $0.assumingMemoryBound(to: CChar.self)) } ?? data.count
            rows.append(start..<end)
            cursor = buffer + min(end + 1, data.count)
        }
        for term in terms.dropFirst() {
            rows = rows.filter { row in
                buffer[row.upperBound] = 0
                defer { buffer[row.upperBound] = 0x0A }
                return strstr(buffer + row.lowerBound, term) != nil
            }
        }
        return rows
    }

    /// The 1-based row number of the row starting at `offset` (for messages only: it counts lines).
    private func number(of offset: Int) -> Int {
        data[(data.startIndex + firstRow)..<(data.startIndex + offset)].reduce(1) { $1 == 0x0A ? $0 + 1 : $0 }
    }

    /// A damaged search index: what is wrong, in which file, and what repairs it.
    static func damage(in source: String, _ problem: String) -> RegistryError {
        RegistryError(.corruptIndex, "\(source) \(problem); the search index is damaged: rebuild it with craft-registry reindex in the registry's directory")
    }

    private func damage(_ problem: String) -> RegistryError { Self.damage(in: source, problem) }

    private func damage(row position: Int, _ problem: String) -> RegistryError { Self.damage(in: source, "row \(position + 1) \(problem)") }

    /// The record of `row`, every field validated as a shard's are.
    ///
    /// - Throws: ``RegistryError/Code/corruptIndex`` naming the file, the row and the field.
    func record(at row: Range<Int>) throws -> (name: String, record: IndexedVersion) {
        // The fields straight from the bytes (a search may decode thousands of rows).
        var fields: [String] = []
        fields.reserveCapacity(Self.columns.count)
        data.withUnsafeBytes { raw in
            let line = UnsafeRawBufferPointer(rebasing: raw[row])
            var start = 0
            for index in 0...line.count where index == line.count || line[index] == 0x09 {
                fields.append(String(decoding: UnsafeRawBufferPointer(rebasing: line[start..<index]), as: UTF8.self))
                start = index + 1
            }
        }
        func damaged(_ problem: String) -> RegistryError { Self.damage(in: source, "row \(number(of: row.lowerBound)): \(problem)") }
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
        let rows = terms.isEmpty
            ? try index.visible(index.allRows(), includePrerelease: includePrerelease, checkOrder: true)
            : try index.visible(index.rows(containingAll: terms), includePrerelease: includePrerelease, checkOrder: false)
        return try rows.map { row in
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
           (try? SearchIndex(data: data, source: searchIndexURL.path).allRows()) != nil {
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
