// mqtt-probe: a minimal subscriber over the MQTT binding, run as a separate process by the
// crash tests so that it can be SIGKILLed at a chosen moment.
//
//   mqtt-probe --port P --id ID --filter F [--mode ack|hold] [--session-expiry S]
//              [--receive-maximum N] [--will-topic T --will-payload X]
//
// It prints `READY` once subscribed, then for each batch `BATCH <n>` followed by one
// `MSG <topic> <payload>` line per message. In `ack` mode it acknowledges every batch; in
// `hold` mode it never acknowledges the first batch, so its PUBACKs never leave.
import Foundation
import MQTT

func option(_ name: String) -> String? {
    let arguments = CommandLine.arguments
    guard let index = arguments.firstIndex(of: "--\(name)"), index + 1 < arguments.count else { return nil }
    return arguments[index + 1]
}

func say(_ line: String) {
    // Unbuffered: the test reads these lines while the probe runs (and after a SIGKILL).
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

func runProbe() async throws {
    guard let id = option("id"), let filter = option("filter") else {
        FileHandle.standardError.write(Data("usage: mqtt-probe --port P --id ID --filter F [--mode ack|hold]\n".utf8))
        exit(2)
    }
    let hold = option("mode") == "hold"
    var configuration = MQTTClientConfiguration(
        host: option("host") ?? "127.0.0.1",
        port: Int(option("port") ?? "") ?? 1883,
        clientID: id,
        cleanStart: false,
        sessionExpiry: .seconds(Int(option("session-expiry") ?? "") ?? 300),
        receiveMaximum: Int(option("receive-maximum") ?? "") ?? 1000
    )
    if let willTopic = option("will-topic") {
        configuration.lastWill = .init(topic: willTopic, payload: Array((option("will-payload") ?? "").utf8), retain: false)
    }
    let client = try MQTTClient(configuration: configuration)
    client.start()
    try await client.waitUntilConnected(timeout: .seconds(10))
    // Consume before awaiting the SUBACK: a resumed session may deliver first.
    let consumer = Task {
        for await batch in client.batches {
            say("BATCH \(batch.messages.count)")
            for message in batch.messages {
                say("MSG \(message.topic) \(String(decoding: message.payload, as: UTF8.self))")
            }
            if hold {
                say("HOLDING")
                try await Task.sleep(for: .seconds(3600))
            }
            batch.acknowledge()
            say("ACKED")
        }
    }
    try await client.subscribe(filter, qos: .atLeastOnce)
    say("READY")
    try await consumer.value
}

@main
struct Probe {
    static func main() async {
        do {
            try await runProbe()
        } catch {
            FileHandle.standardError.write(Data("mqtt-probe: \(error)\n".utf8))
            exit(1)
        }
    }
}
