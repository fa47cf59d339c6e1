// The registry server's JSON API (docs/registry.md, "Serving a registry"): lookups with the shapes of
// `craft-registry --json`, and publishing with a bearer token.
import CraftBundles
import CraftCore
import CraftRegistry
import Crypto
import Foundation
import Hummingbird
import NIOCore

/// An API error: an HTTP status and `{"error": {"code", "message"}}`.
struct RegistryAPIError: Error {
    var status: HTTPResponse.Status
    var code: String
    var message: String
}

/// Turns every error of an API route into a JSON error object with the right status.
struct APIErrorMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let failure = Self.apiError(error, request: request)
            // The pages answer with a page; the API and the registry's files with a JSON error.
            if request.uri.path == "/" || request.uri.path.hasPrefix("/bundle/") {
                return RegistryPages.errorPage(failure)
            }
            return RegistryAPI.json(RegistryWire.Failure(code: failure.code, message: failure.message), status: failure.status)
        }
    }

    static func apiError(_ error: any Error, request: Request) -> RegistryAPIError {
        if let error = error as? RegistryAPIError { return error }
        if let error = error as? RegistryError {
            let status: HTTPResponse.Status
            switch error.code {
            case .notFound, .noRegistry: status = .notFound
            case .conflict: status = .conflict
            case .usage, .badReference: status = .badRequest
            default: status = error.category == .integrity ? .unprocessableContent : .internalServerError
            }
            return RegistryAPIError(status: status, code: error.code.description, message: error.message)
        }
        if let error = error as? BundleError {
            return RegistryAPIError(status: .unprocessableContent, code: "invalid-bundle", message: error.message)
        }
        if let http = error as? any HTTPResponseError {
            if http.status == .notFound {
                return RegistryAPIError(status: .notFound, code: "not-found", message: "there is no route \(request.method) \(request.uri.path); see docs/registry.md, \"Serving a registry\"")
            }
            return RegistryAPIError(status: http.status, code: "http-\(http.status.code)", message: "\(request.method) \(request.uri.path) failed with HTTP \(http.status.code)")
        }
        return RegistryAPIError(status: .internalServerError, code: "internal", message: "\(error)")
    }
}

struct RegistryAPI: Sendable {
    let registry: Registry
    let settings: RegistryServerSettings

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    struct Listing: Encodable {
        var bundles: [BundleRow]
        var warnings: [String]
    }

    /// `GET /api/v1/bundles[?kind=K&domain=D]`: the newest visible version of every name.
    func list(_ request: Request) throws -> Response {
        let (bundles, problems) = try registry.list(kind: try kind(request), domain: request.uri.queryParameters.get("domain"))
        return Self.json(Listing(bundles: bundles.map(BundleRow.init), warnings: problems.map(\.message)))
    }

    struct Hit: Encodable {
        var bundle: BundleRow
        var score: Int
        var reasons: [String]
    }

    struct Results: Encodable {
        var query: String
        var results: [Hit]
        var warnings: [String]
    }

    /// `GET /api/v1/search?q=QUERY[&kind=K&domain=D]`: ranked as `craft-registry search`.
    func search(_ request: Request) throws -> Response {
        let query = request.uri.queryParameters.get("q") ?? ""
        let (hits, problems) = try registry.search(query, kind: try kind(request), domain: request.uri.queryParameters.get("domain"))
        return Self.json(Results(query: query, results: hits.map { Hit(bundle: BundleRow($0.bundle), score: $0.score, reasons: $0.reasons) },
                                 warnings: problems.map(\.message)))
    }

    struct Info: Encodable {
        var bundle: BundleRow
        var versions: [VersionRow]
    }

    /// `GET /api/v1/bundles/NAME` (or `NAME@VERSION`, `NAME@RANGE`): one version and every version of the name.
    func info(_ text: String) throws -> Response {
        let reference = try BundleReference(parsing: text.removingPercentEncoding ?? text)
        let bundle = try registry.resolve(reference)
        let shard = try registry.shard(named: reference.name)
        return Self.json(Info(
            bundle: BundleRow(bundle),
            versions: shard.versions.map(VersionRow.init)))
    }

