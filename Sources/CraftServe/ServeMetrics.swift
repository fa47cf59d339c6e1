// craft serve's metrics in Prometheus' text format (GET /metrics), kept by swift-prometheus.
import Prometheus

/// The server's counters, gauges and histograms (docs/serve.md lists them).
final class ServeMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let promptTokens: Counter
    private let completionTokens: Counter
    private let requestDuration: DurationHistogram
    private let firstToken: DurationHistogram
    private let batchSize: ValueHistogram
    private let queueDepth: Gauge
    private let activeSequences: Gauge

    init() {
        let seconds: [Duration] = [.milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
                                   .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
                                   .seconds(30), .seconds(60)]
        promptTokens = registry.makeCounter(descriptor: Self.name("craft_prompt_tokens", unit: "total", help: "Prompt positions (visual tokens after pruning, text, prefix) of answered requests."))
        completionTokens = registry.makeCounter(descriptor: Self.name("craft_completion_tokens", unit: "total", help: "Tokens generated for answered requests."))
        requestDuration = registry.makeDurationHistogram(descriptor: Self.name("craft_request_duration", unit: "seconds", help: "Seconds from a chat request's arrival to its last token."), buckets: seconds)
        firstToken = registry.makeDurationHistogram(descriptor: Self.name("craft_time_to_first_token", unit: "seconds", help: "Seconds from a chat request's arrival to its first token."), buckets: seconds)
        batchSize = registry.makeValueHistogram(descriptor: Self.name("craft_batch_size", help: "Sequences decoded together per decoding step."), buckets: [1, 2, 4, 8, 16, 32, 64])
        queueDepth = registry.makeGauge(descriptor: Self.name("craft_queue_depth", help: "Requests waiting for a decoding slot."))
        activeSequences = registry.makeGauge(descriptor: Self.name("craft_active_sequences", help: "Sequences being decoded."))
    }

    /// Counts a finished HTTP request by route and status.
    func request(route: String, status: Int) {
        registry.makeCounter(descriptor: Self.name("craft_requests", unit: "total", help: "HTTP requests by route and status."),
                             labels: [("route", route), ("status", String(status))]).increment()
    }

    /// A metric's name (`NAME_UNIT`, or `NAME` without a unit) and help text.
    static func name(_ name: String, unit: String = "", help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: unit, helpText: help)
    }

    func answered(promptTokens prompt: Int, completionTokens completion: Int, duration: Duration) {
        promptTokens.increment(by: Int64(prompt))
        completionTokens.increment(by: Int64(completion))
        requestDuration.record(duration)
    }

    func firstToken(after duration: Duration) { firstToken.record(duration) }
    func decodingStep(sequences: Int) { batchSize.record(Double(sequences)) }
    func queue(waiting: Int, active: Int) {
        queueDepth.set(Double(waiting))
        activeSequences.set(Double(active))
    }

    /// The text exposition.
    func render() -> String { registry.emitToString() }
}
