import ArgumentParser
import Foundation
import MQTT
import MorpheusCore
import Synchronization

/// `morpheus publish FILE`: sends a correction and prints its receipt, republishing the
/// identical payload until a receipt arrives, as the contract asks editors to.
struct PublishCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "publish",
        abstract: "Publish a correction from a JSON file and print the receipt."
    )

    @OptionGroup var broker: BrokerOptions

    @Option(help: "Seconds to wait for the receipt before giving up.")
    var timeout: Int = 30

    @Argument(help: "A morpheus.correction/1 JSON file.")
    var file: String

    func run() async throws {
        let payload = try Array(Data(contentsOf: URL(fileURLWithPath: file)))
        var parser = JSONParser(bytes: payload)
        let document = try parser.parse()
        guard case .string(let user)? = document["userId"], case .string(let modality)? = document["modality"],
              case .string(let feedbackId)? = document["feedbackId"] else {
            throw ValidationError("the file needs userId, modality and feedbackId to be routed")
        }
        let replyTopic = "\(broker.prefix)/replies/\(user)/cli-\(UUID().uuidString.prefix(8).lowercased())"
        let client = try MQTTClient(configuration: .init(
            host: broker.host, port: broker.port, clientID: "morpheus-cli-\(UUID().uuidString.prefix(8))",
            username: broker.username, password: broker.password ?? ProcessInfo.processInfo.environment["MORPHEUS_BROKER_PASSWORD"]
        ))
        client.start()
        // Shut the client down on every path before the process exits.
        let outcome: Result<Void, any Error>
        do {
            try await exchange(client, payload: payload, user: user, modality: modality, feedbackId: feedbackId, replyTopic: replyTopic)
            outcome = .success(())
        } catch {
            outcome = .failure(error)
        }
        await client.shutdown()
        try outcome.get()
    }

    private func exchange(_ client: MQTTClient, payload: [UInt8], user: String, modality: String, feedbackId: String, replyTopic: String) async throws {
        try await client.waitUntilConnected(timeout: .seconds(10))
        let answer = Mutex<[UInt8]?>(nil)
        let collector = Task {
            for await batch in client.batches {
                batch.acknowledge()
                if let message = batch.messages.first(where: { $0.properties.correlationData == Array(feedbackId.utf8) }) {
                    answer.withLock { $0 = message.payload }
                }
            }
        }
        defer { collector.cancel() }
        try await client.subscribe(replyTopic)
        let message = MQTTOutgoingMessage(
            topic: "\(broker.prefix)/corrections/\(modality)/\(user)", payload: payload, qos: .atLeastOnce,
            properties: MQTTPublishProperties(responseTopic: replyTopic, correlationData: Array(feedbackId.utf8), contentType: "application/json")
        )
        let deadline = ContinuousClock.now + .seconds(timeout)
        var delay = Duration.seconds(1)
        var nextPublish = ContinuousClock.now
        // Republish the identical payload with backoff until the receipt is there.
        while ContinuousClock.now < deadline {
            if let receipt = answer.withLock({ $0 }) {
                print(String(decoding: receipt, as: UTF8.self))
                var receiptParser = JSONParser(bytes: receipt)
                if case .string("rejected")? = try? receiptParser.parse()["status"] { throw ExitCode(2) }
                return
            }
            if ContinuousClock.now >= nextPublish {
                try await client.publish(message)
                nextPublish = ContinuousClock.now + delay
                delay = min(delay * 2, .seconds(8))
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw ValidationError("no receipt within \(timeout) s; is the service running?")
    }
}
