import Logging
import MQTT
import MorpheusStorage
import ServiceLifecycle

/// Publishes committed events (training examples, review items, dead letters) at least once:
/// an event is deleted from the outbox only after the broker acknowledged it.
struct OutboxPublisher: Service {
    let client: MQTTClient
    let store: FeedbackStore
    let signal: OutboxSignal
    let databaseReady: Readiness
    let board: StatusBoard
    let logger: Logger

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            try await databaseReady.wait()
            // A periodic poke picks up what an earlier process committed but never published.
            let ticker = Task {
                while !Task.isCancelled {
                    signal.poke()
                    try await Task.sleep(for: .seconds(1))
                }
            }
            defer { ticker.cancel() }
            for await _ in signal.pokes {
                await drain()
            }
        }
    }

    private func drain() async {
        while true {
            let events: [(id: Int, topic: String, payload: [UInt8])]
            do {
                events = try await store.pendingEvents(limit: 256)
            } catch {
                logger.warning("outbox unreadable", metadata: ["error": "\(error)"])
                return
            }
            guard !events.isEmpty else { return }
            let published = await withTaskGroup(of: Int?.self) { group in
                for event in events {
                    group.addTask {
                        let message = MQTTOutgoingMessage(topic: event.topic, payload: event.payload, qos: .atLeastOnce,
                                                          properties: MQTTPublishProperties(contentType: "application/json", payloadIsUTF8: true))
                        return (try? await client.publish(message)) == nil ? nil : event.id
                    }
                }
                return await group.reduce(into: [Int]()) { if let id = $1 { $0.append(id) } }
            }
            do {
                try await store.eventsPublished(published)
                board.count { $0.published += published.count }
            } catch {
                logger.warning("published events not cleared; they will be sent again", metadata: ["error": "\(error)"])
                return
            }
            if published.count < events.count || events.count < 256 { return }
        }
    }
}
