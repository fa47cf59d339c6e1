// From an OpenAI chat request to what a pair answers: one image, one prompt, generation options,
// a keep ratio. Everything a client sends is checked here, with one sentence per refusal.
import CraftCore
import CraftFiles
import CraftImaging
import CraftPipeline
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A chat request read and checked: what the scheduler needs.
struct PreparedChat: Sendable {
    var model: String
    var image: RGBImage
    var prompt: String
    var options: GenerationOptions
    var keepRatio: Double
    var stream: Bool
    var includeUsage: Bool
}

/// Reads chat requests (docs/serve.md, "What a request may contain").
///
/// The prompt is the text of the conversation's `system`, `developer` and `user` messages, joined
/// by newlines in order; exactly one `image_url` part gives the image. Assistant turns are refused:
/// a pair's prompt template places one image and one prompt.
struct ChatRequestReader: Sendable {
    let settings: ServeSettings

    func read(_ body: Data) async throws(ServeError) -> PreparedChat {
        let request: ChatCompletionRequest
        do {
            request = try JSONDecoder().decode(ChatCompletionRequest.self, from: body)
        } catch DecodingError.dataCorrupted(let context) where context.codingPath.isEmpty {
            throw ServeError(.badRequest, "the body is not valid JSON; send a chat completion request as a JSON object")
        } catch let error as DecodingError {
            throw ServeError(.badRequest, "the body is not a chat completion request: \(Self.describe(error))")
        } catch {
            throw ServeError(.badRequest, "the body is not JSON: \(error.localizedDescription)")
        }
        let options = try generationOptions(request)
        let keepRatio = request.craft?.keepRatio ?? 1
        guard keepRatio > 0, keepRatio <= 1 else {
            throw ServeError(.badRequest, "craft.keep_ratio must be in (0, 1], such as 0.5 (1 keeps every visual token), not \(keepRatio)", param: "craft.keep_ratio")
        }
        let (imageURL, prompt) = try conversation(request.messages)
        let image = try await self.image(imageURL)
        return PreparedChat(
            model: request.model, image: image, prompt: prompt, options: options, keepRatio: keepRatio,
            stream: request.stream ?? false, includeUsage: request.streamOptions?.includeUsage ?? false)
    }

    /// Generation options from the request: greedy unless `temperature` > 0 (docs/serve.md).
    func generationOptions(_ request: ChatCompletionRequest) throws(ServeError) -> GenerationOptions {
        if let n = request.n, n != 1 {
            throw ServeError(.badRequest, "n is \(n) but craft serve gives one choice per request; send n = 1 or leave it out", param: "n")
        }
        if let topP = request.topP, topP < 1 {
            throw ServeError(.badRequest, "top_p \(topP) is not supported; use top_k to limit sampling, or leave top_p out", param: "top_p")
        }
        if request.logprobs == true {
            throw ServeError(.badRequest, "logprobs are not supported; leave logprobs out", param: "logprobs")
        }
        if let tools = request.tools, !tools.isEmpty {
            throw ServeError(.badRequest, "tools are not supported: a pair answers one question about one image", param: "tools")
        }
        let maximum = request.maxCompletionTokens ?? request.maxTokens ?? settings.maximumTokens
        guard maximum >= 1, maximum <= settings.maximumTokens else {
            throw ServeError(.badRequest, "max_tokens is \(maximum) but this server allows 1 to \(settings.maximumTokens) (craft serve --max-tokens)", param: "max_tokens")
        }
        let temperature = request.temperature ?? 0
        guard temperature >= 0, temperature <= 100, temperature.isFinite else {
            throw ServeError(.badRequest, "temperature must be between 0 (greedy) and 100, not \(temperature)", param: "temperature")
        }
        let topK = request.topK ?? 0
        guard topK >= 0 else { throw ServeError(.badRequest, "top_k must be 0 (no limit) or more, not \(topK)", param: "top_k") }
        let stops = request.stop?.values ?? []
        guard stops.count <= 4, stops.allSatisfy({ !$0.isEmpty && $0.count <= 256 }) else {
            throw ServeError(.badRequest, "stop takes up to 4 non-empty strings of at most 256 characters", param: "stop")
        }
        // Sampling without a seed gets a fresh one, as clients expect; with a seed it is reproducible.
        let seed = request.seed.map { UInt64(bitPattern: $0) } ?? (temperature > 0 ? UInt64.random(in: .min ... .max) : 0)
        return GenerationOptions(maximumNewTokens: maximum, temperature: Float(temperature), topK: topK, stopSequences: stops, seed: seed)
    }

