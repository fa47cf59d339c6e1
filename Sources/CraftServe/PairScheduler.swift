// Continuous batching for one served pair: requests wait in a bounded queue; a dedicated thread encodes
// the images of newly admitted requests in one batch, joins their prompts to the running DecodingBatch
// between steps, decodes one token of every sequence per step, and lets finished or abandoned ones leave.
import CraftCore
import CraftPipeline
import Foundation

/// What a request hears from the scheduler, in order: pieces of text (streamed requests only), then
/// the end, or a failure.
enum ChatEvent: Sendable {
    /// More answer text (streamed requests only; the pieces add up to the answer).
    case text(String)
    /// The answer, its prompt size and what it cost.
    case finished(GeneratedText, promptTokens: Int, report: InferenceReport)
    /// The request failed.
    case failed(ServeError)
}

/// Decodes the requests of one pair together (docs/serve.md, "Batching").
///
/// Model work runs on the scheduler's own thread, never on Swift's cooperative pool, so the HTTP
/// side stays responsive. With a ``ContinuousBatchingBackend`` sequences join and leave between
/// steps; other backends answer admitted requests one at a time.
final class PairScheduler: @unchecked Sendable {
    let pipeline: Pipeline
    let settings: ServeSettings
    let metrics: ServeMetrics

    private struct Job {
        let id: Int
        let chat: PreparedChat
        let arrival: ContinuousClock.Instant
        let continuation: AsyncStream<ChatEvent>.Continuation
    }

    /// A job decoding in the batch.
    private struct Live {
        let job: Job
        let segments: [PromptSegment]
        let promptTokens: Int
        var report: InferenceReport
        var tokens: [Int32] = []
        /// Unicode scalars of the answer already streamed.
        var sentScalars: Int = 0
        var firstToken: ContinuousClock.Instant?
    }

    // Shared with request tasks, under `condition`.
    private let condition = NSCondition()
    private var waiting: [Job] = []
    private var cancelled: Set<Int> = []
    private var stopping = false
    private var finished = false
    private var nextID = 0
    /// How many sequences the scheduler thread holds (its `live.count`, published for metrics).
    private var activeCount = 0

    // The scheduler thread's own.
    private var batch: (any DecodingBatch)?
    private var live: [Int: Live] = [:]
    private let clock = ContinuousClock()

    init(pipeline: Pipeline, settings: ServeSettings, metrics: ServeMetrics) {
        self.pipeline = pipeline
        self.settings = settings
        self.metrics = metrics
        batch = (pipeline.backend as? any ContinuousBatchingBackend)?.makeDecodingBatch()
    }

    /// Starts the scheduler thread.
    func start() {
        let thread = Thread { [self] in run() }
        thread.name = "craft-serve \(pipeline.pair.encoder.reference)+\(pipeline.pair.backend.reference)"
        thread.stackSize = 16 << 20
        thread.start()
    }

    /// Refuses new requests, lets the queued and decoding ones finish, and returns once they have.
    func drain() async {
        beginStopping()
        while !isFinished { try? await Task.sleep(for: .milliseconds(20)) }
    }

    private func beginStopping() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    private var isFinished: Bool {
        condition.lock()
        defer { condition.unlock() }
        return finished
    }

    /// Queues a request; its events arrive on the returned stream. Ending the stream (a client that
    /// left) frees its slot.
    ///
    /// - Throws: ``ServeError`` `queueFull` when ``ServeSettings/maximumQueue`` requests wait, or
    ///   `unavailable` when the server is stopping.
    func submit(_ chat: PreparedChat, arrival: ContinuousClock.Instant) throws(ServeError) -> (id: Int, events: AsyncStream<ChatEvent>) {
        let (stream, continuation) = AsyncStream<ChatEvent>.makeStream()
        condition.lock()
        defer { condition.unlock() }
        guard !stopping else { throw ServeError(.unavailable, "the server is stopping; retry on another instance") }
        guard waiting.count < settings.maximumQueue else {
            throw ServeError(.queueFull, "\(waiting.count) requests are waiting for this model, the most this server queues (--max-queue); retry after a second")
        }
        nextID += 1
        let id = nextID
        waiting.append(Job(id: id, chat: chat, arrival: arrival, continuation: continuation))
        continuation.onTermination = { [weak self] termination in
            if case .cancelled = termination { self?.cancel(id) }
        }
        metrics.queue(waiting: waiting.count, active: activeCount)
        condition.signal()
        return (id, stream)
    }

