// The OCI distribution protocol for bundles (docs/registry.md, "OCI registries"): blob uploads
// (POST, then one PUT or PATCH chunks and a PUT), manifests, and the registry's authentication
// (basic, or the bearer-token flow), over the same HTTP client as remote registries.
import Crypto
import CraftFiles
import Foundation

/// A user name and password for an OCI registry. Never printed.
public struct OCICredentials: Sendable {
    public var username: String
    public var password: String

    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }

    /// `CRAFT_OCI_USERNAME` and `CRAFT_OCI_PASSWORD` when both are set, else the `auths` entry for
    /// `host` in Docker's `~/.docker/config.json` (`$DOCKER_CONFIG/config.json`), as `docker login`,
    /// `oras login` and Helm write it.
    public static func locate(host: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> OCICredentials? {
        if let username = environment["CRAFT_OCI_USERNAME"], let password = environment["CRAFT_OCI_PASSWORD"], !username.isEmpty {
            return OCICredentials(username: username, password: password)
        }
        let directory = environment["DOCKER_CONFIG"].map { URL(fileURLWithPath: $0) }
            ?? HomeDirectory.locate(environment: environment).appendingPathComponent(".docker")
        guard let data = try? BoundedFile.read(directory.appendingPathComponent("config.json"), limit: 1 << 20),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let auths = object["auths"] as? [String: Any]
        else { return nil }
        let entry = (auths[host] ?? auths["https://\(host)"] ?? auths["http://\(host)"]) as? [String: Any]
        if let encoded = entry?["auth"] as? String, let decoded = Data(base64Encoded: encoded).flatMap({ String(data: $0, encoding: .utf8) }),
           let colon = decoded.firstIndex(of: ":") {
            return OCICredentials(username: String(decoded[..<colon]), password: String(decoded[decoded.index(after: colon)...]))
        }
        if let username = entry?["username"] as? String, let password = entry?["password"] as? String {
            return OCICredentials(username: username, password: password)
        }
        return nil
    }

    var basic: String { "Basic " + Data("\(username):\(password)".utf8).base64EncodedString() }
}

/// Requests to one OCI registry host, authenticated as its challenges ask.
final class OCIClient: @unchecked Sendable {
    let reference: OCIReference
    let base: URL
    let http: HTTPClient
    let credentials: OCICredentials?
    private var authorization: String?

    /// The largest manifest or config read (4 MiB, as distribution's own limit).
    static let documentLimit = 4 << 20
    /// Blobs larger than this are uploaded in chunks of this size.
    static let chunkSize = 32 << 20

    init(reference: OCIReference, allowInsecure: Bool, credentials: OCICredentials?) throws {
        self.reference = reference
        let bareHost = reference.host.split(separator: ":").first.map(String.init) ?? reference.host
        // Plain HTTP only to this machine, or when the user says the network is trusted.
        let scheme = HTTPClient.isLoopback(reference.host.hasPrefix("[") ? reference.host : bareHost) || allowInsecure ? "http" : "https"
        guard let base = URL(string: "\(scheme)://\(reference.host)") else {
            throw RegistryError(.badReference, "cannot make a URL of the host \(reference.host)")
        }
        self.base = base
        http = HTTPClient(allowInsecure: allowInsecure)
        self.credentials = credentials
    }

    func url(_ path: String) -> URL {
        URL(string: base.absoluteString + path) ?? base
    }

    /// A `Location` header resolved against the registry (it may be relative).
    func resolve(location: String) -> URL? {
        if location.hasPrefix("http://") || location.hasPrefix("https://") { return URL(string: location) }
        return URL(string: location, relativeTo: base)?.absoluteURL
    }

    var authorizationHeaders: [String: String] {
        authorization.map { ["Authorization": $0] } ?? [:]
    }

    /// Sends a request; on a 401 with a challenge, authenticates once and sends it again.
    func send(_ method: String, _ url: URL, headers: [String: String] = [:], body: Data? = nil, limit: Int = OCIClient.documentLimit,
              scope: String) throws -> (head: HTTPHead, body: Data) {
        var all = headers.merging(authorizationHeaders) { a, _ in a }
        let first = try http.send(method, url, headers: all, body: body, limit: limit)
        guard first.head.status == 401, let challenge = first.head["www-authenticate"] else { return first }
        try authenticate(challenge, scope: scope)
        all = headers.merging(authorizationHeaders) { a, _ in a }
        return try http.send(method, url, headers: all, body: body, limit: limit)
    }

