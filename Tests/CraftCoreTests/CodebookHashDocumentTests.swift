import Foundation
import Testing
@testable import CraftCore

/// Pins the worked example of docs/codebook-hash.md: the bytes and hashes printed there.
@Suite struct CodebookHashDocumentTests {
    let values: [Float] = [1.0, -0.0, 0.5, -2.0, 0.25, 3.0]

    @Test func canonicalBytesMatchTheDocument() throws {
        let bytes = try CodebookHash.canonicalBytes(values: values, entries: 2, dimension: 3, depth: 1, metric: .l2)
        let hex = bytes.map { String(format: "%02x", $0) }.joined()
        #expect(bytes.count == 67)
        #expect(
            hex == "43524146542d434f4445424f4f4b00" + "01000000" + "00000000" + "01000000"
                + "0200000000000000" + "0300000000000000"
                + "0000803f" + "00000000" + "0000003f" + "000000c0" + "0000803e" + "00004040")
    }

    @Test func hashesMatchTheDocument() throws {
        let l2 = try CodebookHash.compute(values: values, entries: 2, dimension: 3, metric: .l2)
        let cosine = try CodebookHash.compute(values: values, entries: 2, dimension: 3, metric: .cosine)
        #expect(l2 == "sha256:d2b89bb902184a714c975acc296ac2c7a603635b26e38cb0d7a7356acb4b946b")
        #expect(cosine == "sha256:b7ef672871efeb2fb0bff886a6041a01e95c465c6bf1cff1e68d7143d774e1b3")
        #expect(try Codebook(values: values, entries: 2, dimension: 3, metric: .l2).hash == l2)
    }

    @Test func theDocumentStillShowsThePinnedHash() throws {
        // The document lives at the repository root; the test reads it so the two cannot drift apart.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("docs/codebook-hash.md"), encoding: .utf8)
        let l2 = try CodebookHash.compute(values: values, entries: 2, dimension: 3, metric: .l2)
        let cosine = try CodebookHash.compute(values: values, entries: 2, dimension: 3, metric: .cosine)
        #expect(text.contains(l2))
        #expect(text.contains(cosine))
        #expect(text.contains("0000803f 00000000 0000003f"))
    }

    @Test func negativeZeroHashesAsPositiveZero() throws {
        var positive = values
        positive[1] = 0
        #expect(
            try CodebookHash.compute(values: positive, entries: 2, dimension: 3, metric: .l2)
                == CodebookHash.compute(values: values, entries: 2, dimension: 3, metric: .l2))
    }

    @Test func oneChangedBitChangesTheHash() throws {
        var changed = values
        changed[5] = Float(bitPattern: changed[5].bitPattern ^ 1)
        #expect(
            try CodebookHash.compute(values: changed, entries: 2, dimension: 3, metric: .l2)
                != CodebookHash.compute(values: values, entries: 2, dimension: 3, metric: .l2))
    }
}