    /// The one image URL and the prompt of the conversation.
    func conversation(_ messages: [ChatMessage]) throws(ServeError) -> (image: String, prompt: String) {
        guard !messages.isEmpty else {
            throw ServeError(.badRequest, "messages is empty; send a user message with an image_url part and a question", param: "messages")
        }
        var texts: [String] = []
        var images: [String] = []
        for (index, message) in messages.enumerated() {
            switch message.role {
            case "system", "developer", "user": break
            case "assistant", "tool", "function":
                throw ServeError(.badRequest, "messages[\(index)] is an \(message.role) turn, but a pair answers one question about one image: send only system and user messages", param: "messages")
            default:
                throw ServeError(.badRequest, "messages[\(index)] has role \"\(message.role)\"; use system or user", param: "messages")
            }
            for part in message.content {
                switch part {
                case .text(let text): texts.append(text)
                case .imageURL(let url):
                    guard message.role == "user" else {
                        throw ServeError(.badRequest, "messages[\(index)] is a \(message.role) message with an image; put the image in a user message", param: "messages")
                    }
                    images.append(url)
                case .unsupported(let type):
                    throw ServeError(.badRequest, "messages[\(index)] has a content part of type \"\(type)\"; craft serve reads text and image_url parts", param: "messages")
                }
            }
        }
        guard images.count == 1 else {
            throw ServeError(.badRequest, "the messages hold \(images.count) images but a pair answers about exactly one; send one image_url part", param: "messages")
        }
        let prompt = texts.joined(separator: "\n")
        guard !prompt.isEmpty else {
            throw ServeError(.badRequest, "the messages hold no text; ask a question about the image in a text part", param: "messages")
        }
        return (images[0], prompt)
    }

    /// Decodes the image a URL names: a base64 PNG or JPEG data URL, a file under
    /// ``ServeSettings/allowedFiles``, or an `http(s)` URL when ``ServeSettings/allowRemoteImages``.
    func image(_ url: String) async throws(ServeError) -> RGBImage {
        let data: Data
        let name: String
        if url.hasPrefix("data:") {
            (data, name) = (try Self.dataURL(url), "the image_url data")
        } else if url.hasPrefix("http://") || url.hasPrefix("https://") {
            (data, name) = (try await remote(url), url)
        } else if url.hasPrefix("file://") || url.hasPrefix("/") {
            let path = url.hasPrefix("file://") ? (URL(string: url)?.path ?? "") : url
            (data, name) = (try file(path), path)
        } else {
            throw ServeError(.badRequest, "image_url \"\(url.prefix(40))…\" is not a data:image/png or data:image/jpeg URL (nor a file or http URL)", param: "messages")
        }
        var limits = ImageLimits.default
        limits.maxPixels = settings.maximumImagePixels
        do {
            return try ImageInput.rgbImage(Image(data: data, name: name, limits: limits))
        } catch let error as ImageError {
            throw ServeError(error.code == .tooLarge ? .tooLarge : .badRequest, "cannot use the image: \(error.message)", param: "messages")
        } catch {
            throw ServeError(.badRequest, "cannot use the image \(name): \(error)", param: "messages")
        }
    }

    /// The bytes of a `data:image/png;base64,…` or `data:image/jpeg;base64,…` URL.
    static func dataURL(_ url: String) throws(ServeError) -> Data {
        guard let comma = url.firstIndex(of: ",") else {
            throw ServeError(.badRequest, "the image data URL has no comma before its data; send data:image/png;base64,…", param: "messages")
        }
        let header = url[url.index(url.startIndex, offsetBy: 5)..<comma].lowercased()
        let parts = header.split(separator: ";").map(String.init)
        guard let type = parts.first, ["image/png", "image/jpeg", "image/jpg"].contains(type) else {
            throw ServeError(.badRequest, "the image data URL is of type \"\(parts.first ?? "")\"; craft serve reads image/png and image/jpeg", param: "messages")
        }
        guard parts.contains("base64") else {
            throw ServeError(.badRequest, "the image data URL is not base64; send data:\(type);base64,…", param: "messages")
        }
        guard let data = Data(base64Encoded: String(url[url.index(after: comma)...]), options: .ignoreUnknownCharacters), !data.isEmpty else {
            throw ServeError(.badRequest, "the image data URL's base64 data is not valid", param: "messages")
        }
        return data
    }

