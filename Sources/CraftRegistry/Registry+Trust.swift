import Foundation

extension Registry {
    /// The public keys this registry trusts: every `keys/*.pub` file.
    ///
    /// - Throws: ``RegistryError/Code/badKey`` naming a malformed key file (a broken trust store is
    ///   never silently ignored).
    public func trustedKeys() throws -> [PublicKey] {
        guard FileManager.default.fileExists(atPath: keysURL.path) else { return [] }
        let files: [URL]
        do {
            files = try FileManager.default.contentsOfDirectory(at: keysURL, includingPropertiesForKeys: nil)
                .filter { $0.pathExtension == "pub" && !$0.lastPathComponent.hasPrefix(".") }
                .sorted { $0.lastPathComponent < $1.lastPathComponent }
        } catch {
            throw RegistryError(.io, "cannot list the trusted keys in \(keysURL.path) (\(error.localizedDescription))", cause: error)
        }
        return try files.map { try PublicKey.read(from: $0) }
    }

    /// Adds a public key to the registry's trusted keys (`keys/<key id>.pub`). Idempotent.
    ///
    /// - Returns: the key id.
    @discardableResult
    public func trust(_ key: PublicKey) throws -> String {
        try AtomicFile.createDirectory(root)
        return try FileLock.withExclusiveLock(at: lockURL) {
            try key.write(to: keysURL.appendingPathComponent("\(key.keyID).pub"))
            return key.keyID
        }
    }

    /// Checks the signatures recorded for a published version against this registry's trusted keys.
    public func signatureStatus(of bundle: ResolvedBundle) throws -> SignatureStatus {
        // A bundle is trusted by the keys of the registry it comes from.
        if !alternates.isEmpty { return try member(for: bundle).signatureStatus(of: bundle) }
        return try SignatureStatus.evaluate(
            bundle.record.signatures, digest: bundle.record.digest, trustedKeys: trustedKeys(),
            source: bundle.reference)
    }
}
