// HTTP for remote registries: blocking GETs over Foundation's URLSession (libcurl on Linux), with
// bodies streamed to a sink so that large downloads never sit in memory and small documents are
// bounded while they arrive.
import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// An HTTP response's status line and headers (names lowercased).
struct HTTPHead: Sendable {
    var status: Int
    var headers: [String: String]

    subscript(_ name: String) -> String? { headers[name.lowercased()] }
}

/// Blocking HTTP GETs for the registry's command-line use.
///
/// Plain `http://` is refused unless the host is a loopback address or `allowInsecure` is set: an
/// index fetched in clear text could be rewritten on the way (bundle digests come from it).
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
    func send(_ method: String, _ url: URL, headers: [String: String] = [:], body requestBody: Data? = nil,
              limit: Int) throws -> (head: HTTPHead, body: Data) {
        var body = Data()
        let head = try stream(url, method: method, headers: headers, body: requestBody) { head, chunk in
            guard (200..<300).contains(head.status) || body.count < 4096 else { return }
            body.append(chunk)
            if body.count > limit {
                throw RegistryError(.corruptIndex, "\(url.absoluteString) is larger than \(limit) bytes, more than any registry document; the server is not serving a Craft registry")
            }
        }
        return (head, body)
    }

    /// GETs `url`, handing each chunk of the body to `sink` as it arrives (with the response's head).
    /// An error thrown by `sink` cancels the transfer and is rethrown.
    func stream(_ url: URL, method: String = "GET", headers: [String: String] = [:], body: Data? = nil,
                sink: @escaping (HTTPHead, Data) throws -> Void) throws -> HTTPHead {
        guard Self.isAllowed(url, allowInsecure: allowInsecure) else {
            throw RegistryError(.usage, "\(url.absoluteString) is plain HTTP to a host that is not this machine; use https://, or pass --insecure if you trust the network")
        }
        var request = URLRequest(url: url, cachePolicy: .reloadIgnoringLocalAndRemoteCacheData, timeoutInterval: timeout)
        request.httpMethod = method
        request.httpBody = body
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let transfer = Transfer(sink: sink)
        let task = session.dataTask(with: request)
        router.add(transfer, for: task)
        task.resume()
        transfer.done.wait()
        router.remove(task)
        if let failure = transfer.failure { throw failure }
        if transfer.challenged, let head = transfer.head { return head }
        if let error = transfer.transportError {
            throw RegistryError(.network, "cannot fetch \(url.absoluteString) (\(Self.describe(error))); check the address and the network, or use --offline to read the cache", cause: error)
        }
        guard let head = transfer.head else {
            throw RegistryError(.network, "\(url.absoluteString) gave no HTTP response; check the address")
        }
        return head
    }

    /// One session for every request of the client, so connections (and TLS sessions) are reused.
    private lazy var session: URLSession = {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.urlCache = nil
        configuration.timeoutIntervalForRequest = timeout
        configuration.httpShouldSetCookies = false
        return URLSession(configuration: configuration, delegate: router, delegateQueue: nil)
    }()

    private lazy var router = TransferRouter(allowInsecure: allowInsecure)

    deinit {
        session.finishTasksAndInvalidate()
    }

    static func describe(_ error: Error) -> String {
        if let error = error as? URLError {
            switch error.code {
            case .timedOut: return "no answer within the time limit; raise CRAFT_HTTP_TIMEOUT (seconds) if the server is slow"
            case .cannotConnectToHost: return "the connection was refused"
            case .cannotFindHost, .dnsLookupFailed: return "the host name does not resolve"
            case .networkConnectionLost: return "the connection was lost"
            case .serverCertificateUntrusted, .serverCertificateHasBadDate, .serverCertificateNotYetValid, .serverCertificateHasUnknownRoot,
                 .secureConnectionFailed:
                return "the TLS connection failed: \(error.localizedDescription)"
            default: return error.localizedDescription
            }
        }
        return error.localizedDescription
    }
}

/// One transfer's head, body sink and outcome.
private final class Transfer: @unchecked Sendable {
    let sink: (HTTPHead, Data) throws -> Void
    let done = DispatchSemaphore(value: 0)
    var head: HTTPHead?
    var failure: Error?
    var transportError: Error?
    /// The server asked for authentication; `head` is its 401 and the transfer was cancelled.
    var challenged = false

    init(sink: @escaping (HTTPHead, Data) throws -> Void) {
        self.sink = sink
    }
}

/// The session's delegate: hands each task's events to its ``Transfer``.
private final class TransferRouter: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    private let lock = NSLock()
    private var transfers: [Int: Transfer] = [:]
    let allowInsecure: Bool

    init(allowInsecure: Bool) {
        self.allowInsecure = allowInsecure
    }

    func add(_ transfer: Transfer, for task: URLSessionTask) {
        lock.lock()
        transfers[task.taskIdentifier] = transfer
        lock.unlock()
    }

    func remove(_ task: URLSessionTask) {
        lock.lock()
        transfers[task.taskIdentifier] = nil
        lock.unlock()
    }

    private func transfer(_ task: URLSessionTask) -> Transfer? {
        lock.lock()
        defer { lock.unlock() }
        return transfers[task.taskIdentifier]
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        if let transfer = transfer(dataTask), let response = response as? HTTPURLResponse {
            transfer.head = HTTPHead(status: response.statusCode, headers: Self.headers(of: response))
        }
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        guard let transfer = transfer(dataTask), transfer.failure == nil, let head = transfer.head else { return }
        do {
            try transfer.sink(head, data)
        } catch {
            transfer.failure = error
            dataTask.cancel()
        }
    }

    /// Authentication is Craft's own (OCIClient answers challenges itself). URLSession on Linux would
    /// otherwise hold a 401 forever: the task is cancelled and the 401's head handed over as the answer.
    func urlSession(_ session: URLSession, task: URLSessionTask, didReceive challenge: URLAuthenticationChallenge,
                    completionHandler: @escaping (URLSession.AuthChallengeDisposition, URLCredential?) -> Void) {
        if let transfer = transfer(task), let response = challenge.failureResponse as? HTTPURLResponse {
            transfer.head = HTTPHead(status: response.statusCode, headers: Self.headers(of: response))
            transfer.challenged = true
        }
        completionHandler(.cancelAuthenticationChallenge, nil)
    }

    static func headers(of response: HTTPURLResponse) -> [String: String] {
        var headers: [String: String] = [:]
        for (name, value) in response.allHeaderFields {
            if let name = name as? String, let value = value as? String { headers[name.lowercased()] = value }
        }
        return headers
    }

    /// Redirects are followed only to addresses the first request could have had (no https → http).
    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void) {
        guard let target = request.url, HTTPClient.isAllowed(target, allowInsecure: allowInsecure) else {
            transfer(task)?.failure = RegistryError(.usage, "\(response.url?.absoluteString ?? "the registry") redirects to \(request.url?.absoluteString ?? "an invalid address"), which is plain HTTP to another machine; refusing to follow it (pass --insecure if you trust the network)")
            completionHandler(nil)
            task.cancel()
            return
        }
        completionHandler(request)
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        guard let transfer = transfer(task) else { return }
        if let error, transfer.failure == nil { transfer.transportError = error }
        transfer.done.signal()
    }
}
