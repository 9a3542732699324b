import Foundation
import Hummingbird
import Logging
import Metrics
import MorpheusCore
import Postgres
import Prometheus
import ServiceLifecycle

/// What an instance measures for Prometheus (`docs/operations.md#metrics-and-health`), through
/// swift-metrics: the handlers come from whatever factory the process bootstrapped (the
/// Prometheus one in the service; none in unit tests, where they do nothing).
public struct ServiceMetrics: Sendable {
    let messages: [Receipt.Status: Metrics.Counter]
    /// Receive → receipt, per answered message.
    let receiptLatency = Metrics.Timer(label: "morpheus_receipt_latency_seconds")
    /// One chunk's transaction.
    let commitDuration = Metrics.Timer(label: "morpheus_commit_duration_seconds")
    /// Messages per committed chunk.
    let batchSize = Metrics.Recorder(label: "morpheus_batch_messages")
    let retries = Metrics.Counter(label: "morpheus_retries_total")
    let released = Metrics.Counter(label: "morpheus_batches_released_total")
    let deadLetters = Metrics.Counter(label: "morpheus_dead_letters_total")
    let databaseUp = Metrics.Gauge(label: "morpheus_database_up")
    let brokerConnected = Metrics.Gauge(label: "morpheus_broker_connected")
    let outboxBacklog = Metrics.Gauge(label: "morpheus_outbox_backlog_events")
    let reviewBacklog = Metrics.Gauge(label: "morpheus_review_backlog_items")
    let poolWait = Metrics.Timer(label: "morpheus_database_pool_wait_seconds")

    public init() {
        messages = Dictionary(uniqueKeysWithValues: [Receipt.Status.accepted, .flagged, .duplicate, .rejected, .applied].map {
            ($0, Metrics.Counter(label: "morpheus_messages_total", dimensions: [("outcome", $0.rawValue)]))
        })
    }

    /// The Prometheus factory the service bootstraps: latency buckets from 1 ms to 10 s, batch
    /// sizes from 1 to the largest batch.
    public static func prometheusFactory(registry: PrometheusCollectorRegistry) -> PrometheusMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000].map { Duration.milliseconds($0) }
        factory.valueHistogramBuckets["morpheus_batch_messages"] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]
        return factory
    }
}

/// `/metrics` (Prometheus text format), `/health/live` and `/health/ready` on `metrics.port`.
///
/// Live: the process serves HTTP. Ready: the database is reachable (migrated, last statement
/// worked) and the consuming connection is connected with its subscriptions made — what an
/// orchestrator should wait for before sending traffic, and stop routing to when it fails.
struct ObservabilityService: Service {
    let host: String
    let port: Int
    let registry: PrometheusCollectorRegistry
    let readiness: @Sendable () -> [String: Bool]
    let logger: Logger

    func run() async throws {
        let router = Router()
        router.get("metrics") { [registry] _, _ -> Response in
            var buffer: [UInt8] = []
            registry.emit(into: &buffer)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(bytes: buffer)))
        }
        router.get("health/live") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: #"{"status":"live"}"#)))
        }
        router.get("health/ready") { [readiness] _, _ -> Response in
            let checks = readiness()
            let ready = checks.values.allSatisfy { $0 }
            let body = JSONValue.object([("status", .string(ready ? "ready" : "not_ready"))]
                + checks.sorted { $0.key < $1.key }.map { ($0.key, .bool($0.value)) }).serializedString
            return Response(status: ready ? .ok : .serviceUnavailable, headers: [.contentType: "application/json"],
                            body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        let app = Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: "morpheus-feedback"),
                              logger: logger)
        logger.info("metrics and health endpoints", metadata: ["address": "\(host):\(port)"])
        try await app.run()
    }
}

extension ServiceMetrics {
    /// Samples what is not an event — connection states, backlogs — into gauges (a periodic
    /// job of the service). A failed backlog query is not logged: `morpheus_database_up`
    /// already says the database is away.
    func sampleGauges(brokerConnected: Bool, databaseUsable: Bool, pool: PostgresPool) async {
        self.brokerConnected.record(brokerConnected ? 1 : 0)
        databaseUp.record(databaseUsable ? 1 : 0)
        guard databaseUsable, let (outbox, review) = try? await pool.withConnection({ connection in
            let row = try connection.query("""
                SELECT (SELECT coalesce(sum(event_count), 0) FROM outbox_batches)::int8 AS outbox,
                       (SELECT count(*) FROM review_queue WHERE decision IS NULL)::int8 AS review
                """).first!
            return (try row.decode("outbox", as: Int.self), try row.decode("review", as: Int.self))
        }) else { return }
        outboxBacklog.record(outbox)
        reviewBacklog.record(review)
    }
}