    /// Drops a request whose client left: from the queue at once, from the batch before the next step.
    func cancel(_ id: Int) {
        condition.lock()
        defer { condition.unlock() }
        if let index = waiting.firstIndex(where: { $0.id == id }) {
            waiting.remove(at: index)
        } else {
            cancelled.insert(id)
            condition.signal()
        }
    }

    // MARK: - The scheduler thread

    private func run() {
        while true {
            condition.lock()
            while waiting.isEmpty && live.isEmpty && !stopping { condition.wait() }
            if stopping && waiting.isEmpty && live.isEmpty {
                finished = true
                condition.unlock()
                return
            }
            let room = max(0, settings.maximumBatch - live.count)
            let admitted = Array(waiting.prefix(room))
            waiting.removeFirst(admitted.count)
            let left = cancelled
            cancelled.removeAll()
            activeCount = live.count + admitted.count
            metrics.queue(waiting: waiting.count, active: activeCount)
            condition.unlock()

            for id in left where live[id] != nil {
                batch?.leave(id)
                live[id] = nil
            }
            expire()
            admit(admitted)
            step()
            condition.lock()
            activeCount = live.count
            metrics.queue(waiting: waiting.count, active: activeCount)
            condition.unlock()
        }
    }

    /// Fails the jobs past their time limit.
    private func expire() {
        let now = clock.now
        for (id, item) in live where now - item.job.arrival > .seconds(settings.requestTimeout) {
            batch?.leave(id)
            live[id] = nil
            fail(item.job, ServeError(.timeout, "the request ran past the server's limit of \(settings.requestTimeout) s (--request-timeout)"))
        }
    }

    /// Encodes the admitted jobs' images in one batch, prunes, and joins their prompts to the batch.
    private func admit(_ jobs: [Job]) {
        guard !jobs.isEmpty else { return }
        let tokens = encode(jobs.map(\.chat.image))
        var joining: [Live] = []
        for (job, encoded) in zip(jobs, tokens) {
            do {
                let visual = try encoded.get()
                let kept = try pipeline.pruned(visual, keepRatio: job.chat.keepRatio)
                let segments = pipeline.template.segments(visual: kept, prompt: job.chat.prompt)
                let positions = try pipeline.backend.promptPositions(segments)
                let context = pipeline.backend.contextLength
                guard positions < context else {
                    throw ServeError(.contextLengthExceeded, "the prompt takes \(positions) positions (\(kept.count) of them visual tokens) but the backend's context holds \(context); shorten the text or prune visual tokens with craft.keep_ratio")
                }
                let textTokens = max(0, positions - kept.count)
                let cost = pipeline.prefillCost
                let report = InferenceReport(
                    visualTokensBefore: visual.count, visualTokensAfter: kept.count, keepRatio: job.chat.keepRatio,
                    textTokens: textTokens,
                    prefillFlopsFull: try cost?.forwardFLOPs(textTokens: textTokens, visualTokens: visual.count),
                    prefillFlopsPruned: try cost?.forwardFLOPs(textTokens: textTokens, visualTokens: kept.count),
                    codebookHash: pipeline.pair.codebook.hash)
                joining.append(Live(job: job, segments: segments, promptTokens: positions, report: report))
            } catch {
                fail(job, Self.serveError(error))
            }
        }
        guard !joining.isEmpty else { return }
        guard batch != nil else {
            for item in joining { answerAlone(item) }
            return
        }
        for item in joining { live[item.job.id] = item }
        do {
            deliver(try batch!.join(joining.map { DecodingRequest(id: $0.job.id, prompt: $0.segments, options: $0.job.chat.options) }))
        } catch {
            // One bad prompt must not fail the others: join them one by one.
            for item in joining {
                do {
                    deliver(try batch!.join([DecodingRequest(id: item.job.id, prompt: item.segments, options: item.job.chat.options)]))
                } catch {
                    live[item.job.id] = nil
                    fail(item.job, Self.serveError(error))
                }
            }
        }
    }

