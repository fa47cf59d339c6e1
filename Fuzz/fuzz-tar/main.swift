// Fuzzes the bundle reader below gzip: the input is the tar stream, wrapped here in one gzip member
// of stored deflate blocks (so mutations reach tar headers, pax records and entry data instead of
// dying on the CRC), then verified and unpacked as a `.craft` bundle.
// Property: unpacking writes nothing but its destination, and leaves nothing behind on failure.
import CraftBundles
import Foundation
import FuzzDriver

/// CRC-32 (IEEE), as gzip's trailer needs it.
let crcTable: [UInt32] = (0..<256).map { index in
    var value = UInt32(index)
    for _ in 0..<8 { value = value & 1 == 1 ? 0xEDB8_8320 ^ (value >> 1) : value >> 1 }
    return value
}

func crc32(_ data: Data) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in data { crc = crcTable[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
    return crc ^ 0xFFFF_FFFF
}

/// `data` as one gzip member of stored (uncompressed) deflate blocks.
func gzipStored(_ data: Data) -> Data {
    var out = Data([0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3])
    var offset = 0
    repeat {
        let count = min(65_535, data.count - offset)
        let last: UInt8 = offset + count == data.count ? 1 : 0
        out.append(last)
        out.append(contentsOf: [UInt8(count & 0xFF), UInt8(count >> 8), UInt8(~count & 0xFF), UInt8((~count >> 8) & 0xFF)])
        out.append(data[(data.startIndex + offset)..<(data.startIndex + offset + count)])
        offset += count
    } while offset < data.count
    for value in [crc32(data), UInt32(truncatingIfNeeded: data.count)] {
        withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
    }
    return out
}

let destination = fuzzScratch.appendingPathComponent("unpacked")

runFuzzer { data in
    let bundle = scratchFile("bundle.craft", gzipStored(data))
    _ = try? BundleArchive.verify(bundle)
    if (try? BundleArchive.unpack(bundle, into: destination)) != nil {
        try? FileManager.default.removeItem(at: destination)
    }
    let left = (try? FileManager.default.contentsOfDirectory(atPath: fuzzScratch.path)) ?? []
    require(Set(left).isSubset(of: ["bundle.craft"]), "unpacking left \(left.sorted()) in \(fuzzScratch.path)")
    // `make fuzz` gives each target a TMPDIR of its own: extraction directories must be gone too.
    let temporary = (try? FileManager.default.contentsOfDirectory(atPath: ScratchFiles.directory.path)) ?? []
    let strays = temporary.filter { !$0.hasPrefix("craft-fuzz-") }
    require(strays.isEmpty, "unpacking left \(strays.sorted()) in \(ScratchFiles.directory.path)")
}
