// Publishing to a registry served by `craft-registry serve`: the `.craft` file streamed in one
// authenticated `PUT /api/v1/bundles`, its signatures in the `Craft-Signature` header, the server
// verifying and publishing it exactly as a local publish does (docs/registry.md, "Serving a registry").
import CraftFiles
import Foundation

/// The JSON bodies of `craft-registry serve`'s API that both the server and this client read:
/// the publish result, and the error object of every refused request.
public enum RegistryWire {
    /// The answer to a `PUT /api/v1/bundles` that published (201) or found the same bytes (200).
    public struct Published: Codable, Sendable {
        public var outcome: String
        public var name: String
        public var version: String
        public var digest: String
        public var size: Int64

        public init(outcome: String, name: String, version: String, digest: String, size: Int64) {
            (self.outcome, self.name, self.version, self.digest, self.size) = (outcome, name, version, digest, size)
        }
    }

    /// `{"error": {"code", "message"}}`.
    public struct Failure: Codable, Sendable {
        public struct Detail: Codable, Sendable {
            public var code: String
            public var message: String
        }

        public var error: Detail

        public init(code: String, message: String) { error = Detail(code: code, message: message) }
    }
}

extension Registry {
    /// The request header that carries detached signatures with a `PUT`: each signature file's bytes
    /// in base64, separated by commas.
    public static let signatureHeader = "Craft-Signature"

    /// The environment variable holding the token for publishing to a served registry.
    public static let tokenVariable = "CRAFT_REGISTRY_TOKEN"

    /// Publishes `bundle` (with `signatures`) to the remote registry served by `craft-registry serve`,
    /// authenticated with `token`, and reads the record back from the registry's index.
    ///
    /// - Throws: ``RegistryError``: `usage` when there is no token, the server takes no writes or is
    ///   a static web server; `network` for a refused token or an unreachable server; the server's own
    ///   code (`conflict`, `bad-signature`, …) when it refuses the bundle, with its message.
    public func publishRemotely(_ bundle: URL, signatures: [BundleSignature] = [], token: String?) throws -> PublishResult {
        guard let remote else { return try publish(bundle, signatures: signatures) }
        let endpoint = remote.url(of: "api/v1/bundles")
        guard FileManager.default.fileExists(atPath: bundle.path) else {
            throw RegistryError(.notFound, "the bundle file \(bundle.path) does not exist; check the path")
        }
        guard let token, !token.isEmpty else {
            throw RegistryError(.usage, "publishing to \(remote.base.absoluteString) needs the server's token: set \(Self.tokenVariable) or pass --token-file FILE")
        }
        var headers = ["Authorization": "Bearer " + token, "Content-Type": "application/octet-stream"]
        if !signatures.isEmpty {
            headers[Self.signatureHeader] = try signatures.map { try JSONFormatting.encode($0).base64EncodedString() }.joined(separator: ",")
        }
        let (head, body) = try remote.client.send("PUT", endpoint, headers: headers, bodyFile: bundle, limit: 1 << 20)
        guard head.status == 200 || head.status == 201 else { throw publishFailure(head, body, endpoint: endpoint) }
        guard let answer = try? JSONDecoder().decode(RegistryWire.Published.self, from: body) else {
            throw RegistryError(.network, "\(endpoint.absoluteString) answered HTTP \(head.status) without the publish result; is it a craft-registry serve server?")
        }
        // The record as the index now has it (its shard was not read before in this process).
        let resolved = try resolve(BundleReference(name: answer.name, requirement: .exact(answer.version)))
        return PublishResult(outcome: PublishResult.Outcome(rawValue: answer.outcome) ?? .published, name: answer.name,
                             record: resolved.record, file: resolved.file)
    }

    /// The error for a refused `PUT`: the server's code and message when it sent them.
    private func publishFailure(_ head: HTTPHead, _ body: Data, endpoint: URL) -> RegistryError {
        let server = endpoint.absoluteString
        switch head.status {
        case 401:
            return RegistryError(.network, "\(server) refused the token (HTTP 401); check \(Self.tokenVariable) or --token-file against the server's --token-file")
        case 404, 405, 501:
            return RegistryError(.usage, "\(server) does not take bundles (HTTP \(head.status)): the registry is served by a static web server; publish in its directory on the server, or serve it with craft-registry serve --token-file")
        default:
            break
        }
        guard let failure = try? JSONDecoder().decode(RegistryWire.Failure.self, from: body) else {
            return RegistryError(.network, "\(server) answered HTTP \(head.status); check the server's log")
        }
        // The server names RegistryError's own codes (codes are equal by name); its two of its own
        // are requests this server cannot take.
        let code: RegistryError.Code = ["read-only", "too-large"].contains(failure.error.code) ? .usage : .init(name: failure.error.code)
        return RegistryError(code, "\(server) refused the bundle (HTTP \(head.status)): \(failure.error.message)")
    }
}
