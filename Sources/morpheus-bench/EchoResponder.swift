import ArgumentParser
import Foundation
import MQTT

/// The yardstick: a responder that does nothing but send each request back to its response
/// topic with its correlation data, built like the service — same client binding, shared
/// subscription, QoS 1, batched acknowledgement, replies on a second connection — so the
/// broker's round trip is the only cost.
struct EchoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "echo", abstract: "Run the do-nothing echo responder (started by the benchmark).")

    @Option var host = "127.0.0.1"
    @Option var port = 1883
    @Option var prefix = "bench-echo/v1"
    @Option var clientId = "bench-echo"

    func run() async throws {
        let client = try MQTTClient(configuration: MQTTClientConfiguration(host: host, port: port, clientID: clientId, cleanStart: true))
        let publisher = try MQTTClient(configuration: MQTTClientConfiguration(host: host, port: port, clientID: clientId + ".out", cleanStart: true))
        client.start()
        publisher.start()
        try await client.waitUntilConnected(timeout: .seconds(10))
        try await publisher.waitUntilConnected(timeout: .seconds(10))
        let consumer = Task {
            for await batch in client.batches {
                for message in batch.messages {
                    guard let topic = message.properties.responseTopic else { continue }
                    try? publisher.enqueue(MQTTOutgoingMessage(
                        topic: topic, payload: message.payload, qos: .atLeastOnce,
                        properties: MQTTPublishProperties(correlationData: message.properties.correlationData)
                    ))
                }
                batch.acknowledge()
            }
        }
        try await client.subscribe("$share/echo/\(prefix)/corrections/+/+", qos: .atLeastOnce)
        FileHandle.standardOutput.write(Data("ready\n".utf8))
        // Runs until the benchmark stops it (SIGTERM ends the process).
        await consumer.value
    }
}
