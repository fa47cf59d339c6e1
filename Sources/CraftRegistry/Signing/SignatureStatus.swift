import Foundation

/// What the signatures of a bundle establish, once each has been checked cryptographically.
public enum SignatureStatus: Sendable, Equatable {
    /// No signature accompanies the bundle.
    case unsigned
    /// At least one valid signature is by a trusted key (the ids of the trusted signers).
    case trusted(keyIDs: [String])
    /// Every signature is valid but none is by a trusted key (the signers' ids).
    case untrusted(keyIDs: [String])

    /// A stable word for JSON output: `unsigned`, `trusted` or `untrusted`.
    public var label: String {
        switch self {
        case .unsigned: "unsigned"
        case .trusted: "trusted"
        case .untrusted: "untrusted"
        }
    }

    /// The key ids involved.
    public var keyIDs: [String] {
        switch self {
        case .unsigned: []
        case .trusted(let ids), .untrusted(let ids): ids
        }
    }

    /// Checks every signature over `digest` and classifies them against `trustedKeys`.
    ///
    /// A signature by a trusted key id is verified with the *trusted* key (the embedded one is
    /// ignored); any other is verified with its embedded key. Any signature that does not verify is a
    /// failure even if others do: a tampered signature is evidence of tampering.
    ///
    /// - Parameter source: names the bundle in error messages.
    /// - Throws: ``RegistryError/Code/badSignature``.
    public static func evaluate(
        _ signatures: [BundleSignature], digest: String, trustedKeys: [PublicKey], source: String
    ) throws -> SignatureStatus {
        guard !signatures.isEmpty else { return .unsigned }
        var trusted: [String] = []
        var untrusted: [String] = []
        for (index, signature) in signatures.enumerated() {
            let name = signatures.count == 1 ? "the signature of \(source)" : "signature \(index + 1) of \(source)"
            if let key = trustedKeys.first(where: { $0.keyID == signature.keyID }) {
                try signature.verify(digest: digest, with: key, source: name)
                trusted.append(signature.keyID)
            } else {
                try signature.verifyIntegrity(digest: digest, source: name)
                untrusted.append(signature.keyID)
            }
        }
        return trusted.isEmpty ? .untrusted(keyIDs: untrusted) : .trusted(keyIDs: trusted)
    }

    /// Throws unless the status is ``trusted(keyIDs:)``: what `--require-signature` enforces.
    ///
    /// - Throws: ``RegistryError/Code/untrusted`` (exit 4).
    public func requireTrusted(source: String) throws {
        switch self {
        case .trusted: return
        case .unsigned:
            throw RegistryError(
                .untrusted, "\(source) is not signed and a signature is required; sign it with craft-registry sign, or drop --require-signature")
        case .untrusted(let ids):
            throw RegistryError(
                .untrusted, "\(source) is signed only by untrusted key\(ids.count == 1 ? "" : "s") \(ids.joined(separator: ", ")); trust the signer with craft-registry key trust KEY.pub if you trust it")
        }
    }
}
