import Foundation
import MQTT
import Synchronization
import TestSupport

/// Collects every message a client receives, acknowledging each batch at once.
final class Inbox: Sendable {
    let task: Task<Void, Never>

    init(_ client: MQTTClient) {
        let box = InboxBox()
        self.task = Task {
            for await batch in client.batches {
                box.append(batch)
                batch.acknowledge()
            }
        }
        self.box = box
    }

    private let box: InboxBox
    var messages: [MQTTMessage] { box.messages }
    var batches: [Int] { box.sizes }

    func waitForCount(_ count: Int, timeout: Duration = .seconds(10)) async throws {
        try await waitUntil("\(count) messages", timeout: timeout) { messages.count >= count }
    }
}

final class InboxBox: Sendable {
    private let state = Mutex<(messages: [MQTTMessage], sizes: [Int])>(([], []))
    func append(_ batch: MQTTBatch) {
        state.withLock { state in
            state.messages.append(contentsOf: batch.messages)
            state.sizes.append(batch.messages.count)
        }
    }
    var messages: [MQTTMessage] { state.withLock { $0.messages } }
    var sizes: [Int] { state.withLock { $0.sizes } }
}

func makeClient(
    port: Int = TestEnvironment.brokerPort,
    id: String = TestEnvironment.unique("client"),
    cleanStart: Bool = true,
    sessionExpiry: Duration = .zero,
    receiveMaximum: Int = 100,
    configure: (inout MQTTClientConfiguration) -> Void = { _ in }
) async throws -> MQTTClient {
    var configuration = MQTTClientConfiguration(
        port: port, clientID: id, cleanStart: cleanStart, sessionExpiry: sessionExpiry,
        receiveMaximum: receiveMaximum,
        reconnectBackoff: .init(initial: .milliseconds(50), maximum: .milliseconds(500))
    )
    configure(&configuration)
    let client = try MQTTClient(configuration: configuration)
    client.start()
    try await client.waitUntilConnected(timeout: .seconds(10))
    return client
}

extension String {
    var bytes: [UInt8] { Array(utf8) }
}