    /// The visual tokens of each image: one batch, or one at a time when the batch fails (so one bad
    /// image fails only its own request).
    private func encode(_ images: [RGBImage]) -> [Result<VisualTokens, any Error>] {
        if let tokens = try? pipeline.tokens(for: images) { return tokens.map { .success($0) } }
        return images.map { image in Result { try pipeline.tokens(for: image) } }
    }

    /// A backend without continuous batching answers each request by itself.
    private func answerAlone(_ item: Live) {
        do {
            let answer = try pipeline.backend.generate(item.segments, options: item.job.chat.options)
            var done = item
            done.tokens = answer.tokens
            complete(done, answer)
        } catch {
            fail(item.job, Self.serveError(error))
        }
    }

    /// One decoding step of every sequence in the batch.
    private func step() {
        guard var running = batch, !running.isEmpty else { return }
        metrics.decodingStep(sequences: running.activeIDs.count)
        do {
            let steps = try running.step()
            batch = running
            deliver(steps)
        } catch {
            batch = running
            for (id, item) in live {
                batch?.leave(id)
                fail(item.job, Self.serveError(error))
            }
            live.removeAll()
        }
    }

    /// Hands each step's token or result to its request.
    private func deliver(_ steps: [DecodingStep]) {
        let now = clock.now
        for step in steps {
            guard var item = live[step.id] else { continue }
            if let token = step.token {
                item.tokens.append(token)
                if item.firstToken == nil {
                    item.firstToken = now
                    metrics.firstToken(after: now - item.job.arrival)
                }
            }
            if let finished = step.finished {
                live[step.id] = nil
                complete(item, finished)
            } else {
                if item.job.chat.stream, step.token != nil { stream(&item) }
                live[step.id] = item
            }
        }
    }

    /// Streams the text decoded so far beyond what was sent, holding back what may still change: a
    /// trailing partial character, and the characters that could begin a stop sequence.
    private func stream(_ item: inout Live) {
        guard let text = try? pipeline.backend.detokenize(item.tokens) else { return }
        var scalars = Array(text.unicodeScalars)
        while scalars.last == "\u{FFFD}" { scalars.removeLast() }
        let holdBack = max(0, (item.job.chat.options.stopSequences.map { $0.unicodeScalars.count }.max() ?? 0) - 1)
        let safe = scalars.count - holdBack
        guard safe > item.sentScalars else { return }
        var piece = String.UnicodeScalarView()
        piece.append(contentsOf: scalars[item.sentScalars..<safe])
        item.sentScalars = safe
        item.job.continuation.yield(.text(String(piece)))
    }

    /// Ends a request with its answer.
    private func complete(_ item: Live, _ answer: GeneratedText) {
        let now = clock.now
        var report = item.report
        report.latencyMs = Pipeline.milliseconds(now - item.job.arrival)
        report.timeToFirstTokenMs = Pipeline.milliseconds((item.firstToken ?? now) - item.job.arrival)
        if item.job.chat.stream {
            let scalars = Array(answer.text.unicodeScalars)
            if scalars.count > item.sentScalars {
                var rest = String.UnicodeScalarView()
                rest.append(contentsOf: scalars[item.sentScalars...])
                item.job.continuation.yield(.text(String(rest)))
            }
        }
        metrics.answered(promptTokens: item.promptTokens, completionTokens: answer.tokens.count, duration: now - item.job.arrival)
        item.job.continuation.yield(.finished(answer, promptTokens: item.promptTokens, report: report))
        item.job.continuation.finish()
    }

    private func fail(_ job: Job, _ error: ServeError) {
        job.continuation.yield(.failed(error))
        job.continuation.finish()
    }

    /// Any error from the models as a ``ServeError``: its own kind when it is one, a 400 when the
    /// input was refused, otherwise a 500 with the runtime's sentence.
    static func serveError(_ error: any Error) -> ServeError {
        if let error = error as? ServeError { return error }
        let message = (error as? any LocalizedError)?.errorDescription ?? String(describing: error)
        if let categorized = error as? any CategorizedError, categorized.category == .usage {
            return ServeError(.badRequest, message)
        }
        return ServeError(.internalError, "the models failed: \(message)")
    }
}
