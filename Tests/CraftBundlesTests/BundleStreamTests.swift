import Foundation
import Testing

@testable import CraftBundles

/// Hand-made tar blocks, for streams libarchive's writer refuses to produce (data on a directory).
enum HandTar {
    /// A ustar header block for `path` with type flag `type` ("0" file, "5" directory) and `size`.
    static func header(_ path: String, type: Character, size: Int) -> Data {
        var block = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, _ offset: Int) {
            for (index, byte) in text.utf8.enumerated() { block[offset + index] = byte }
        }
        func octal(_ value: Int, _ offset: Int, _ width: Int) {
            let digits = String(value, radix: 8)
            put(String(repeating: "0", count: width - 1 - digits.count) + digits, offset)
        }
        put(path, 0)
        octal(type == "5" ? 0o755 : 0o644, 100, 8)
        octal(0, 108, 8)
        octal(0, 116, 8)
        octal(size, 124, 12)
        octal(0, 136, 12)
        block[156] = type.asciiValue!
        put("ustar", 257)
        put("00", 263)
        for index in 148..<156 { block[index] = 0x20 }
        let sum = block.reduce(0) { $0 + Int($1) }
        let digits = String(sum, radix: 8)
        put(String(repeating: "0", count: 6 - digits.count) + digits, 148)
        block[154] = 0
        return Data(block)
    }

    /// A regular file entry: header, data, zero padding to 512.
    static func file(_ path: String, _ data: Data) -> Data {
        header(path, type: "0", size: data.count) + data + Data(count: (512 - data.count % 512) % 512)
    }

    /// The end-of-archive marker: two zero blocks.
    static let end = Data(count: 1024)
}

@Suite("Bundle stream: one bounded pass, one gzip member, nothing hidden")
struct BundleStreamTests {
    let payload = Data("hello, bundle".utf8)

    /// The tar stream of a small valid bundle, cut right after its end-of-archive blocks (no record
    /// padding), and the offset where those blocks end.
    func canonicalTar(_ temp: TemporaryDirectory) throws -> Data {
        let url = temp.path("base-\(UUID().uuidString).craft")
        try writeRawBundle(url, [
            RawTarEntry(path: "craft.json", kind: .file(try manifestData(listing: [("a.bin", payload)]))),
            RawTarEntry(path: "a.bin", kind: .file(payload)),
        ])
        let tar = try GzipCodec.content(of: try Data(contentsOf: url))
        let lastNonZero = try #require(tar.lastIndex(where: { $0 != 0 }))
        let entriesEnd = (lastNonZero + 512) / 512 * 512
        return tar.prefix(entriesEnd) + HandTar.end
    }

    func write(_ temp: TemporaryDirectory, _ bytes: Data) throws -> URL {
        let url = temp.path("stream-\(UUID().uuidString).craft")
        try bytes.write(to: url)
        return url
    }

    /// Verify and unpack both refuse `url` with `code`; unpack leaves nothing behind.
    func expectRefused(_ url: URL, _ code: BundleError.Code, entry: String? = nil, in temp: TemporaryDirectory, sourceLocation: SourceLocation = #_sourceLocation) {
        _ = expectBundleError(code, entry: entry, sourceLocation: sourceLocation) { _ = try BundleArchive.verify(url) }
        let parent = temp.path("out-\(UUID().uuidString)")
        _ = expectBundleError(code, entry: entry, sourceLocation: sourceLocation) {
            _ = try BundleArchive.unpack(url, into: parent.appendingPathComponent("bundle"))
        }
        let left = (try? FileManager.default.contentsOfDirectory(atPath: parent.path)) ?? []
        #expect(left.isEmpty, "unpack left \(left) behind", sourceLocation: sourceLocation)
    }

    /// Reads `url` in one pass and returns the error and how many bytes had been decompressed.
    func refusal(_ url: URL, limits: BundleLimits = .default) throws -> (BundleError?, Int64) {
        let stream = try BundleStream(url: url, limits: limits)
        let reader: TarReader
        do {
            reader = try TarReader(stream: stream)
        } catch let error as BundleError {
            return (error, stream.uncompressedBytes)
        }
        do {
            _ = try BundleArchive.readWhole(reader, bundle: url, limits: limits, sink: nil, expectedDigest: nil)
            return (nil, reader.stream.uncompressedBytes)
        } catch let error as BundleError {
            return (error, reader.stream.uncompressedBytes)
        }
    }

