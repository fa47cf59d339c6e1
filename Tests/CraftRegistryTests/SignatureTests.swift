import CraftBundles
import Foundation
import Testing
@testable import CraftRegistry

@Suite("Signatures: keys, sign, verify, trust, pull")
struct SignatureTests {
    @Test func keysRoundTripAndThePrivateKeyIsPrivate() throws {
        let scratch = try Scratch("sig")
        defer { scratch.remove() }
        let key = SigningKey.generate()
        let url = scratch.path("team")
        try key.write(to: url)
        let attributes = try FileManager.default.attributesOfItem(atPath: url.path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let read = try SigningKey.read(from: url)
        #expect(read.keyID == key.keyID)
        #expect(try PublicKey.read(from: url.appendingPathExtension("pub")) == key.publicKey)
        #expect(key.keyID.count == 16)
        // Refuses to overwrite a key.
        let overwrite = #expect(throws: RegistryError.self) { try SigningKey.generate().write(to: url) }
        #expect(overwrite?.code == .usage)
        // A damaged key file is a clear error.
        try Data("{\"format\":\"craft.signing-key/v1\"}".utf8).write(to: scratch.path("broken"))
        let broken = #expect(throws: RegistryError.self) { try SigningKey.read(from: scratch.path("broken")) }
        #expect(broken?.code == .badKey)
        #expect(broken?.message.contains("broken") == true)
    }

    @Test func signaturesVerifyAndTamperingIsDetected() throws {
        let key = SigningKey.generate()
        let digest = "sha256:" + String(repeating: "ab", count: 32)
        let signature = try BundleSignature.sign(digest: digest, with: key)
        #expect(try SignatureStatus.evaluate([signature], digest: digest, trustedKeys: [key.publicKey], source: "x") == .trusted(keyIDs: [key.keyID]))
        #expect(try SignatureStatus.evaluate([signature], digest: digest, trustedKeys: [], source: "x") == .untrusted(keyIDs: [key.keyID]))
        #expect(try SignatureStatus.evaluate([], digest: digest, trustedKeys: [], source: "x") == .unsigned)

        // Another bundle's digest.
        let other = "sha256:" + String(repeating: "cd", count: 32)
        let wrongDigest = #expect(throws: RegistryError.self) {
            try SignatureStatus.evaluate([signature], digest: other, trustedKeys: [key.publicKey], source: "x")
        }
        #expect(wrongDigest?.code == .badSignature)
        #expect(wrongDigest?.category == .integrity)

        // A forged signature claiming the trusted key id.
        var forged = try BundleSignature.sign(digest: digest, with: SigningKey.generate())
        forged.keyID = key.keyID
        let forgery = #expect(throws: RegistryError.self) {
            try SignatureStatus.evaluate([forged], digest: digest, trustedKeys: [key.publicKey], source: "x")
        }
        #expect(forgery?.code == .badSignature)