    /// A local file, only inside ``ServeSettings/allowedFiles`` (symbolic links resolved first).
    func file(_ path: String) throws(ServeError) -> Data {
        guard let root = settings.allowedFiles else {
            throw ServeError(.badRequest, "image_url names a local file, which this server refuses; send a data URL, or start craft serve with --allow-files DIR", param: "messages")
        }
        let rootPath = root.resolvingSymlinksInPath().standardizedFileURL.path
        let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().standardizedFileURL.path
        guard resolved.hasPrefix(rootPath.hasSuffix("/") ? rootPath : rootPath + "/") else {
            throw ServeError(.badRequest, "image_url names \(path), which is outside the directory this server reads images from (--allow-files)", param: "messages")
        }
        do {
            return try BoundedFile.read(URL(fileURLWithPath: resolved), limit: settings.maximumBodyBytes)
        } catch {
            throw ServeError(.badRequest, "cannot read the image file \(path): \(error.localizedDescription)", param: "messages")
        }
    }

    /// An `http(s)` image, only with ``ServeSettings/allowRemoteImages``, at most
    /// ``ServeSettings/maximumRemoteImageBytes``.
    func remote(_ url: String) async throws(ServeError) -> Data {
        guard settings.allowRemoteImages else {
            throw ServeError(.badRequest, "image_url is a remote URL, which this server does not fetch; send a data URL, or start craft serve with --allow-remote-images", param: "messages")
        }
        guard let address = URL(string: url) else { throw ServeError(.badRequest, "image_url \(url) is not a valid URL", param: "messages") }
        var request = URLRequest(url: address)
        request.timeoutInterval = settings.remoteImageTimeout
        let download = BoundedDownload(limit: settings.maximumRemoteImageBytes)
        let outcome = await download.run(request)
        if download.tooLarge {
            throw ServeError(.tooLarge, "the image \(url) is larger than \(settings.maximumRemoteImageBytes) bytes, the most this server fetches", param: "messages")
        }
        switch outcome {
        case .failure(let error):
            throw ServeError(.badRequest, "cannot fetch the image \(url): \(error.localizedDescription)", param: "messages")
        case .success(let (data, response)):
            if let http = response as? HTTPURLResponse, !(200..<300).contains(http.statusCode) {
                throw ServeError(.badRequest, "fetching the image \(url) answered HTTP \(http.statusCode)", param: "messages")
            }
            return data
        }
    }

    /// A decoding error as one phrase naming the field.
    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let names = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return names.isEmpty ? "the body" : String(names.drop(while: { $0 == "." }))
        }
        switch error {
        case .keyNotFound(let key, let context):
            let parent = path(context)
            return "\(parent == "the body" ? "" : parent + ".")\(key.stringValue) is missing"
        case .typeMismatch(let type, let context): return "\(path(context)) is not a \(type)"
        case .valueNotFound(let type, let context): return "\(path(context)) is null but must be a \(type)"
        case .dataCorrupted(let context): return "\(path(context)): \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}

/// One download that stops as soon as it passes `limit` bytes (a declared length over the limit
/// stops it before the body), so a hostile image host cannot fill the server's memory.
final class BoundedDownload: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    let limit: Int
    private let lock = NSLock()
    private var received = Data()
    private var response: URLResponse?
    private var exceeded = false
    private var continuation: CheckedContinuation<Result<(Data, URLResponse?), any Error>, Never>?

    init(limit: Int) { self.limit = limit }

    /// Whether the download stopped because it passed the limit.
    var tooLarge: Bool {
        lock.lock()
        defer { lock.unlock() }
        return exceeded
    }

    func run(_ request: URLRequest) async -> Result<(Data, URLResponse?), any Error> {
        let session = URLSession(configuration: .ephemeral, delegate: self, delegateQueue: nil)
        defer { session.finishTasksAndInvalidate() }
        return await withCheckedContinuation { continuation in
            lock.lock()
            self.continuation = continuation
            lock.unlock()
            session.dataTask(with: request).resume()
        }
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        lock.lock()
        self.response = response
        let over = response.expectedContentLength > limit
        if over { exceeded = true }
        lock.unlock()
        completionHandler(over ? .cancel : .allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        lock.lock()
        received.append(data)
        let over = received.count > limit
        if over { exceeded = true; received = Data() }
        lock.unlock()
        if over { dataTask.cancel() }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
        lock.lock()
        let continuation = self.continuation
        self.continuation = nil
        let result: Result<(Data, URLResponse?), any Error> = error.map { .failure($0) } ?? .success((received, response))
        lock.unlock()
        continuation?.resume(returning: result)
    }
}
