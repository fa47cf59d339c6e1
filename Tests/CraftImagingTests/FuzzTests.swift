import Foundation
import Testing

@testable import CraftImaging

/// SplitMix64: a small seeded generator so the fuzz cases are the same on every run.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Fuzzing: mutated and truncated files never crash")
struct FuzzTests {
    static let seeds = ["rgb8_interlaced.png", "rgba16_interlaced.png", "palette4_trns.png", "gray1.png",
                        "rgb_baseline.jpg", "rgb_progressive.jpg", "gray.jpg", "rgb_444.jpg"]

    /// One mutation: truncate, flip bytes, overwrite a run, insert or delete bytes.
    static func mutate(_ input: [UInt8], _ random: inout SplitMix64) -> [UInt8] {
        var bytes = input
        switch Int.random(in: 0..<5, using: &random) {
        case 0:
            bytes = Array(bytes.prefix(Int.random(in: 0..<bytes.count, using: &random)))
        case 1:
            for _ in 0..<Int.random(in: 1...8, using: &random) {
                bytes[Int.random(in: 0..<bytes.count, using: &random)] ^= UInt8.random(in: 1...255, using: &random)
            }
        case 2:
            let start = Int.random(in: 0..<bytes.count, using: &random)
            let end = min(bytes.count, start + Int.random(in: 1...64, using: &random))
            for index in start..<end { bytes[index] = UInt8.random(in: 0...255, using: &random) }
        case 3:
            let at = Int.random(in: 0...bytes.count, using: &random)
            bytes.insert(contentsOf: (0..<Int.random(in: 1...16, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }, at: at)
        default:
            let start = Int.random(in: 0..<bytes.count, using: &random)
            bytes.removeSubrange(start..<min(bytes.count, start + Int.random(in: 1...32, using: &random)))
        }
        // Keep the magic bytes most of the time so the decoders, not the sniffer, see the damage.
        if Int.random(in: 0..<10, using: &random) != 0 {
            for index in 0..<min(4, input.count, bytes.count) { bytes[index] = input[index] }
        }
        return bytes
    }

    /// Mutates the data of one PNG chunk and recomputes its CRC, so the damage gets past libpng's
    /// CRC check into its header, palette, transparency and zlib handling.
    static func mutateChunk(_ input: [UInt8], _ random: inout SplitMix64) -> [UInt8] {
        var bytes = input
        var chunks: [(offset: Int, length: Int)] = []
        var offset = 8
        while offset + 12 <= bytes.count {
            let length = Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
            guard offset + 12 + length <= bytes.count else { break }
            if length > 0 { chunks.append((offset, length)) }
            offset += 12 + length
        }
        guard let chunk = chunks.randomElement(using: &random) else { return bytes }
        for _ in 0..<Int.random(in: 1...4, using: &random) {
            let index = chunk.offset + 8 + Int.random(in: 0..<chunk.length, using: &random)
            bytes[index] = Int.random(in: 0..<2, using: &random) == 0 ? UInt8.random(in: 0...255, using: &random) : bytes[index] ^ 0x80
        }
        let crc = crc32(bytes[(chunk.offset + 4)..<(chunk.offset + 8 + chunk.length)])
        let crcAt = chunk.offset + 8 + chunk.length
        for shift in 0..<4 { bytes[crcAt + shift] = UInt8(truncatingIfNeeded: crc >> (24 - 8 * UInt32(shift))) }
        return bytes
    }

    @Test("300 seeded chunk mutations with valid CRCs give images or ImageErrors")
    func chunkMutations() throws {
        var random = SplitMix64(state: 0xBADC0DE)
        let limits = ImageLimits(maxWidth: 2048, maxHeight: 2048, maxPixels: 1 << 20)
        let seeds = ["rgb8_interlaced.png", "rgba16_interlaced.png", "palette4_trns.png", "graya8.png", "rgb8_trns.png", "gray16_srgb.png"]
        var decoded = 0, failed = 0
        for round in 0..<300 {
            let seed = seeds[round % seeds.count]
            let bytes = Self.mutateChunk([UInt8](try Fixtures.data(seed)), &random)
            do {
                let image = try Image(data: Data(bytes), name: "chunk-fuzz-\(round)", limits: limits)
                #expect(image.samples.count == image.width * image.height * image.channels)
                decoded += 1
            } catch let error as ImageError {
                #expect(error.message.contains("chunk-fuzz-\(round)"))
                failed += 1
            }
        }
        #expect(decoded > 10 && failed > 50, "decoded \(decoded), failed \(failed)")
    }

    @Test("400 seeded mutations of PNG and JPEG fixtures give images or ImageErrors")
    func mutations() throws {
        var random = SplitMix64(state: 0xC0FFEE)
        let limits = ImageLimits(maxWidth: 2048, maxHeight: 2048, maxPixels: 1 << 20)
        var decoded = 0, failed: [ImageError.Code: Int] = [:]
        for round in 0..<400 {
            let seed = Self.seeds[round % Self.seeds.count]
            let bytes = Self.mutate([UInt8](try Fixtures.data(seed)), &random)
            do {
                let image = try Image(data: Data(bytes), name: "fuzz-\(round)-\(seed)", limits: limits)
                #expect(image.samples.count == image.width * image.height * image.channels)
                decoded += 1
            } catch let error as ImageError {
                #expect(error.message.contains("fuzz-\(round)-\(seed)"), "\(error.message)")
                failed[error.code, default: 0] += 1
            }
        }
        // Both outcomes must occur, or the mutations are not exercising the decoders.
        #expect(decoded > 10)
        #expect(failed.values.reduce(0, +) > 100)
        #expect(failed[.corrupt] != nil && failed[.truncated] != nil)
    }
}
