// Tokenization models, ported from Hugging Face tokenizers (tokenizers/src/models/bpe/{model,word}.rs
// and models/wordlevel/mod.rs).
import Foundation
import SafeTensors

/// The `model` field of tokenizer.json: turns one pre-tokenized word into ids.
enum TokenizerModel: Sendable {
    case bpe(BPEModel)
    case wordLevel(WordLevelModel)

    static let supported = ["BPE", "WordLevel"]

    init(_ reader: JSONReader) throws {
        // Old files may omit "type"; the library then guesses from the fields present.
        let type: String
        if let typeReader = reader.child("type") {
            type = try typeReader.string()
        } else if reader.child("merges") != nil {
            type = "BPE"
        } else {
            throw reader.fail("has no field \"type\"")
        }
        switch type {
        case "BPE": self = .bpe(try BPEModel(reader))
        case "WordLevel": self = .wordLevel(try WordLevelModel(reader))
        default: throw reader.unsupported("model", type, supported: Self.supported)
        }
    }

    var vocabulary: Vocabulary {
        switch self {
        case .bpe(let model): return model.vocabulary
        case .wordLevel(let model): return model.vocabulary
        }
    }

    func tokenize(_ word: String, into ids: inout [Int]) throws {
        switch self {
        case .bpe(let model): try model.tokenize(word, into: &ids)
        case .wordLevel(let model): try model.tokenize(word, into: &ids)
        }
    }
}

/// A token-to-id table that compares tokens byte for byte.
struct Vocabulary: Sendable {
    private(set) var idsByToken: [[UInt8]: Int] = [:]
    private(set) var tokensById: [Int: String] = [:]

    init(_ reader: JSONReader) throws {
        let members = try reader.rawMembers()
        try reader.checkCount(members.count, limit: TokenizerLimits.maximumVocabularySize, of: "vocabulary entries")
        idsByToken.reserveCapacity(members.count)
        tokensById.reserveCapacity(members.count)
        for (token, value) in members {
            // Readers (with their path strings) are made only for an error: a vocabulary has
            // hundreds of thousands of entries.
            guard let number = value.double, number.rounded() == number, number >= 0, number <= Double(Int32.max) else {
                throw reader.member(token, value).fail("must be a non-negative 32-bit id but is \(value.kindName)")
            }
            let id = Int(number)
            // serde keeps the last duplicate key; so do we.
            idsByToken[Array(token.utf8)] = id
            tokensById[id] = token
        }
    }

    var count: Int { idsByToken.count }

    func id(_ token: String) -> Int? { idsByToken[Array(token.utf8)] }
    func id(bytes: [UInt8]) -> Int? { idsByToken[bytes] }
    func token(_ id: Int) -> String? { tokensById[id] }
    var tokens: Dictionary<[UInt8], Int>.Keys { idsByToken.keys }
}

/// A bounded, thread-safe map from words (UTF-8 bytes, compared exactly) to their ids (the library's BPE cache).
final class WordCache: @unchecked Sendable {
    private var entries: [[UInt8]: [Int]] = [:]
    private let lock = NSLock()
    private let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    func get(_ word: [UInt8]) -> [Int]? {
        lock.lock()
        defer { lock.unlock() }
        return entries[word]
    }

    func set(_ word: [UInt8], _ ids: [Int]) {
        lock.lock()
        defer { lock.unlock() }
        if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
        entries[word] = ids
    }
}

/// Byte-pair encoding (GPT-2 byte-level BPE, sentencepiece-style BPE with byte fallback, and
/// subword BPE with a continuing prefix / end-of-word suffix).
final class BPEModel: Sendable {
    let vocabulary: Vocabulary
    /// Merge rank and merged id for each pair of ids, keyed by `left << 32 | right`.
    private let merges: [UInt64: (rank: Int32, id: Int32)]
    private let unknownToken: String?
    private let unknownId: Int?
    private let prefix: String?
    private let suffix: String?
    private let fuseUnknown: Bool
    private let byteFallback: Bool
    private let ignoreMerges: Bool
    /// The id of `<0xAB>` for each byte when byte fallback is on.
    private let byteIds: [Int?]
    /// The id of each single-scalar token, for the common case without prefix or suffix.
    private let scalarIds: [UInt32: Int]
    private let cache = WordCache(capacity: 10_000)

