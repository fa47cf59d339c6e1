// Decoders, ported from Hugging Face tokenizers (tokenizers/src/decoders/*.rs).
import Foundation

/// A decoder from the `decoder` field of tokenizer.json: turns tokens back into text.
indirect enum Decoder: Sendable {
    case byteLevel
    case metaspace(replacement: Unicode.Scalar, prependScheme: PrependScheme)
    case replace(TextPattern, content: String)
    case byteFallback
    case fuse
    case strip(content: Unicode.Scalar, start: Int, stop: Int)
    case wordPiece(prefix: String, cleanup: Bool)
    case bpe(suffix: String)
    case sequence([Decoder])

    static let supported = [
        "ByteLevel", "Metaspace", "Replace", "ByteFallback", "Fuse", "Strip", "WordPiece", "BPEDecoder", "Sequence",
    ]

    init(_ reader: JSONReader) throws {
        let type = try reader.type()
        switch type {
        case "ByteLevel": self = .byteLevel
        case "Metaspace":
            let (replacement, scheme) = try PrependScheme.metaspace(reader)
            self = .metaspace(replacement: replacement, prependScheme: scheme)
        case "Replace":
            self = .replace(try TextPattern(try reader.required("pattern")), content: try reader.string("content"))
        case "ByteFallback": self = .byteFallback
        case "Fuse": self = .fuse
        case "Strip":
            let content = Array(try reader.string("content").unicodeScalars)
            guard content.count == 1 else { throw try reader.required("content").fail("must be exactly one character") }
            let start = try reader.int("start")
            let stop = try reader.int("stop")
            guard start >= 0, stop >= 0 else { throw reader.fail("has a negative start or stop") }
            self = .strip(content: content[0], start: start, stop: stop)
        case "WordPiece":
            self = .wordPiece(
                prefix: try reader.optionalString("prefix") ?? "##", cleanup: try reader.bool("cleanup", default: true))
        case "BPEDecoder":
            self = .bpe(suffix: try reader.optionalString("suffix") ?? "</w>")
        case "Sequence":
            self = .sequence(try reader.required("decoders").array().map(Decoder.init))
        default:
            throw reader.unsupported("decoder", type, supported: Self.supported)
        }
    }

    /// Decodes `tokens`; the text may grow to at most ``TextGrowthExceeded/limit(forInputBytes:)`` of
    /// the tokens' total size (only a `Replace` can grow it).
    func decode(_ tokens: [String]) throws -> String {
        let inputBytes = tokens.reduce(0) { $0 + $1.utf8.count }
        return try decodeChain(tokens, inputBytes: inputBytes, limit: TextGrowthExceeded.limit(forInputBytes: inputBytes)).joined()
    }

    func decodeChain(_ tokens: [String], inputBytes: Int, limit: Int) throws -> [String] {
        switch self {
        case .byteLevel:
            var bytes: [UInt8] = []
            for token in tokens {
                var mapped: [UInt8] = []
                var complete = true
                for scalar in token.unicodeScalars {
                    guard let byte = ByteLevelAlphabet.scalarToByte[scalar.value] else {
                        complete = false
                        break
                    }
                    mapped.append(byte)
                }
                bytes.append(contentsOf: complete ? mapped : Array(token.utf8))
            }
            return [String(decoding: bytes, as: UTF8.self)]
        case .metaspace(let replacement, let scheme):
            return tokens.enumerated().map { index, token in
                var output = String.UnicodeScalarView()
                for scalar in token.unicodeScalars {
                    if scalar == replacement {
                        if index == 0 && scheme != .never { continue }
                        output.append(" ")
                    } else {
                        output.append(scalar)
                    }
                }
                return String(output)
            }
        case .replace(let pattern, let content):
            var total = 0
            return try tokens.map { token in
                let replaced = try pattern.replaceAll(in: token, with: content, limit: limit - total)
                total += replaced.utf8.count
                return replaced
            }
        case .byteFallback:
            var output: [String] = []
            var pending: [UInt8] = []
            func flush() {
                guard !pending.isEmpty else { return }
                if let text = String(validating: pending, as: UTF8.self) {
                    output.append(text)
                } else {
                    output.append(contentsOf: Array(repeating: "\u{FFFD}", count: pending.count))
                }
                pending.removeAll()
            }
            for token in tokens {
                if let byte = Self.fallbackByte(token) {
                    pending.append(byte)
                } else {
                    flush()
                    output.append(token)
                }
            }
            flush()
            return output
        case .fuse:
            return [tokens.joined()]
        case .strip(let content, let start, let stop):
            return tokens.map { token in
                let scalars = Array(token.unicodeScalars)
                var startCut = 0
                for index in 0..<min(start, scalars.count) {
                    guard scalars[index] == content else { break }
                    startCut = index + 1
                }
                var stopCut = scalars.count
                for offset in 0..<min(stop, scalars.count) {
                    let index = scalars.count - offset - 1
                    guard scalars[index] == content else { break }
                    stopCut = index
                }
                guard startCut < stopCut else { return "" }
                var output = String.UnicodeScalarView()
                output.append(contentsOf: scalars[startCut..<stopCut])
                return String(output)
            }
        case .wordPiece(let prefix, let cleanup):
            return tokens.enumerated().map { index, token in
                var token = token
                if index != 0 {
                    if token.utf8.starts(with: prefix.utf8) {
                        token = String(Substring(token.unicodeScalars.dropFirst(prefix.unicodeScalars.count)))
                    } else {
                        token = " " + token
                    }
                }
                return cleanup ? Self.wordPieceCleanup(token) : token
            }
        case .bpe(let suffix):
            return tokens.enumerated().map { index, token in
                TextPattern.replaceLiteral(suffix, in: token, with: index == tokens.count - 1 ? "" : " ")
            }
        case .sequence(let decoders):
            return try decoders.reduce(tokens) { try $1.decodeChain($0, inputBytes: inputBytes, limit: limit) }
        }
    }

    /// The byte of a `<0xAB>` token, or nil.
    static func fallbackByte(_ token: String) -> UInt8? {
        let utf8 = Array(token.utf8)
        guard utf8.count == 6, utf8[0] == UInt8(ascii: "<"), utf8[1] == UInt8(ascii: "0"),
            utf8[2] == UInt8(ascii: "x"), utf8[5] == UInt8(ascii: ">"),
            let hex = String(validating: utf8[3..<5], as: UTF8.self)
        else { return nil }
        return UInt8(hex, radix: 16)
    }

    static func wordPieceCleanup(_ text: String) -> String {
        let replacements: [(String, String)] = [
            (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
            (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
        ]
        return replacements.reduce(text) { TextPattern.replaceLiteral($1.0, in: $0, with: $1.1) }
    }
}

/// A post-processor from the `post_processor` field: adds special tokens around the encoded ids.
indirect enum PostProcessor: Sendable {
    /// Pieces of a single-sequence template: special-token ids or the sequence itself.
    case template([TemplatePiece])
    case byteLevel
    case surround(prefix: [Int], suffix: [Int])
    case sequence([PostProcessor])

    enum TemplatePiece: Sendable {
        case special([Int])
        case sequence
    }

    static let supported = ["TemplateProcessing", "ByteLevel", "RobertaProcessing", "BertProcessing", "Sequence"]

    init(_ reader: JSONReader) throws {
        let type = try reader.type()
        switch type {
        case "TemplateProcessing":
            var specials: [String: [Int]] = [:]
            if let specialReader = reader.child("special_tokens") {
                for (name, entry) in try specialReader.members() {
                    specials[name] = try entry.required("ids").array().map { try $0.int() }
                }
            }
            var pieces: [TemplatePiece] = []
            for item in try reader.required("single").array() {
                if let special = item.child("SpecialToken") {
                    let name = try special.string("id")
                    guard let ids = specials[name] else {
                        throw special.fail("names the special token \"\(name)\", which is not in post_processor.special_tokens")
                    }
                    pieces.append(.special(ids))
                } else if let sequence = item.child("Sequence") {
                    // A single-sequence template may only refer to sequence A.
                    if try sequence.string("id") == "A" { pieces.append(.sequence) }
                } else {
                    throw item.fail("must be {\"SpecialToken\": ...} or {\"Sequence\": ...}")
                }
            }
            // process() copies the special ids and the sequence once per piece: bound what a template
            // adds and how often it repeats the text, so a small file cannot multiply a prompt.
            var added = 0, repeats = 0
            for piece in pieces {
                switch piece {
                case .special(let ids): added += ids.count
                case .sequence: repeats += 1
                }
            }
            guard added <= TokenizerLimits.maximumSequenceLength, repeats <= PostProcessor.maximumSequenceRepeats else {
                throw TokenizerError(
                    .limitExceeded,
                    "\(reader.source): \(reader.path) adds \(added) special token ids and repeats the text \(repeats) times; Craft's limits are \(TokenizerLimits.maximumSequenceLength) ids and \(PostProcessor.maximumSequenceRepeats) repetitions.")
            }
            self = .template(pieces)
        case "ByteLevel": self = .byteLevel
        case "RobertaProcessing", "BertProcessing":
            func id(_ key: String) throws -> Int {
                let pair = try reader.required(key).array()
                guard pair.count == 2 else { throw try reader.required(key).fail("must be [token, id]") }
                return try pair[1].int()
            }
            let cls = try id("cls")
            let sep = try id("sep")
            self = .surround(prefix: [cls], suffix: type == "RobertaProcessing" ? [sep] : [sep])
        case "Sequence":
            let processors = try reader.required("processors").array().map(PostProcessor.init)
            // Chained templates compose: each can add ids and repeat the text again.
            var added = 0, repeats = 1
            for processor in processors {
                let (adds, times) = processor.growth
                let (scaled, overflow1) = added.multipliedReportingOverflow(by: times)
                let (sum, overflow2) = scaled.addingReportingOverflow(adds)
                let (product, overflow3) = repeats.multipliedReportingOverflow(by: times)
                guard !overflow1, !overflow2, !overflow3, sum <= TokenizerLimits.maximumSequenceLength,
                    product <= PostProcessor.maximumSequenceRepeats
                else {
                    throw TokenizerError(
                        .limitExceeded,
                        "\(reader.source): \(reader.path) chains post-processors that add more than \(TokenizerLimits.maximumSequenceLength) special token ids or repeat the text more than \(PostProcessor.maximumSequenceRepeats) times; fix the post_processor.")
                }
                (added, repeats) = (sum, product)
            }
            self = .sequence(processors)
        default:
            throw reader.unsupported("post-processor", type, supported: Self.supported)
        }
    }

    /// The most times one post-processor (or a chain of them) may repeat the text: 4.
    static let maximumSequenceRepeats = 4

    /// What processing adds to a sequence: `ids` fixed ids, and the sequence `times` times.
    var growth: (ids: Int, times: Int) {
        switch self {
        case .template(let pieces):
            return pieces.reduce((0, 0)) { total, piece in
                switch piece {
                case .special(let ids): (total.0 + ids.count, total.1)
                case .sequence: (total.0, total.1 + 1)
                }
            }
        case .byteLevel: return (0, 1)
        case .surround(let prefix, let suffix): return (prefix.count + suffix.count, 1)
        case .sequence(let processors):
            // Checked on load to stay within the limits, so this cannot overflow.
            return processors.reduce((0, 1)) { total, processor in
                let (ids, times) = processor.growth
                return (total.0 * times + ids, total.1 * times)
            }
        }
    }

    func process(_ ids: [Int]) -> [Int] {
        switch self {
        case .template(let pieces):
            var output: [Int] = []
            output.reserveCapacity(ids.count + 4)
            for piece in pieces {
                switch piece {
                case .special(let special): output.append(contentsOf: special)
                case .sequence: output.append(contentsOf: ids)
                }
            }
            return output
        case .byteLevel:
            return ids
        case .surround(let prefix, let suffix):
            return prefix + ids + suffix
        case .sequence(let processors):
            return processors.reduce(ids) { $1.process($0) }
        }
    }
}
