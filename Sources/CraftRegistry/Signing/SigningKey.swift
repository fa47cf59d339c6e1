import CraftFiles
import Crypto
import Foundation

/// An Ed25519 private key for signing bundles, stored as a small JSON file with mode 0600.
public struct SigningKey {
    /// The format tag of a private key file.
    public static let currentFormat = "craft.signing-key/v1"

    /// The key.
    public let privateKey: Curve25519.Signing.PrivateKey

    /// The key id: the first 16 hex digits of SHA-256 over the raw 32-byte public key.
    public var keyID: String { Self.keyID(of: privateKey.publicKey) }

    /// The matching public key.
    public var publicKey: PublicKey { PublicKey(privateKey.publicKey) }

    /// A fresh random key.
    public static func generate() -> SigningKey {
        SigningKey(privateKey: Curve25519.Signing.PrivateKey())
    }

    init(privateKey: Curve25519.Signing.PrivateKey) {
        self.privateKey = privateKey
    }

    /// The key id of a public key.
    public static func keyID(of key: Curve25519.Signing.PublicKey) -> String {
        SHA256.hash(data: key.rawRepresentation).prefix(8).map { String(format: "%02x", $0) }.joined()
    }

    private struct File: Codable {
        var format: String
        var algorithm: String
        var keyId: String
        var privateKey: String
        enum CodingKeys: String, CodingKey {
            case format, algorithm, keyId = "key_id", privateKey = "private_key"
        }
    }

    /// Writes the private key to `url` (mode 0600) and the public key to `url` + `.pub` (mode 0644).
    ///
    /// Refuses to overwrite an existing key file: losing a key is not undoable.
    public func write(to url: URL) throws {
        let publicURL = url.appendingPathExtension("pub")
        for existing in [url, publicURL] where FileManager.default.fileExists(atPath: existing.path) {
            throw RegistryError(.usage, "\(existing.path) already exists; choose another --output path or delete the old key first")
        }
        let file = File(
            format: Self.currentFormat, algorithm: BundleSignature.ed25519, keyId: keyID,
            privateKey: privateKey.rawRepresentation.base64EncodedString())
        try AtomicFile.write(JSONFormatting.encode(file), to: url, permissions: 0o600)
        try publicKey.write(to: publicURL)
    }

    /// Reads a private key file.
    public static func read(from url: URL) throws -> SigningKey {
        let data: Data
        do {
            data = try BoundedFile.read(url, limit: BoundedFile.smallDocumentLimit)
        } catch {
            throw RegistryError(.notFound, "cannot read the key file \(url.path); check the --key path", cause: error)
        }
        let file: File
        do {
            file = try JSONDecoder().decode(File.self, from: data)
        } catch {
            throw RegistryError(
                .badKey, "\(url.path) is not a Craft signing key (\(JSONFormatting.describe(error))); create one with craft-registry key generate", cause: error)
        }
        guard file.format == currentFormat, file.algorithm == BundleSignature.ed25519 else {
            throw RegistryError(.badKey, "\(url.path) has format \(file.format) / algorithm \(file.algorithm); expected \(currentFormat) with ed25519")
        }
        guard let raw = Data(base64Encoded: file.privateKey),
            let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw)
        else {
            throw RegistryError(.badKey, "\(url.path): privateKey is not 32 bytes of base64; the key file is damaged")
        }
        let signing = SigningKey(privateKey: key)
        guard signing.keyID == file.keyId else {
            throw RegistryError(.badKey, "\(url.path): keyId \(file.keyId) does not match the key (\(signing.keyID)); the key file is damaged")
        }
        return signing
    }
}

/// An Ed25519 public key: the content of a `.pub` file and of a registry's `keys/` directory.
public struct PublicKey: Equatable {
    /// The format tag of a public key file.
    public static let currentFormat = "craft.public-key/v1"

    /// The key.
    public let publicKey: Curve25519.Signing.PublicKey

    /// The key id (``SigningKey/keyID(of:)``).
    public var keyID: String { SigningKey.keyID(of: publicKey) }

    public init(_ key: Curve25519.Signing.PublicKey) {
        self.publicKey = key
    }

    public static func == (lhs: PublicKey, rhs: PublicKey) -> Bool {
        lhs.publicKey.rawRepresentation == rhs.publicKey.rawRepresentation
    }

    private struct File: Codable {
        var format: String
        var algorithm: String
        var keyId: String
        var publicKey: String
        enum CodingKeys: String, CodingKey {
            case format, algorithm, keyId = "key_id", publicKey = "public_key"
        }
    }

    /// The canonical JSON of a `.pub` file.
    public func encoded() throws -> Data {
        try JSONFormatting.encode(
            File(format: Self.currentFormat, algorithm: BundleSignature.ed25519, keyId: keyID,
                 publicKey: publicKey.rawRepresentation.base64EncodedString()))
    }

    /// Writes the `.pub` file.
    public func write(to url: URL) throws {
        try AtomicFile.write(encoded(), to: url)
    }

    /// Reads a `.pub` file.
    public static func read(from url: URL) throws -> PublicKey {
        let data: Data
        do {
            data = try BoundedFile.read(url, limit: BoundedFile.smallDocumentLimit)
        } catch {
            throw RegistryError(.notFound, "cannot read the public key file \(url.path); check the path", cause: error)
        }
        let file: File
        do {
            file = try JSONDecoder().decode(File.self, from: data)
        } catch {
            throw RegistryError(
                .badKey, "\(url.path) is not a Craft public key (\(JSONFormatting.describe(error))); use the KEY.pub written by craft-registry key generate", cause: error)
        }
        guard file.format == currentFormat, file.algorithm == BundleSignature.ed25519 else {
            throw RegistryError(.badKey, "\(url.path) has format \(file.format) / algorithm \(file.algorithm); expected \(currentFormat) with ed25519")
        }
        guard let raw = Data(base64Encoded: file.publicKey),
            let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw)
        else {
            throw RegistryError(.badKey, "\(url.path): publicKey is not 32 bytes of base64; the key file is damaged")
        }
        let result = PublicKey(key)
        guard result.keyID == file.keyId else {
            throw RegistryError(.badKey, "\(url.path): keyId \(file.keyId) does not match the key (\(result.keyID)); the key file is damaged")
        }
        return result
    }
}