    init(_ reader: JSONReader) throws {
        let vocabulary = try Vocabulary(try reader.required("vocab"))
        self.vocabulary = vocabulary
        if let dropout = reader.child("dropout"), let value = dropout.value.double, value > 0, value < 1 {
            throw reader.unsupported("BPE model", "BPE with dropout \(value)", supported: ["BPE without dropout"])
        }
        unknownToken = try reader.optionalString("unk_token")
        unknownId = unknownToken.flatMap { vocabulary.id($0) }
        // An empty prefix or suffix (as GPT-2's published file has) changes nothing; treat it as absent.
        prefix = try reader.optionalString("continuing_subword_prefix").flatMap { $0.isEmpty ? nil : $0 }
        suffix = try reader.optionalString("end_of_word_suffix").flatMap { $0.isEmpty ? nil : $0 }
        fuseUnknown = try reader.bool("fuse_unk", default: false)
        byteFallback = try reader.bool("byte_fallback", default: false)
        ignoreMerges = try reader.bool("ignore_merges", default: false)

        byteIds = (0..<256).map { vocabulary.id("<0x\(String(format: "%02X", $0))>") }
        var scalarIds: [UInt32: Int] = [:]
        for token in vocabulary.tokens {
            guard let text = String(validating: token, as: UTF8.self) else { continue }
            var scalars = text.unicodeScalars.makeIterator()
            if let first = scalars.next(), scalars.next() == nil, let id = vocabulary.id(bytes: token) {
                scalarIds[first.value] = id
            }
        }
        self.scalarIds = scalarIds

        let prefixLength = prefix.map { $0.unicodeScalars.count } ?? 0
        var merges: [UInt64: (rank: Int32, id: Int32)] = [:]
        let mergesReader = try reader.required("merges")
        let entries = try mergesReader.rawArray()
        try mergesReader.checkCount(entries.count, limit: TokenizerLimits.maximumVocabularySize, of: "merges")
        merges.reserveCapacity(entries.count)
        for (rank, value) in entries.enumerated() {
            let left: String
            let right: String
            var entry: JSONReader { mergesReader.element(rank, value) }
            switch value {
            case .string(let line):
                // The older form "a b": exactly one space.
                let parts = line.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else {
                    throw entry.fail("must be two tokens separated by one space, but is \"\(line)\"")
                }
                left = String(parts[0])
                right = String(parts[1])
            case .array(let pair):
                guard pair.count == 2, case .string(let first) = pair[0], case .string(let second) = pair[1] else {
                    throw entry.fail("must be a pair of two token strings")
                }
                left = first
                right = second
            default:
                throw entry.fail("must be a string \"a b\" or a pair [\"a\", \"b\"]")
            }
            func lookUp(_ token: String) throws -> Int {
                guard let id = vocabulary.id(token) else {
                    throw TokenizerError(
                        .inconsistentVocabulary,
                        "\(reader.source): \(entry.path) merges \"\(left)\" and \"\(right)\", but \"\(token)\" is not in "
                            + "model.vocab; the merges and the vocabulary belong to different tokenizers.")
                }
                return id
            }
            let leftId = try lookUp(left)
            let rightId = try lookUp(right)
            let rightScalars = right.unicodeScalars
            let trimmedRight = String(
                Substring(rightScalars.dropFirst(min(prefixLength, rightScalars.count))))
            let mergedId = try lookUp(left + trimmedRight)
            merges[UInt64(leftId) << 32 | UInt64(rightId)] = (Int32(rank), Int32(mergedId))
        }
        self.merges = merges
    }

    func tokenize(_ word: String, into ids: inout [Int]) throws {
        if word.isEmpty { return }
        let key = Array(word.utf8)
        if let cached = cache.get(key) {
            ids.append(contentsOf: cached)
            return
        }
        if ignoreMerges, let id = vocabulary.id(bytes: key) {
            ids.append(id)
            return
        }
        let result = try mergeWord(word)
        if key.count < 256 { cache.set(key, result) }
        ids.append(contentsOf: result)
    }

    private func unknown() throws -> Int {
        guard let unknownToken else { return -1 }
        guard let unknownId else {
            throw TokenizerError(
                .unknownToken,
                "The BPE unknown token \"\(unknownToken)\" is not in the model's vocabulary, so text with characters "
                    + "outside the vocabulary cannot be encoded; add it to model.vocab.")
        }
        return unknownId
    }

