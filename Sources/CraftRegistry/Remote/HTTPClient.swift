// HTTP for remote registries and OCI distribution: blocking requests over libcurl's easy interface
// (the engine the `curl` command runs), with bodies handed to a sink in libcurl's own buffer so that
// large downloads are written and hashed in place and never sit in memory, and small documents are
// bounded while they arrive.
import CCurl
import Foundation

/// An HTTP response's status line and headers (names lowercased).
struct HTTPHead: Sendable {
    var status: Int
    var headers: [String: String]

    subscript(_ name: String) -> String? { headers[name.lowercased()] }
}

/// Blocking HTTP requests for the registry's command-line use.
///
/// Plain `http://` is refused unless the host is a loopback address or `allowInsecure` is set: an
/// index fetched in clear text could be rewritten on the way (bundle digests come from it). Redirects
/// are followed here, not by libcurl, so that each hop is held to the same rule (no https → http) and
/// credentials are not sent on to another host. Connections are kept alive between requests: each
/// transfer borrows an idle libcurl handle (one per transfer in flight) and returns it.
final class HTTPClient: @unchecked Sendable {
    /// The seconds a request may wait for the next bytes (`CRAFT_HTTP_TIMEOUT`, default 60).
    let timeout: TimeInterval
    let allowInsecure: Bool

    init(timeout: TimeInterval = HTTPClient.standardTimeout(), allowInsecure: Bool = false) {
        self.timeout = timeout
        self.allowInsecure = allowInsecure
    }

    static func standardTimeout(environment: [String: String] = ProcessInfo.processInfo.environment) -> TimeInterval {
        environment["CRAFT_HTTP_TIMEOUT"].flatMap(TimeInterval.init).flatMap { $0 > 0 ? $0 : nil } ?? 60
    }

    /// Whether `url` may be fetched: https, or http to a loopback host (or with `allowInsecure`).
    static func isAllowed(_ url: URL, allowInsecure: Bool) -> Bool {
        switch url.scheme?.lowercased() {
        case "https": return true
        case "http": return allowInsecure || isLoopback(url.host ?? "")
        default: return false
        }
    }

    static func isLoopback(_ host: String) -> Bool {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        return bare == "localhost" || bare == "::1" || bare.hasPrefix("127.")
    }

    /// GETs `url` into memory, at most `limit` bytes.
    ///
    /// - Returns: the head and the body (empty for 304 and for errors beyond their first 4 KiB).
    func get(_ url: URL, headers: [String: String] = [:], limit: Int) throws -> (head: HTTPHead, body: Data) {
        try send("GET", url, headers: headers, limit: limit)
    }

    /// Sends a request with an optional body and reads the response into memory, at most `limit` bytes.
    func send(_ method: String, _ url: URL, headers: [String: String] = [:], body requestBody: Data? = nil, bodyFile: URL? = nil,
              limit: Int) throws -> (head: HTTPHead, body: Data) {
        var body = Data()
        let head = try stream(url, method: method, headers: headers, body: requestBody, bodyFile: bodyFile) { head, chunk in
            guard (200..<300).contains(head.status) || body.count < 4096 else { return }
            chunk.withMemoryRebound(to: UInt8.self) { body.append($0) }
            if body.count > limit {
                throw RegistryError(.corruptIndex, "\(url.absoluteString) is larger than \(limit) bytes, more than any registry document; the server is not serving a Craft registry")
            }
        }
        return (head, body)
    }

    /// Sends a request, handing each piece of the response body to `sink` as it arrives (with the
    /// response's head), in libcurl's buffer: valid only during the call. An error thrown by `sink`
    /// stops the transfer and is rethrown. Bodies of redirects that are followed are not handed over.
    ///
    /// - Returns: the final response's head (after at most ``maximumRedirects`` redirects).
    ///
    /// A request body is `body`, or the file `bodyFile` read as it is sent (never held in memory).
    func stream(_ url: URL, method: String = "GET", headers: [String: String] = [:], body: Data? = nil, bodyFile: URL? = nil,
                sink: (HTTPHead, UnsafeRawBufferPointer) throws -> Void) throws -> HTTPHead {
        var target = url
        var method = method
        var headers = headers
        var body = body
        for _ in 0...Self.maximumRedirects {
            guard Self.isAllowed(target, allowInsecure: allowInsecure) else {
                if target == url {
                    throw RegistryError(.usage, "\(url.absoluteString) is plain HTTP to a host that is not this machine; use https://, or pass --insecure if you trust the network")
                }
                throw RegistryError(.usage, "\(url.absoluteString) redirects to \(target.absoluteString), which is plain HTTP to another machine; refusing to follow it (pass --insecure if you trust the network)")
            }
            let handle = borrowHandle()
            defer { returnHandle(handle) }
            let (head, next) = try handle.perform(target, method: method, headers: headers, body: body,
                                                  bodyFile: method == "GET" ? nil : bodyFile, timeout: timeout, sink: sink)
            guard let next else { return head }
            guard let resolved = URL(string: next, relativeTo: target)?.absoluteURL else {
                throw RegistryError(.network, "\(target.absoluteString) redirects to \(next), which is not a URL")
            }
            if resolved.host?.lowercased() != target.host?.lowercased() || resolved.port != target.port {
                headers = headers.filter { $0.key.lowercased() != "authorization" }  // as curl: no credentials to another host
            }
            if head.status == 303 && method != "HEAD" {
                (method, body) = ("GET", nil)
                headers = headers.filter { $0.key.lowercased() != "content-type" }
            }
            target = resolved
        }
        throw RegistryError(.network, "\(url.absoluteString) redirects more than \(Self.maximumRedirects) times; check the address")
    }