    struct Partners: Encodable {
        var subject: BundleRow
        var partners: [BundleRow]
        var warnings: [String]
    }

    /// `GET /api/v1/bundles/REF/compatible`: the other side's bundles sharing the codebook hash.
    func compatible(_ text: String) throws -> Response {
        let (subject, partners, problems) = try registry.compatible(with: try BundleReference(parsing: text.removingPercentEncoding ?? text))
        return Self.json(Partners(subject: BundleRow(subject), partners: partners.map(BundleRow.init), warnings: problems.map(\.message)))
    }

    /// `PUT /api/v1/bundles` with a `.craft` file as the body and `Authorization: Bearer TOKEN`:
    /// verified and published exactly as `craft-registry publish` does. 201 when a version was added,
    /// 200 when the same bytes were already published.
    func publish(_ request: Request) async throws -> Response {
        guard let token = settings.token else {
            throw RegistryAPIError(status: .forbidden, code: "read-only", message: "this registry server takes no writes; start it with --token-file FILE to allow publishing")
        }
        let given = request.headers[.authorization].flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil } ?? ""
        guard Self.equalInConstantTime(given, token) else {
            var response = Self.json(RegistryWire.Failure(code: "unauthorized", message: "publishing needs Authorization: Bearer TOKEN with the server's token (--token-file)"),
                                     status: .unauthorized)
            response.headers[.wwwAuthenticate] = "Bearer realm=\"craft-registry\""
            return response
        }
        // Detached signatures ride along in one header: base64 signature files, comma-separated.
        var signatures: [BundleSignature] = []
        let values = request.headers.filter { $0.name.canonicalName == Registry.signatureHeader.lowercased() }.map(\.value)
        for (position, text) in values.joined(separator: ",").split(separator: ",").enumerated() {
            guard let data = Data(base64Encoded: text.trimmingCharacters(in: .whitespaces)) else {
                throw RegistryAPIError(status: .badRequest, code: "bad-signature", message: "\(Registry.signatureHeader) value \(position + 1) is not base64")
            }
            signatures.append(try BundleSignature.decode(data, source: "\(Registry.signatureHeader) value \(position + 1)"))
        }
        let upload = FileManager.default.temporaryDirectory.appendingPathComponent("craft-upload-\(getpid())-\(UUID().uuidString).craft")
        defer { try? FileManager.default.removeItem(at: upload) }
        guard FileManager.default.createFile(atPath: upload.path, contents: nil), let handle = try? FileHandle(forWritingTo: upload) else {
            throw RegistryAPIError(status: .internalServerError, code: "io", message: "cannot create the upload file \(upload.path)")
        }
        var received: Int64 = 0
        do {
            for try await buffer in request.body {
                received += Int64(buffer.readableBytes)
                guard received <= settings.maximumUploadBytes else {
                    throw RegistryAPIError(status: .contentTooLarge, code: "too-large", message: "the bundle is larger than \(settings.maximumUploadBytes) bytes, the most this server accepts")
                }
                try handle.write(contentsOf: Data(buffer.readableBytesView))
            }
            try handle.close()
        } catch {
            try? handle.close()
            throw error
        }
        let registry = self.registry
        let result = try await offload { [signatures] in try registry.publish(upload, signatures: signatures) }
        return Self.json(RegistryWire.Published(outcome: result.outcome.rawValue, name: result.name, version: result.record.version,
                                   digest: result.record.digest, size: result.record.size),
                         status: result.outcome == .published ? .created : .ok)
    }

    private func kind(_ request: Request) throws -> BundleKind? {
        guard let text = request.uri.queryParameters.get("kind") else { return nil }
        guard let kind = BundleKind(rawValue: text) else {
            throw RegistryAPIError(status: .badRequest, code: "usage", message: "kind must be encoder or backend, not \"\(text)\"")
        }
        return kind
    }

    /// Compares two secrets without leaking where they differ through timing.
    static func equalInConstantTime(_ a: String, _ b: String) -> Bool {
        let x = Array(SHA256.hash(data: Data(a.utf8))), y = Array(SHA256.hash(data: Data(b.utf8)))
        return zip(x, y).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
