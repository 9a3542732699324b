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
        /// Delete the rows of what was published so far.
        case flush
    }

    private let stream: AsyncStream<Work>
    private let continuation: AsyncStream<Work>.Continuation

    init(capacity: Int = 256) {
        (stream, continuation) = AsyncStream<Work>.makeStream(bufferingPolicy: .bufferingOldest(capacity))
    }

    func submit(_ batch: OutboxBatch, _ publication: MQTTPendingPublication) {
        if case .dropped = continuation.yield(.sent(batch, publication)) {
            // The batch stays in the database; once its lease runs out a sweep publishes it.
            publication.forget()
        }
    }
    func requestFlush() { continuation.yield(.flush) }
    var work: AsyncStream<Work> { stream }
}

/// Publishes committed events (training examples, review items, dead letters) at least once:
/// a batch's outbox row is deleted only after the broker acknowledged every event in it.
///
/// Two loops, so that neither can stall the other. The ingest publishes a batch's events right
/// after its commit, with the receipts, holding the row's lease; the first loop awaits their
/// acknowledgements (bounded by the client's publish timeout) and deletes the rows of published
/// batches in groups, at least once per `sweepInterval`. The second loop, every
/// `sweepInterval`, claims rows whose lease ran out — a dead process's, or ones that fell out
/// of the in-memory queue — with `FOR UPDATE SKIP LOCKED`, so with several instances each
/// orphan has exactly one publisher.
struct OutboxPublisher: Service {
    let client: MQTTClient
    let store: FeedbackStore
    let queue: OutboxQueue
    let databaseReady: Readiness
    let board: StatusBoard
    let logger: Logger
    var sweepInterval: Duration = .seconds(1)
    /// How many published batches are deleted with one statement at most.
    var deleteGroup = 256

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            try await databaseReady.wait()
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await acknowledgeLoop() }
                group.addTask { await sweepLoop() }
                group.addTask { [queue, sweepInterval] in
                    while (try? await Task.sleep(for: sweepInterval)) != nil { queue.requestFlush() }
                }
                await group.next()
                group.cancelAll()
            }
        }
    }

    private func acknowledgeLoop() async {
        var published: [Int] = []
        for await work in queue.work {
            switch work {
            case let .sent(batch, publication):
                if await acknowledged(batch, publication) { published.append(batch.id) }
                // Deleted in groups: one statement per `deleteGroup` batches or per tick.
                if published.count >= deleteGroup { await forget(&published) }
            case .flush:
                await forget(&published)
            }
            if Task.isCancelled { break }
        }
        await forget(&published)
    }

    private func sweepLoop() async {
        while (try? await Task.sleep(for: sweepInterval)) != nil {
            await sweep()
        }
    }

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
            while !Task.isCancelled {
                let batches = try await store.claimBatches(limit: 64)
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
            MQTTOutgoingMessage(topic: $0.topic, payload: $0.payload, qos: .atLeastOnce, retain: $0.retain,
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
    /// the outbox (its lease runs out and a sweep publishes it again).
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
