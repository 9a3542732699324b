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
/// ingest publishes a batch's events right after its commit, with the receipts; this service
/// awaits their acknowledgements and deletes the rows of published batches in groups, at least
/// once per `sweepInterval`. A periodic sweep publishes what a dead process (or an overflowing
/// queue) left in the database once it is `orphanAge` old — longer than the deletion lag, so a
/// live process's batches are not published twice.
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
            var published: [Int] = []
            for await work in queue.work {
                switch work {
                case let .sent(batch, publication):
                    if await acknowledged(batch, publication) { published.append(batch.id) }
                    // Deleted in groups: one statement per `deleteGroup` batches or per tick.
                    if published.count >= deleteGroup { await forget(&published) }
                case .sweep:
                    await forget(&published)
                    await sweep()
                }
            }
            await forget(&published)
        }
    }

    /// How many published batches are deleted with one statement at most.
    var deleteGroup = 256

    /// Deletes the rows of published batches; on failure they stay and are published again.
    private func forget(_ ids: inout [Int]) async {
        guard !ids.isEmpty else { return }
        do {
            try await store.batchesPublished(ids)
        } catch {
            logger.warning("published events not cleared; they will be sent again", metadata: ["batches": "\(ids.count)", "error": "\(error)"])
        }
        ids.removeAll()
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
        guard await acknowledged(batch, client.startPublishing(Self.messages(batch))) else { return false }
        var ids = [batch.id]
        await forget(&ids)
        return true
    }

    /// Awaits the acknowledgement of every event of the batch. `false` when the batch stays in
    /// the outbox for a later attempt.
    private func acknowledged(_ batch: OutboxBatch, _ publication: MQTTPendingPublication) async -> Bool {
        do {
            try await publication.acknowledged()
            board.count { $0.published += batch.events.count }
            return true
        } catch {
            logger.warning("events not published; they stay in the outbox", metadata: ["batch": "\(batch.id)", "error": "\(error)"])
            return false
        }
    }
}