    private func mergeWord(_ word: String) throws -> [Int] {
        var symbols: [Int] = []
        symbols.reserveCapacity(word.utf8.count)
        var pendingUnknown: Int?  // the unknown id waiting to be emitted (fused unknowns collapse into one)
        let scalars = word.unicodeScalars
        let plain = prefix == nil && suffix == nil
        var index = scalars.startIndex
        var isFirst = true
        while index < scalars.endIndex {
            let scalar = scalars[index]
            index = scalars.index(after: index)
            let isLast = index == scalars.endIndex
            var id: Int?
            var piece = ""
            if plain {
                id = scalarIds[scalar.value]
                if id == nil { piece.unicodeScalars.append(scalar) }
            } else {
                if !isFirst, let prefix { piece += prefix }
                piece.unicodeScalars.append(scalar)
                if isLast, let suffix { piece += suffix }
                id = vocabulary.id(piece)
            }
            isFirst = false
            if let id {
                if let pending = pendingUnknown {
                    symbols.append(pending)
                    pendingUnknown = nil
                }
                symbols.append(id)
                continue
            }
            if byteFallback {
                let bytes = Array(piece.utf8)
                let fallback = bytes.compactMap { byteIds[Int($0)] }
                if fallback.count == bytes.count {
                    // As in the library, a pending unknown is not flushed here.
                    symbols.append(contentsOf: fallback)
                    continue
                }
            }
            if unknownToken != nil {
                let unknownId = try unknown()
                if let pending = pendingUnknown {
                    if !fuseUnknown {
                        symbols.append(pending)
                        pendingUnknown = unknownId
                    }
                } else {
                    pendingUnknown = unknownId
                }
            }
        }
        if let pending = pendingUnknown { symbols.append(pending) }
        return merge(symbols)
    }

    /// Applies merges by rank, lowest rank first and leftmost on ties (the library's `Word::merge_all`).
    private func merge(_ initial: [Int]) -> [Int] {
        let count = initial.count
        if count < 2 || merges.isEmpty { return initial }
        var ids = initial
        var previous = [Int](0..<count).map { $0 - 1 }
        var next = [Int](0..<count).map { $0 + 1 }
        var alive = [Bool](repeating: true, count: count)
        var heap = MergeHeap()
        for position in 0..<(count - 1) {
            if let merge = merges[UInt64(ids[position]) << 32 | UInt64(ids[position + 1])] {
                heap.push(MergeCandidate(rank: merge.rank, position: position, id: merge.id))
            }
        }
        while let top = heap.pop() {
            let position = top.position
            guard alive[position] else { continue }
            let right = next[position]
            guard right < count else { continue }
            guard let merge = merges[UInt64(ids[position]) << 32 | UInt64(ids[right])], merge.id == top.id else {
                continue
            }
            ids[position] = Int(top.id)
            alive[right] = false
            let afterRight = next[right]
            next[position] = afterRight
            if afterRight < count { previous[afterRight] = position }
            let before = previous[position]
            if before >= 0, let merge = merges[UInt64(ids[before]) << 32 | UInt64(ids[position])] {
                heap.push(MergeCandidate(rank: merge.rank, position: before, id: merge.id))
            }
            if afterRight < count, let merge = merges[UInt64(ids[position]) << 32 | UInt64(ids[afterRight])] {
                heap.push(MergeCandidate(rank: merge.rank, position: position, id: merge.id))
            }
        }
        var result: [Int] = []
        result.reserveCapacity(count)
        for position in 0..<count where alive[position] { result.append(ids[position]) }
        return result
    }
}

struct MergeCandidate {
    var rank: Int32
    var position: Int
    var id: Int32

    /// Lower rank first, then the leftmost position.
    func precedes(_ other: MergeCandidate) -> Bool {
        rank != other.rank ? rank < other.rank : position < other.position
    }
}

/// A binary min-heap of merge candidates.
struct MergeHeap {
    private var items: [MergeCandidate] = []

    mutating func push(_ item: MergeCandidate) {
        items.append(item)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child].precedes(items[parent]) else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> MergeCandidate? {
        guard let first = items.first else { return nil }
        let last = items.removeLast()
        if items.isEmpty { return first }
        items[0] = last
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var best = parent
            if left < items.count, items[left].precedes(items[best]) { best = left }
            if right < items.count, items[right].precedes(items[best]) { best = right }
            if best == parent { break }
            items.swapAt(parent, best)
            parent = best
        }
        return first
    }
}

/// A word-to-id table with an unknown token.
final class WordLevelModel: Sendable {
    let vocabulary: Vocabulary
    private let unknownToken: String
    private let unknownId: Int?

    init(_ reader: JSONReader) throws {
        vocabulary = try Vocabulary(try reader.required("vocab"))
        unknownToken = try reader.optionalString("unk_token") ?? "<unk>"
        unknownId = vocabulary.id(unknownToken)
    }

    func tokenize(_ word: String, into ids: inout [Int]) throws {
        if let id = vocabulary.id(word) {
            ids.append(id)
        } else if let unknownId {
            ids.append(unknownId)
        } else {
            throw TokenizerError(
                .unknownToken,
                "The word \"\(word)\" is not in the WordLevel vocabulary and its unknown token \"\(unknownToken)\" is "
                    + "not in it either; add the unknown token to model.vocab.")
        }
    }
}
