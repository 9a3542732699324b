import Logging
import MQTT
import MorpheusStorage
import ServiceLifecycle

/// Hands committed outbox batches from the ingest to the publisher in memory, so the fast path
/// never reads them back from PostgreSQL. Bounded: when the publisher falls behind, further
/// batches are only in the database, where the publisher's sweep finds them.
final class OutboxQueue: Sendable {
    enum Work: Sendable {
        /// A committed batch whose events the ingest already handed to the client.
        case sent(OutboxBatch, MQTTPendingPublication)
        case sweep
    }

    private let stream: AsyncStream<Work>
    private let continuation: AsyncStream<Work>.Continuation

    init(capacity: Int = 256) {
        (stream, continuation) = AsyncStream<Work>.makeStream(bufferingPolicy: .bufferingOldest(capacity))
    }

    func submit(_ batch: OutboxBatch, _ publication: MQTTPendingPublication) {
        if case .dropped = continuation.yield(.sent(batch, publication)) {
            // The batch stays in the database; the sweep publishes it again later.
            publication.forget()
        }
    }
    func requestSweep() { continuation.yield(.sweep) }
    var work: AsyncStream<Work> { stream }
}

/// Publishes committed events (training examples, review items, dead letters) at least once:
/// a batch's outbox row is deleted only after the broker acknowledged every event in it. The
/// ingest publishes a batch's events right after its commit, in the same write as the receipts;
/// this service awaits their acknowledgements and forgets the batch. A periodic sweep publishes
/// what a dead process (or an overflowing queue) left in the database once it is `orphanAge` old.
struct OutboxPublisher: Service {
    let client: MQTTClient
    let store: FeedbackStore
    let queue: OutboxQueue
    let databaseReady: Readiness
    let board: StatusBoard
    let logger: Logger
    var orphanAge: Duration = .seconds(5)
    var sweepInterval: Duration = .seconds(1)

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            try await databaseReady.wait()
            let ticker = Task { [queue, sweepInterval] in
                while !Task.isCancelled {
                    queue.requestSweep()
                    try await Task.sleep(for: sweepInterval)
                }
            }
            defer { ticker.cancel() }
            // One consumer: publishing and sweeping never run at the same time.
            for await work in queue.work {
                switch work {
                case let .sent(batch, publication): await finish(batch, publication)
                case .sweep: await sweep()
                }
            }
        }
    }

    private func sweep() async {
        do {
            while true {
                let batches = try await store.pendingBatches(olderThan: orphanAge, limit: 64)
                for batch in batches { guard await publish(batch) else { return } }
                if batches.count < 64 { return }
            }
        } catch {
            logger.warning("outbox unreadable", metadata: ["error": "\(error)"])
        }
    }

    /// The messages of a batch's events.
    static func messages(_ batch: OutboxBatch) -> [MQTTOutgoingMessage] {
        batch.events.map {
            MQTTOutgoingMessage(topic: $0.topic, payload: $0.payload, qos: .atLeastOnce,
                                properties: MQTTPublishProperties(contentType: "application/json", payloadIsUTF8: true))
        }
    }

    private func publish(_ batch: OutboxBatch) async -> Bool {
        await finish(batch, client.startPublishing(Self.messages(batch)))
    }

    /// Awaits the acknowledgement of every event of the batch, then forgets the batch. `false`
    /// when it stays for a later attempt.
    @discardableResult
    private func finish(_ batch: OutboxBatch, _ publication: MQTTPendingPublication) async -> Bool {
        do {
            try await publication.acknowledged()
        } catch {
            logger.warning("events not published; they stay in the outbox", metadata: ["batch": "\(batch.id)", "error": "\(error)"])
            return false
        }
        do {
            try await store.batchesPublished([batch.id])
            board.count { $0.published += batch.events.count }
            return true
        } catch {
            logger.warning("published events not cleared; they will be sent again", metadata: ["batch": "\(batch.id)", "error": "\(error)"])
            return false
        }
    }
}