    @Test("zeros after the tar end inside the gzip member trip after at most one tar record, not after decompressing them")
    func zerosAfterTheTarEndAreBounded() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let tar = try canonicalTar(temp)
        // 1 GiB of zeros after the end-of-archive blocks: about 1 MB compressed.
        let bomb = try write(temp, try GzipCodec.member([.bytes(tar), .zeros(1 << 30)]))
        let (error, decompressed) = try refusal(bomb)
        #expect(error?.code == .corruptArchive, "\(String(describing: error))")
        #expect(error?.message.contains(bomb.lastPathComponent) == true)
        #expect(decompressed < 2 << 20, "decompressed \(decompressed) bytes before refusing")
        expectRefused(bomb, .corruptArchive, in: temp)
    }

    @Test("zero padding up to the 10,240-byte tar record is accepted; one byte more, or any non-zero byte, is refused")
    func trailingBytesRule() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let tar = try canonicalTar(temp)
        let record = 10_240
        let padded = tar + Data(count: (record - tar.count % record) % record)
        #expect(padded.count % record == 0)
        for accepted in [tar, padded] {
            let url = try write(temp, try GzipCodec.member([.bytes(accepted)]))
            #expect(try BundleArchive.verify(url).files.map(\.path) == ["a.bin"])
        }
        let oneMore = try write(temp, try GzipCodec.member([.bytes(padded + Data(count: 1))]))
        expectRefused(oneMore, .corruptArchive, in: temp)
        // A payload no manifest describes, hidden where the record padding would be.
        let hidden = try write(temp, try GzipCodec.member([.bytes(tar + Data("#!/bin/sh\necho hidden\n".utf8))]))
        expectRefused(hidden, .corruptArchive, in: temp)
        let late = try write(temp, try GzipCodec.member([.bytes(padded.dropLast(1) + Data([0x01]))]))
        expectRefused(late, .corruptArchive, in: temp)
    }

    @Test("a bundle is exactly one gzip member: an empty member before it, or anything after it, is refused")
    func exactlyOneGzipMember() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let member = try GzipCodec.member([.bytes(try canonicalTar(temp))])
        _ = try BundleArchive.verify(try write(temp, member))
        let empty = try GzipCodec.member([])
        for bytes in [empty + member, member + empty, member + (try GzipCodec.member([.bytes(Data("x".utf8))])), member + Data([0])] {
            let (error, _) = try refusal(try write(temp, bytes))
            #expect(error?.code == .corruptArchive, "\(String(describing: error))")
            expectRefused(try write(temp, bytes), .corruptArchive, in: temp)
        }
    }

    @Test("a directory entry carrying data is refused at its header, before the data is decompressed")
    func directoryEntriesCarryNoData() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let manifest = try manifestData(listing: [("data/a.bin", payload)])
        let size = 64 << 20
        // GNU's directory type "D" keeps its size, and libarchive used to skip the data unread.
        let bytes = try GzipCodec.member([
            .bytes(HandTar.file("craft.json", manifest) + HandTar.header("data/", type: "D", size: size)),
            .zeros(Int64(size)),
            .bytes(HandTar.file("data/a.bin", payload) + HandTar.end),
        ])
        let url = try write(temp, bytes)
        let (error, decompressed) = try refusal(url)
        #expect(error?.code == .unsafeEntry && error?.entry == "data", "\(String(describing: error))")
        #expect(decompressed < 2 << 20, "decompressed \(decompressed) bytes before refusing")
        expectRefused(url, .unsafeEntry, entry: "data", in: temp)
        // A ustar directory ("5") with a size: libarchive reads its data as headers; refused, bounded.
        let ustar = try write(temp, try GzipCodec.member([
            .bytes(HandTar.file("craft.json", manifest) + HandTar.header("data/", type: "5", size: size)),
            .zeros(Int64(size)),
            .bytes(HandTar.file("data/a.bin", payload) + HandTar.end),
        ]))
        let (ustarError, ustarDecompressed) = try refusal(ustar)
        #expect(ustarError != nil)
        #expect(ustarDecompressed < 2 << 20, "decompressed \(ustarDecompressed) bytes before refusing")
        // The same stream without the directory's data is a valid bundle.
        let clean = try write(temp, try GzipCodec.member([
            .bytes(HandTar.file("craft.json", manifest) + HandTar.header("data/", type: "5", size: 0) + HandTar.file("data/a.bin", payload) + HandTar.end),
        ]))
        #expect(try BundleArchive.verify(clean).files.map(\.path) == ["data/a.bin"])
    }

    @Test("the ratio is checked after every inflated chunk: a bomb inside an entry trips just after the grace")
    func ratioTripsEarly() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let size = 64 << 20
        let sparse = temp.path("zeros.bin")
        #expect(FileManager.default.createFile(atPath: sparse.path, contents: nil))
        #expect(truncate(sparse.path, off_t(size)) == 0)
        let (hex, _) = try FileDigest.sha256(of: sparse)
        let manifest = try manifestData(listing: [("a.bin", Data())]) { json in
            json["files"] = [["path": "a.bin", "size": size, "sha256": hex]]
        }
        let url = try write(temp, try GzipCodec.member([
            .bytes(HandTar.file("craft.json", manifest) + HandTar.header("a.bin", type: "0", size: size)), .zeros(Int64(size)), .bytes(HandTar.end),
        ]))
        var limits = BundleLimits.default
        limits.maxCompressionRatio = 2_000
        #expect(try BundleArchive.verify(url, limits: limits).files.map(\.size) == [Int64(size)])
        // 10× of the 64 KiB read so far is less than the grace: the check must trip right after it.
        limits.maxCompressionRatio = 10
        limits.compressionRatioGrace = 1 << 20
        let (error, decompressed) = try refusal(url, limits: limits)
        #expect(error?.code == .limitExceeded && error?.entry == "a.bin", "\(String(describing: error))")
        #expect(decompressed < 2 << 20, "decompressed \(decompressed) bytes before refusing")
    }

    @Test("the whole gzip member is bounded by maxUncompressedSize, whatever it holds")
    func uncompressedSizeBound() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let url = try write(temp, try GzipCodec.member([.zeros(64 << 20)]))
        var limits = BundleLimits(maxEntries: 10, maxTotalSize: 1 << 20, maxCompressionRatio: 1e9, maxManifestSize: 1 << 10)
        limits.compressionRatioGrace = 1 << 30
        let stream = try BundleStream(url: url, limits: limits)
        let error = expectBundleError(.limitExceeded) {
            while try stream.next().count > 0 {}
        }
        #expect(error != nil)
        #expect(stream.uncompressedBytes <= limits.maxUncompressedSize + Int64(BundleStream.bufferSize))
        #expect(limits.maxUncompressedSize == (1 << 20) + (1 << 10) + 10 * 4096 + 10_240)
    }

    @Test("a device or FIFO is not read as a bundle")
    func onlyRegularFiles() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let fifo = temp.path("pipe.craft")
        #expect(mkfifo(fifo.path, 0o644) == 0)
        _ = expectBundleError(.corruptArchive) { _ = try BundleArchive.verify(fifo) }
        _ = expectBundleError(.notFound) { _ = try BundleArchive.verify(temp.url) }
    }
}

