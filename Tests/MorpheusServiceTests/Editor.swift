import Foundation
import MQTT
import MorpheusCore
import NIOConcurrencyHelpers
import TestSupport

/// Simulates editors as the contract describes them: publish corrections with a response topic,
/// collect receipts, and republish the identical payload of anything still unanswered.
final class Editor: Sendable {
    let client: MQTTClient
    let prefix: String
    private let receipts = NIOLockedValueBox<[String: [String]]>([:])  // feedbackId → statuses
    private let consumer: Task<Void, Never>

    /// `persistent`: the editor keeps its session (and its replies subscription) across
    /// reconnects, as a real editor app would.
    init(prefix: String, port: Int = TestEnvironment.brokerPort, persistent: Bool = false) async throws {
        self.prefix = prefix
        client = try MQTTClient(configuration: .init(
            port: port, clientID: TestEnvironment.unique("editor"), cleanStart: !persistent,
            sessionExpiry: persistent ? .seconds(300) : .zero, receiveMaximum: 1000,
            reconnectBackoff: .init(initial: .milliseconds(100), maximum: .seconds(1))
        ))
        client.start()
        try await client.waitUntilConnected(timeout: .seconds(10))
        let receipts = self.receipts
        let client = self.client
        consumer = Task {
            for await batch in client.batches {
                for message in batch.messages {
                    var parser = JSONParser(bytes: message.payload)
                    if let receipt = try? parser.parse(), case .string(let id)? = receipt["feedbackId"], case .string(let status)? = receipt["status"] {
                        receipts.withLockedValue { $0[id, default: []].append(status) }
                    }
                }
                batch.acknowledge()
            }
        }
        try await client.subscribe("\(prefix)/replies/#")
    }

    /// Every correction any test makes gets the next slot on one time line, 2.1 s apart going
    /// back from the first: no 60-second window ever holds more than 29 of them, whoever sent
    /// them and however the test interleaves its streams. These tests are about delivery, not
    /// about the gate's `burst` rule.
    private static let timeline = NIOLockedValueBox(0)
    private static let start = Date()
    private static func nextOccurredAt() -> Date {
        let slot = timeline.withLockedValue { slot -> Int in
            defer { slot += 1 }
            return slot
        }
        return start.addingTimeInterval(-2.1 * Double(slot))
    }

    /// A valid, unique text correction for `user`.
    static func correction(index: Int, user: String) -> (id: String, payload: [UInt8]) {
        let id = UUID().uuidString.lowercased()
        let payload = Samples.text
            .setting("/userId", to: .string(user))
            .setting("/feedbackId", to: .string(id))
            .setting("/occurredAt", to: .string(RFC3339.format(nextOccurredAt())))
            .setting("/generation/id", to: .string("gen-\(index)"))
            .setting("/corrected/text", to: .string("Correction number \(index) of the stream."))
            .serialized()
        return (id, payload)
    }

    func publish(_ correction: (id: String, payload: [UInt8]), user: String) throws {
        try client.enqueue(MQTTOutgoingMessage(
            topic: "\(prefix)/corrections/text/\(user)", payload: correction.payload, qos: .atLeastOnce,
            properties: MQTTPublishProperties(responseTopic: "\(prefix)/replies/\(user)/editor", correlationData: Array(correction.id.utf8))
        ))
    }

    func statuses(_ id: String) -> [String] { receipts.withLockedValue { $0[id] ?? [] } }
    var answered: Set<String> { receipts.withLockedValue { Set($0.keys) } }

    func shutdown() async {
        await client.shutdown()
        consumer.cancel()
    }
}