        // Flipped signature bytes.
        var flipped = signature
        var raw = try #require(Data(base64Encoded: signature.signature))
        raw[0] ^= 1
        flipped.signature = raw.base64EncodedString()
        #expect(throws: RegistryError.self) {
            try SignatureStatus.evaluate([flipped], digest: digest, trustedKeys: [], source: "x")
        }

        // Requiring a signature.
        let unsigned = #expect(throws: RegistryError.self) { try SignatureStatus.unsigned.requireTrusted(source: "x") }
        #expect(unsigned?.code == .untrusted)
        #expect(unsigned?.category == .integrity)
        #expect(throws: RegistryError.self) { try SignatureStatus.untrusted(keyIDs: ["k"]).requireTrusted(source: "x") }
        try SignatureStatus.trusted(keyIDs: ["k"]).requireTrusted(source: "x")
    }

    @Test func signedBundlesPublishVerifyAndPullWithTrust() throws {
        let scratch = try Scratch("sig")
        defer { scratch.remove() }
        let registry = Registry(root: scratch.path("reg"))
        let key = SigningKey.generate()
        let bundle = try TestBundles.packed(in: scratch.url, name: "derm-vq", version: "1.0.0", kind: .encoder)
        let digest = try BundleArchive.digest(of: bundle)
        let signature = try BundleSignature.sign(digest: digest, with: key)
        try signature.write(to: bundle.appendingPathExtension("sig"))

        // File verification picks FILE.sig up.
        let untrustedFile = try BundleVerification.verify(file: bundle, trustedKeys: [])
        #expect(untrustedFile.signatures == .untrusted(keyIDs: [key.keyID]))
        #expect(throws: RegistryError.self) {
            try BundleVerification.verify(file: bundle, trustedKeys: [], requireSignature: true)
        }

        let published = try registry.publish(bundle, signatures: [BundleSignature.read(from: bundle.appendingPathExtension("sig"))])
        #expect(published.record.signatures.map(\.keyID) == [key.keyID])
        let cache = BundleCache(root: scratch.path("cache"))
        let refused = #expect(throws: RegistryError.self) {
            try registry.pull(BundleReference(parsing: "derm-vq"), requireSignature: true, cache: cache)
        }
        #expect(refused?.code == .untrusted)

        try registry.trust(key.publicKey)
        #expect(try registry.trustedKeys() == [key.publicKey])
        let verified = try registry.verify(BundleReference(parsing: "derm-vq"), requireSignature: true)
        #expect(verified.signatures == .trusted(keyIDs: [key.keyID]))
        let pulled = try registry.pull(BundleReference(parsing: "derm-vq"), requireSignature: true, cache: cache)
        #expect(pulled.signatures == .trusted(keyIDs: [key.keyID]))
        #expect(pulled.directory.path == cache.directory(for: digest).path)

        // A signature over other bytes is refused at publish time.
        let other = try TestBundles.packed(in: scratch.url, name: "derm-vq", version: "1.1.0", kind: .encoder)
        let mismatch = #expect(throws: RegistryError.self) { try registry.publish(other, signatures: [signature]) }
        #expect(mismatch?.code == .badSignature)
        #expect(try registry.shard(named: "derm-vq").versions.count == 1)

        // Unsigned bundles are refused under --require-signature.
        try registry.publish(other)
        let unsigned = #expect(throws: RegistryError.self) {
            try registry.verify(BundleReference(parsing: "derm-vq@1.1.0"), requireSignature: true)
        }
        #expect(unsigned?.code == .untrusted)
        // Signing later adds the signature to the same version.
        let late = try BundleSignature.sign(digest: BundleArchive.digest(of: other), with: key)
        #expect(try registry.publish(other, signatures: [late]).outcome == .signaturesAdded)
        #expect(try registry.verify(BundleReference(parsing: "derm-vq@1.1.0"), requireSignature: true).signatures.label == "trusted")
    }

    @Test func aTamperedBundleInTheRegistryIsAnIntegrityFailure() throws {
        let scratch = try Scratch("sig")
        defer { scratch.remove() }
        let registry = Registry(root: scratch.path("reg"))
        let published = try registry.publish(TestBundles.packed(in: scratch.url, name: "derm-vq", version: "1.0.0", kind: .encoder))
        var bytes = try Data(contentsOf: published.file)
        bytes[bytes.count / 2] ^= 0xFF
        try bytes.write(to: published.file)

        let verify = #expect(throws: RegistryError.self) { try registry.verify(BundleReference(parsing: "derm-vq")) }
        #expect(verify?.code == .digestMismatch)
        #expect(verify?.category == .integrity)
        let cache = BundleCache(root: scratch.path("cache"))
        let pull = #expect(throws: RegistryError.self) { try registry.pull(BundleReference(parsing: "derm-vq"), cache: cache) }
        #expect(pull?.code == .digestMismatch)
        // Nothing was unpacked and no download is left behind.
        let left = (try? FileManager.default.contentsOfDirectory(atPath: cache.root.path)) ?? []
        #expect(left.isEmpty, "\(left)")
    }

    @Test func pullUnpacksIntoTheCacheAndRechecksReusedEntries() throws {
        let scratch = try Scratch("sig")
        defer { scratch.remove() }
        let registry = Registry(root: scratch.path("reg"))
        try registry.publish(TestBundles.packed(in: scratch.url, name: "derm-vq", version: "1.0.0", kind: .encoder))
        let cache = BundleCache(root: scratch.path("cache"))
        let first = try registry.pull(BundleReference(parsing: "derm-vq@^1"), cache: cache)
        #expect(!first.reusedCache)
        #expect(first.directory.lastPathComponent.hasPrefix("sha256-"))
        #expect(FileManager.default.fileExists(atPath: first.directory.appendingPathComponent("craft.json").path))
        #expect(FileManager.default.fileExists(atPath: first.directory.appendingPathComponent("codebook.safetensors").path))
        let second = try registry.pull(BundleReference(parsing: "derm-vq"), cache: cache)
        #expect(second.reusedCache)
        // Damage the cache: the next pull notices and unpacks again.
        try Data("changed".utf8).write(to: first.directory.appendingPathComponent("features.txt"))
        let third = try registry.pull(BundleReference(parsing: "derm-vq"), cache: cache)
        #expect(!third.reusedCache)
        #expect(try Data(contentsOf: third.directory.appendingPathComponent("features.txt")) != Data("changed".utf8))
        // -o DIR unpacks elsewhere and refuses an existing directory.
        let target = scratch.path("out/derm")
        let placed = try registry.pull(BundleReference(parsing: "derm-vq"), cache: cache, destination: target)
        #expect(placed.directory.standardizedFileURL.path == target.standardizedFileURL.path)
        #expect(throws: RegistryError.self) {
            try registry.pull(BundleReference(parsing: "derm-vq"), cache: cache, destination: target)
        }
    }
}