@Suite("Digest-checked unpack: what is unpacked is what was checked")
struct DigestCheckedUnpackTests {
    func packed(_ temp: TemporaryDirectory, name: String) throws -> PackedBundle {
        let source = temp.path("src-\(name)")
        try makeEncoderDirectory(at: source, name: name)
        return try BundleArchive.pack(directory: source, to: temp.path("\(name).craft"))
    }

    @Test("unpack and verify with an expected digest: a different file is refused and nothing is moved into place")
    func expectedDigest() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let bundle = try packed(temp, name: "right")
        let other = try packed(temp, name: "other")
        let unpacked = try BundleArchive.unpack(bundle.url, into: temp.path("out/ok"), expectedDigest: bundle.digest)
        #expect(unpacked.digest == bundle.digest && unpacked.manifest.name == "right")
        #expect(try BundleArchive.verify(bundle.url, expectedDigest: bundle.digest).digest == bundle.digest)

        let error = expectBundleError(.digestMismatch) {
            _ = try BundleArchive.unpack(other.url, into: temp.path("refused/bundle"), expectedDigest: bundle.digest)
        }
        #expect(error?.message.contains(other.url.path) == true, "\(error?.message ?? "")")
        #expect(error?.category == .integrity)
        #expect(temp.contents(of: "refused").isEmpty, "left \(temp.contents(of: "refused"))")
        _ = expectBundleError(.digestMismatch) { _ = try BundleArchive.verify(other.url, expectedDigest: bundle.digest) }
    }

    @Test("another bundle renamed over the path in a loop is never unpacked as the expected one")
    func renameRace() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let expected = try packed(temp, name: "genuine")
        let impostor = try packed(temp, name: "impostor")
        let path = temp.path("registry.craft")
        try FileManager.default.copyItem(at: expected.url, to: path)
        let stop = ManagedAtomicFlag()
        let swapper = Thread {
            var index = 0
            while !stop.isSet {
                let source = index % 2 == 0 ? impostor.url : expected.url
                let staged = temp.path("staged-\(index).craft")
                try? FileManager.default.copyItem(at: source, to: staged)
                rename(staged.path, path.path)
                index += 1
            }
        }
        swapper.start()
        defer { stop.set() }
        var outcomes: [String: Int] = [:]
        for attempt in 0..<60 {
            do {
                let unpacked = try BundleArchive.unpack(path, into: temp.path("runs/\(attempt)"), expectedDigest: expected.digest)
                #expect(unpacked.manifest.name == "genuine" && unpacked.digest == expected.digest)
                let manifest = try BundleManifest.load(from: unpacked.directory.appendingPathComponent("craft.json"))
                #expect(manifest.name == "genuine")
                outcomes["genuine", default: 0] += 1
            } catch let error as BundleError {
                #expect(error.code == .digestMismatch, "\(error.message)")
                #expect(!FileManager.default.fileExists(atPath: temp.path("runs/\(attempt)").path))
                outcomes["refused", default: 0] += 1
            }
        }
        stop.set()
        #expect(outcomes.values.reduce(0, +) == 60, "\(outcomes)")
    }

    @Test("a verified bundle's codebook is recomputed from the verified file, not from one renamed over it since")
    func compatibilityCandidateRereadsTheVerifiedFile() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let genuine = try packed(temp, name: "genuine")
        let impostor = try packed(temp, name: "impostor")
        let path = temp.path("shared.craft")
        try FileManager.default.copyItem(at: genuine.url, to: path)
        let verified = try BundleArchive.verify(path)
        guard case .recomputed = verified.compatibilityCandidate().recomputedCodebook else {
            Issue.record("the genuine bundle's codebook was not recomputed")
            return
        }
        try FileManager.default.copyItem(at: impostor.url, to: temp.path("staged.craft"))
        #expect(rename(temp.path("staged.craft").path, path.path) == 0)
        guard case .failed(let reason) = verified.compatibilityCandidate().recomputedCodebook else {
            Issue.record("the codebook was recomputed from a file that is not the verified one")
            return
        }
        #expect(reason.contains(genuine.digest), "\(reason)")
    }
}

