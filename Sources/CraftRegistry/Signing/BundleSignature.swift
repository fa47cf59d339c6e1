import CraftFiles
import Crypto
import Foundation

/// A detached Ed25519 signature over a bundle digest: the content of a `NAME-VERSION.craft.sig` file
/// and of the `signatures` array of an index record (format: docs/registry.md).
///
/// The signed message is the UTF-8 bytes of the digest string (`"sha256:<64 hex>"`), so a signature
/// covers exactly one `.craft` file's bytes and can be checked without unpacking anything.
public struct BundleSignature: Codable, Sendable, Equatable {
    /// The format tag of a signature file.
    public static let currentFormat = "craft.signature/v1"
    /// The only algorithm defined by `craft.signature/v1`.
    public static let ed25519 = "ed25519"

    /// Always ``currentFormat``.
    public var format: String
    /// Always ``ed25519``.
    public var algorithm: String
    /// The id of the signing key (``SigningKey/keyID(of:)``).
    public var keyID: String
    /// The signer's raw 32-byte public key, base64: it lets anyone check that the signature is
    /// intact; whether the signer is *trusted* is decided by the registry's trusted keys alone.
    public var publicKey: String
    /// The digest that was signed.
    public var digest: String
    /// The 64-byte signature, base64.
    public var signature: String

    enum CodingKeys: String, CodingKey {
        case format, algorithm, keyID = "key_id", publicKey = "public_key", digest, signature
    }

    public init(keyID: String, publicKey: String, digest: String, signature: String) {
        self.format = Self.currentFormat
        self.algorithm = Self.ed25519
        self.keyID = keyID
        self.publicKey = publicKey
        self.digest = digest
        self.signature = signature
    }

    /// Signs `digest` with `key`.
    public static func sign(digest: String, with key: SigningKey) throws -> BundleSignature {
        let bytes: Data
        do {
            bytes = try key.privateKey.signature(for: Data(digest.utf8))
        } catch {
            throw RegistryError(.badKey, "signing with key \(key.keyID) failed (\(error)); regenerate the key", cause: error)
        }
        return BundleSignature(
            keyID: key.keyID, publicKey: key.privateKey.publicKey.rawRepresentation.base64EncodedString(),
            digest: digest, signature: bytes.base64EncodedString())
    }

    /// Whether this signature is a valid Ed25519 signature by `key` over `digest`.
    ///
    /// - Throws: ``RegistryError/Code/badSignature`` when the signature names another digest, is
    ///   malformed, or does not verify. `source` names the signature in the message.
    public func verify(digest expected: String, with key: PublicKey, source: String) throws {
        guard format == Self.currentFormat, algorithm == Self.ed25519 else {
            throw RegistryError(
                .badSignature, "\(source): unsupported signature format \(format) / algorithm \(algorithm); expected \(Self.currentFormat) with ed25519")
        }
        guard digest == expected else {
            throw RegistryError(
                .badSignature, "\(source) signs \(digest) but the bundle's digest is \(expected): the signature belongs to other bytes or the bundle was modified")
        }
        guard let raw = Data(base64Encoded: signature), raw.count == 64 else {
            throw RegistryError(.badSignature, "\(source): the signature is not 64 bytes of base64; re-sign the bundle")
        }
        guard key.publicKey.isValidSignature(raw, for: Data(expected.utf8)) else {
            throw RegistryError(
                .badSignature, "\(source): the signature by key \(keyID) does not verify for \(expected): the bundle or the signature was tampered with")
        }
    }

    /// The public key embedded in the signature.
    ///
    /// - Throws: ``RegistryError/Code/badSignature`` when it is malformed or does not match ``keyID``.
    public func embeddedKey(source: String) throws -> PublicKey {
        guard let raw = Data(base64Encoded: publicKey),
            let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw)
        else {
            throw RegistryError(.badSignature, "\(source): publicKey is not 32 bytes of base64; re-sign the bundle")
        }
        let result = PublicKey(key)
        guard result.keyID == keyID else {
            throw RegistryError(.badSignature, "\(source): keyId \(keyID) does not match the embedded public key (\(result.keyID)); the signature was altered")
        }
        return result
    }

    /// Checks the signature against its own embedded public key: it is intact and covers `digest`.
    public func verifyIntegrity(digest expected: String, source: String) throws {
        try verify(digest: expected, with: embeddedKey(source: source), source: source)
    }

    /// Reads a `.sig` file.
    public static func read(from url: URL) throws -> BundleSignature {
        let data: Data
        do {
            data = try BoundedFile.read(url, limit: BoundedFile.smallDocumentLimit)
        } catch {
            throw RegistryError(.notFound, "cannot read the signature file \(url.path); check the path", cause: error)
        }
        return try decode(data, source: url.path)
    }

    /// Decodes a `.sig` file's bytes; `source` names them in errors.
    public static func decode(_ data: Data, source: String) throws -> BundleSignature {
        do {
            return try JSONDecoder().decode(BundleSignature.self, from: data)
        } catch {
            throw RegistryError(
                .badSignature, "\(source) is not a craft.signature/v1 file (\(JSONFormatting.describe(error))); re-create it with craft-registry sign", cause: error)
        }
    }

    /// Writes the signature as canonical JSON.
    public func write(to url: URL) throws {
        try AtomicFile.write(JSONFormatting.encode(self), to: url)
    }
}