    /// Answers a `WWW-Authenticate` challenge: basic credentials, or a token from the realm.
    func authenticate(_ challenge: String, scope: String) throws {
        let (scheme, parameters) = Self.parseChallenge(challenge)
        switch scheme.lowercased() {
        case "basic":
            guard let credentials else { throw missingCredentials() }
            authorization = credentials.basic
        case "bearer":
            guard let realm = parameters["realm"], var components = URLComponents(string: realm) else {
                throw RegistryError(.network, "\(reference.host) asked for a bearer token without a realm; it does not follow the distribution token flow")
            }
            var query = components.queryItems ?? []
            if let service = parameters["service"] { query.append(URLQueryItem(name: "service", value: service)) }
            query.append(URLQueryItem(name: "scope", value: parameters["scope"] ?? scope))
            components.queryItems = query
            guard let tokenURL = components.url else { throw RegistryError(.network, "the token realm \(realm) of \(reference.host) is not a URL") }
            let (head, body) = try http.send("GET", tokenURL, headers: credentials.map { ["Authorization": $0.basic] } ?? [:], limit: 1 << 20)
            guard head.status == 200 else {
                if head.status == 401 || head.status == 403 { throw credentials == nil ? missingCredentials() : rejectedCredentials() }
                throw RegistryError(.network, "the token service of \(reference.host) answered HTTP \(head.status)")
            }
            let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any]
            guard let token = (object?["token"] ?? object?["access_token"]) as? String, !token.isEmpty else {
                throw RegistryError(.network, "the token service of \(reference.host) answered without a token")
            }
            authorization = "Bearer " + token
        default:
            throw RegistryError(.network, "\(reference.host) asks for \(scheme) authentication, which Craft does not speak (basic and bearer tokens only)")
        }
    }

    /// `Bearer realm="…",service="…",scope="…"` → ("Bearer", [realm: …, service: …, scope: …]).
    static func parseChallenge(_ text: String) -> (String, [String: String]) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let space = trimmed.firstIndex(of: " ") else { return (trimmed, [:]) }
        let scheme = String(trimmed[..<space])
        var parameters: [String: String] = [:]
        var rest = Substring(trimmed[trimmed.index(after: space)...])
        while !rest.isEmpty {
            rest = rest.drop { $0 == " " || $0 == "," }
            guard let equals = rest.firstIndex(of: "=") else { break }
            let key = rest[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            rest = rest[rest.index(after: equals)...]
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                let end = rest.firstIndex(of: "\"") ?? rest.endIndex
                value = String(rest[..<end])
                rest = end < rest.endIndex ? rest[rest.index(after: end)...] : ""
            } else {
                let end = rest.firstIndex(of: ",") ?? rest.endIndex
                value = String(rest[..<end])
                rest = rest[end...]
            }
            parameters[key] = value
        }
        return (scheme, parameters)
    }

    func missingCredentials() -> RegistryError {
        RegistryError(.network, "\(reference.host) needs credentials: set CRAFT_OCI_USERNAME and CRAFT_OCI_PASSWORD, or log in with docker login / oras login \(reference.host)")
    }

    func rejectedCredentials() -> RegistryError {
        RegistryError(.network, "\(reference.host) refused the credentials (from CRAFT_OCI_USERNAME or the Docker config); check them")
    }

    func failure(_ head: HTTPHead, _ body: Data, doing what: String) -> RegistryError {
        if head.status == 401 { return credentials == nil ? missingCredentials() : rejectedCredentials() }
        let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any]
        let message = ((object?["errors"] as? [[String: Any]])?.first?["message"] as? String).map { ": \($0)" } ?? ""
        return RegistryError(.network, "\(reference.host) answered HTTP \(head.status) \(what)\(message)")
    }

    var pullScope: String { "repository:\(reference.repository):pull" }
    var pushScope: String { "repository:\(reference.repository):pull,push" }

    // MARK: - Blobs

    /// Whether the repository already has the blob `digest` (`HEAD`, as the distribution spec checks
    /// before an upload).
    func hasBlob(_ digest: String) throws -> Bool {
        let (head, _) = try send("HEAD", url("/v2/\(reference.repository)/blobs/\(digest)"), limit: 1 << 16, scope: pushScope)
        return head.status == 200
    }

    /// Uploads a blob from a file, unless the repository has it already: in one `PUT` when it fits a
    /// chunk, else in `PATCH` chunks and a final `PUT`.
    ///
    /// - Returns: whether the bytes were sent (`false` when the repository had them).
    @discardableResult
    func upload(file: URL, digest: String, size: Int64, label: String, progress: (@Sendable (String, Int64, Int64) -> Void)?) throws -> Bool {
        if try hasBlob(digest) {
            progress?(label, size, size)
            return false
        }
        let handle = try FileHandle(forReadingFrom: file)
        defer { try? handle.close() }
        guard size > Int64(Self.chunkSize) else {
            try upload(data: handle.readToEnd() ?? Data(), digest: digest, label: label)
            progress?(label, size, size)
            return true
        }
        var location = try startUpload(label)
        var sent: Int64 = 0
        while sent < size {
            guard let chunk = try handle.read(upToCount: Self.chunkSize), !chunk.isEmpty else { break }
            let (head, body) = try send("PATCH", location, headers: [
                "Content-Type": "application/octet-stream", "Content-Range": "\(sent)-\(sent + Int64(chunk.count) - 1)",
            ], body: chunk, limit: 1 << 16, scope: pushScope)
            guard head.status == 202, let next = head["location"].flatMap(resolve(location:)) else {
                throw failure(head, body, doing: "uploading \(label) (\(sent) of \(size) bytes sent)")
            }
            location = next
            sent += Int64(chunk.count)
            progress?(label, sent, size)
        }
        try finishUpload(at: location, digest: digest, body: Data(), label: label)
        return true
    }

    /// Uploads an in-memory blob (a config, an empty JSON, a signature) in one `PUT`.
    @discardableResult
    func upload(data: Data, digest: String? = nil, label: String) throws -> (digest: String, size: Int) {
        let digest = digest ?? Self.digest(of: data)
        try finishUpload(at: try startUpload(label), digest: digest, body: data, label: label)
        return (digest, data.count)
    }

    /// `POST …/blobs/uploads/`: the upload's location.
    private func startUpload(_ label: String) throws -> URL {
        let (head, body) = try send("POST", url("/v2/\(reference.repository)/blobs/uploads/"), limit: 1 << 16, scope: pushScope)
        guard head.status == 202, let location = head["location"].flatMap(resolve(location:)) else {
            throw failure(head, body, doing: "starting the upload of \(label)")
        }
        return location
    }

    /// The closing `PUT …?digest=` with the last bytes (all of them for a one-request upload).
    private func finishUpload(at location: URL, digest: String, body data: Data, label: String) throws {
        let (head, body) = try send("PUT", appendingDigest(location, digest), headers: ["Content-Type": "application/octet-stream"],
                                    body: data, limit: 1 << 16, scope: pushScope)
        guard head.status == 201 else { throw failure(head, body, doing: "uploading \(label)") }
    }

    private func appendingDigest(_ location: URL, _ digest: String) -> URL {
        let separator = location.absoluteString.contains("?") ? "&" : "?"
        let encoded = digest.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? digest
        return URL(string: location.absoluteString + separator + "digest=" + encoded) ?? location
    }

    /// Reads a small blob (a config, a signature) and checks its digest.
    func smallBlob(_ digest: String, size: Int, limit: Int) throws -> Data {
        guard size <= limit else {
            throw RegistryError(.digestMismatch, "\(reference) names a \(size)-byte blob where at most \(limit) bytes are expected; it is not a Craft artifact")
        }
        let (head, body) = try send("GET", url("/v2/\(reference.repository)/blobs/\(digest)"), limit: limit, scope: pullScope)
        guard head.status == 200 else { throw failure(head, body, doing: "fetching blob \(digest)") }
        guard Self.digest(of: body) == digest, body.count == size else {
            throw RegistryError(.digestMismatch, "blob \(digest) of \(reference) does not have that digest: it was modified on the registry; do not use it")
        }
        return body
    }

    // MARK: - Manifests

    /// Puts a manifest under `tag`; returns its digest.
    @discardableResult
    func putManifest(_ data: Data, tag: String) throws -> String {
        let (head, body) = try send("PUT", url("/v2/\(reference.repository)/manifests/\(tag)"),
                                    headers: ["Content-Type": OCIMediaType.imageManifest], body: data, limit: 1 << 16, scope: pushScope)
        guard head.status == 201 else { throw failure(head, body, doing: "putting the manifest \(reference.repository):\(tag)") }
        return Self.digest(of: data)
    }

    /// Fetches the manifest `reference` names, checked against its digest; `nil` when there is none.
    func manifest(_ name: String) throws -> (data: Data, digest: String)? {
        let (head, body) = try send("GET", url("/v2/\(reference.repository)/manifests/\(name)"),
                                    headers: ["Accept": "\(OCIMediaType.imageManifest), \(OCIMediaType.dockerManifest)"], scope: pullScope)
        if head.status == 404 { return nil }
        guard head.status == 200 else { throw failure(head, body, doing: "fetching the manifest \(reference.repository):\(name)") }
        let digest = Self.digest(of: body)
        if name.hasPrefix("sha256:"), digest != name {
            throw RegistryError(.digestMismatch, "the manifest \(reference) was asked by digest \(name) but has digest \(digest): it was modified on the registry; do not use it")
        }
        if let announced = head["docker-content-digest"], announced != digest {
            throw RegistryError(.digestMismatch, "the manifest of \(reference) has digest \(digest) but the registry announces \(announced): it was modified on the registry; do not use it")
        }
        return (body, digest)
    }

    static func digest(of data: Data) -> String {
        "sha256:" + SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }
}

/// The media types of Craft's OCI artifacts.
public enum OCIMediaType {
    public static let imageManifest = "application/vnd.oci.image.manifest.v1+json"
    static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    /// The manifest's `artifactType` for a bundle.
    public static let bundle = "application/vnd.craft.bundle.v1"
    /// The config blob: the bundle's `craft.json`.
    public static let bundleConfig = "application/vnd.craft.bundle.config.v1+json"
    /// The one layer: the `.craft` file (a gzip-compressed tar).
    public static let bundleLayer = "application/vnd.craft.bundle.v1.tar+gzip"
    /// The `artifactType` of a signature artifact (tag `sha256-<manifest hex>.sig`).
    public static let signature = "application/vnd.craft.signature.v1"
    /// A signature layer: the `.sig` file.
    public static let signatureLayer = "application/vnd.craft.signature.v1+json"
    /// The empty config of a signature artifact.
    public static let emptyConfig = "application/vnd.oci.empty.v1+json"
}