    /// Redirects followed before giving up.
    static let maximumRedirects = 10

    private let pool = NSLock()
    private var idle: [CurlHandle] = []

    private func borrowHandle() -> CurlHandle {
        pool.lock()
        defer { pool.unlock() }
        return idle.popLast() ?? CurlHandle()
    }

    private func returnHandle(_ handle: CurlHandle) {
        pool.lock()
        defer { pool.unlock() }
        if idle.count < 8 { idle.append(handle) }
    }
}

/// One libcurl easy handle: its connection stays open for the next request to the same server.
private final class CurlHandle {
    private let handle: UnsafeMutableRawPointer

    /// libcurl's global state, set up once per process before the first handle.
    private static let initialized: Bool = curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK

    init() {
        _ = Self.initialized
        guard let handle = curl_easy_init() else { fatalError("libcurl could not create a handle (out of memory)") }
        self.handle = handle
    }

    deinit { curl_easy_cleanup(handle) }

    /// The state of one transfer, reached from libcurl's callbacks.
    private final class Transfer {
        let sink: (HTTPHead, UnsafeRawBufferPointer) throws -> Void
        var status = 0
        var headers: [String: String] = [:]
        var head: HTTPHead?
        var failure: Error?
        /// The file sent as the request body, or -1.
        var upload: Int32 = -1

        init(sink: @escaping (HTTPHead, UnsafeRawBufferPointer) throws -> Void) {
            self.sink = sink
        }

