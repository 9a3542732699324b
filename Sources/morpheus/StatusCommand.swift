import ArgumentParser
import Foundation
import MQTT
import MorpheusCore

/// `morpheus status`: the retained status of every instance, as a table or JSON.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the retained status of every service instance."
    )

    @OptionGroup var broker: BrokerOptions

    @Flag(help: "Print the statuses as a JSON array.")
    var json = false

    @Option(help: "Milliseconds to collect retained statuses.")
    var wait: Int = 500

    func run() async throws {
        let client = try MQTTClient(configuration: .init(
            host: broker.host, port: broker.port, clientID: "morpheus-cli-\(UUID().uuidString.prefix(8))",
            username: broker.username, password: broker.password ?? ProcessInfo.processInfo.environment["MORPHEUS_BROKER_PASSWORD"]
        ))
        client.start()
        do {
            try await client.waitUntilConnected(timeout: .seconds(10))
        } catch {
            await client.shutdown()
            throw error
        }
        let collector = Task { () -> [ServiceStatus] in
            var statuses: [String: ServiceStatus] = [:]
            for await batch in client.batches {
                batch.acknowledge()
                for message in batch.messages {
                    if let status = try? ServiceStatus.decode(message.payload) { statuses[status.instanceId] = status }
                }
            }
            return statuses.values.sorted { $0.instanceId < $1.instanceId }
        }
        try await client.subscribe("\(broker.prefix)/status/+")
        // Retained messages arrive right after the SUBACK.
        try await Task.sleep(for: .milliseconds(wait))
        await client.shutdown()
        let statuses = await collector.value
        if json {
            print("[" + statuses.map { String(decoding: $0.encoded(), as: UTF8.self) }.joined(separator: ",") + "]")
            return
        }
        let rows = [["INSTANCE", "STATE", "DATABASE", "VERSION", "UPDATED", "RECEIVED", "ACCEPTED", "FLAGGED", "DUPLICATE", "REJECTED", "DEAD",
                     "RETRIES", "P50 ms", "P99 ms"]]
            + statuses.map { s in
                [s.instanceId, s.state.rawValue, s.database.rawValue, s.version, RFC3339.format(s.updatedAt), "\(s.counters.received)",
                 "\(s.counters.accepted)", "\(s.counters.flagged)", "\(s.counters.duplicate)", "\(s.counters.rejected)",
                 "\(s.counters.deadLettered)", "\(s.counters.retries)", "\(s.latencyMs.p50)", "\(s.latencyMs.p99)"]
            }
        printTable(rows)
        if statuses.isEmpty { print("(no instance has reported under \(broker.prefix)/status/)") }
        for s in statuses where s.database == .unavailable {
            print("\(s.instanceId): holding messages, the database is unavailable: \(s.databaseError ?? "unknown error")")
        }
    }
}