/// A flag shared with a background thread.
final class ManagedAtomicFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
    func set() { lock.lock(); value = true; lock.unlock() }
}

@Suite("Unpack scratch directories and messages")
struct UnpackScratchTests {
    @Test("unpack errors name the user's bundle file, never the scratch directory")
    func errorsNameTheUsersFile() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let bundle = temp.path("users-bundle.craft")
        try writeRawBundle(bundle, [
            RawTarEntry(path: "craft.json", kind: .file(try manifestData(listing: [("a.bin", Data("a".utf8))]))),
            RawTarEntry(path: "a.bin", kind: .file(Data("a".utf8))), RawTarEntry(path: "extra.bin", kind: .file(Data("x".utf8))),
        ])
        let error = expectBundleError(.unlistedEntry) { _ = try BundleArchive.unpack(bundle, into: temp.path("out/b")) }
        #expect(error?.message.contains("users-bundle.craft") == true && error?.message.contains("craft-unpack") == false, "\(error?.message ?? "")")
        #expect(temp.contents(of: "out").isEmpty)
    }

    @Test("scratch directories carry the writer's process id and are tracked")
    func scratchNames() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        try makeEncoderDirectory(at: temp.path("src"))
        let packed = try BundleArchive.pack(directory: temp.path("src"), to: temp.path("e.craft"))
        let (extracted, scratch) = try BundleArchive.extractChecked(packed.url, paths: ["weights/codebook.safetensors"], limits: .default)
        let parsed = try #require(ScratchFiles.parse(extracted.directory.lastPathComponent))
        #expect(parsed.prefix == Substring(ScratchPrefix.extract) && parsed.pid == getpid())
        #expect(extracted.directory.deletingLastPathComponent().standardizedFileURL == ScratchFiles.directory.standardizedFileURL)
        #expect(FileManager.default.fileExists(atPath: extracted.url(for: "weights/codebook.safetensors").path))
        ScratchFiles.remove(scratch)
        #expect(!FileManager.default.fileExists(atPath: extracted.directory.path))
    }
}