        /// A header line: a status line starts a new response (after `100 Continue` or a redirect).
        func header(_ line: String) {
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.hasPrefix("HTTP/") {
                let parts = trimmed.split(separator: " ", maxSplits: 2)
                status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
                headers = [:]
                head = nil
            } else if let colon = trimmed.firstIndex(of: ":") {
                let name = trimmed[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
                let value = trimmed[trimmed.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                headers[name] = headers[name].map { $0 + ", " + value } ?? value
            }
        }

        var isRedirect: Bool { [301, 302, 303, 307, 308].contains(status) && headers["location"] != nil }

        /// A piece of the body: handed to the sink unless it belongs to a redirect. `false` stops the transfer.
        func body(_ bytes: UnsafeRawBufferPointer) -> Bool {
            guard !isRedirect else { return true }
            let current = head ?? HTTPHead(status: status, headers: headers)
            head = current
            do {
                try sink(current, bytes)
                return true
            } catch {
                failure = error
                return false
            }
        }
    }

    /// Performs one request (no redirect followed).
    ///
    /// - Returns: the response's head, and the `Location` to go to next when it is a redirect.
    func perform(_ url: URL, method: String, headers: [String: String], body: Data?, bodyFile: URL?, timeout: TimeInterval,
                 sink: (HTTPHead, UnsafeRawBufferPointer) throws -> Void) throws -> (HTTPHead, String?) {
        try withoutActuallyEscaping(sink) { sink in
            let transfer = Transfer(sink: sink)
            if let bodyFile {
                transfer.upload = open(bodyFile.path, O_RDONLY | O_CLOEXEC)
                guard transfer.upload >= 0 else {
                    throw RegistryError(.io, "cannot read \(bodyFile.path) (\(String(cString: strerror(errno)))); check the path")
                }
            }
            defer { if transfer.upload >= 0 { close(transfer.upload) } }
            curl_easy_reset(handle)  // options only: the connection, DNS and TLS session caches stay
            var list: UnsafeMutablePointer<curl_slist>?
            defer { curl_slist_free_all(list) }
            let names = Set(headers.keys.map { $0.lowercased() })
            for (name, value) in headers { list = curl_slist_append(list, "\(name): \(value)") }
            var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
            let code: CURLcode = errorBuffer.withUnsafeMutableBufferPointer { errors in
                let context = Unmanaged.passUnretained(transfer).toOpaque()
                craft_curl_set_pointer(handle, CURLOPT_URL, url.absoluteString)
                craft_curl_set_long(handle, CURLOPT_NOSIGNAL, 1)
                craft_curl_set_long(handle, CURLOPT_FOLLOWLOCATION, 0)
                craft_curl_set_long(handle, CURLOPT_BUFFERSIZE, 256 << 10)
                craft_curl_set_long(handle, CURLOPT_CONNECTTIMEOUT_MS, Int(timeout * 1000))
                // "No byte for `timeout` seconds" rather than a limit on the whole transfer.
                craft_curl_set_long(handle, CURLOPT_LOW_SPEED_LIMIT, 1)
                craft_curl_set_long(handle, CURLOPT_LOW_SPEED_TIME, max(1, Int(timeout.rounded(.up))))
                craft_curl_set_pointer(handle, CURLOPT_USERAGENT, "craft")
                craft_curl_set_pointer(handle, CURLOPT_ERRORBUFFER, errors.baseAddress)
                craft_curl_set_pointer(handle, CURLOPT_HEADERDATA, context)
                craft_curl_set_callback(handle, CURLOPT_HEADERFUNCTION) { data, size, count, context in
                    guard let data, let context else { return 0 }
                    let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
                    let bytes = UnsafeRawBufferPointer(start: data, count: size * count)
                    transfer.header(String(decoding: bytes, as: UTF8.self))
                    return size * count
                }
                craft_curl_set_pointer(handle, CURLOPT_WRITEDATA, context)
                craft_curl_set_callback(handle, CURLOPT_WRITEFUNCTION) { data, size, count, context in
                    guard let data, let context else { return 0 }
                    let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
                    return transfer.body(UnsafeRawBufferPointer(start: data, count: size * count)) ? size * count : 0
                }
                if transfer.upload >= 0 {
                    var status = stat()
                    fstat(transfer.upload, &status)
                    craft_curl_set_long(handle, CURLOPT_UPLOAD, 1)
                    craft_curl_set_offset(handle, CURLOPT_INFILESIZE_LARGE, curl_off_t(status.st_size))
                    if method != "PUT" { craft_curl_set_pointer(handle, CURLOPT_CUSTOMREQUEST, method) }
                    if !names.contains("expect") { list = curl_slist_append(list, "Expect:") }
                    craft_curl_set_pointer(handle, CURLOPT_READDATA, context)
                    craft_curl_set_callback(handle, CURLOPT_READFUNCTION) { data, size, count, context in
                        guard let data, let context else { return Int(CURL_READFUNC_ABORT) }
                        let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
                        while true {
                            let read = Foundation.read(transfer.upload, data, size * count)
                            if read < 0 && errno == EINTR { continue }
                            return read < 0 ? Int(CURL_READFUNC_ABORT) : read
                        }
                    }
                    craft_curl_set_pointer(handle, CURLOPT_HTTPHEADER, list)
                    return curl_easy_perform(handle)
                }
                switch (method, body) {
                case ("GET", nil):
                    craft_curl_set_long(handle, CURLOPT_HTTPGET, 1)
                case ("HEAD", _):
                    craft_curl_set_long(handle, CURLOPT_NOBODY, 1)
                case (_, nil):
                    craft_curl_set_pointer(handle, CURLOPT_CUSTOMREQUEST, method)
                case (_, .some):
                    craft_curl_set_long(handle, CURLOPT_POST, 1)
                    craft_curl_set_pointer(handle, CURLOPT_CUSTOMREQUEST, method)
                    // libcurl would add a form content type and wait for `100 Continue` on large bodies.
                    if !names.contains("content-type") { list = curl_slist_append(list, "Content-Type:") }
                    if !names.contains("expect") { list = curl_slist_append(list, "Expect:") }
                }
                craft_curl_set_pointer(handle, CURLOPT_HTTPHEADER, list)
                guard let body else { return curl_easy_perform(handle) }
                return body.withUnsafeBytes { bytes in
                    craft_curl_set_offset(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(bytes.count))
                    // An empty body still needs a pointer, or libcurl would read one from a callback.
                    craft_curl_set_pointer(handle, CURLOPT_POSTFIELDS, bytes.baseAddress ?? UnsafeRawPointer(errors.baseAddress!))
                    return curl_easy_perform(handle)
                }
            }
            if let failure = transfer.failure { throw failure }
            guard code == CURLE_OK else {
                let detail = String(decoding: errorBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                let description = Self.describe(code, detail: detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail)
                throw RegistryError(.network, "cannot fetch \(url.absoluteString) (\(description)); check the address and the network, or use --offline to read the cache")
            }
            var status = 0
            craft_curl_get_long(handle, CURLINFO_RESPONSE_CODE, &status)
            let head = transfer.head ?? HTTPHead(status: status == 0 ? transfer.status : status, headers: transfer.headers)
            return (head, transfer.isRedirect ? transfer.headers["location"] : nil)
        }
    }

    static func describe(_ code: CURLcode, detail: String) -> String {
        switch code {
        case CURLE_OPERATION_TIMEDOUT: return "no answer within the time limit; raise CRAFT_HTTP_TIMEOUT (seconds) if the server is slow"
        case CURLE_COULDNT_CONNECT: return "the connection was refused"
        case CURLE_COULDNT_RESOLVE_HOST: return "the host name does not resolve"
        case CURLE_RECV_ERROR, CURLE_SEND_ERROR, CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE: return "the connection was lost: \(detail)"
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_CERTPROBLEM,
             CURLE_SSL_CIPHER, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH, CURLE_SSL_INVALIDCERTSTATUS:
            return "the TLS connection failed: \(detail)"
        default: return detail
        }
    }
}
