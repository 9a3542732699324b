import Foundation
import MorpheusCore
import Postgres
import Testing
import TestSupport

/// The production broker configuration (config/mosquitto-production.conf, config/mosquitto.acl,
/// accounts by scripts/broker-users.sh) on a real Mosquitto: editors are confined to their own
/// topics, anonymous clients are refused, and the service works under its own account over TLS.
@Suite("Broker security (production config)")
struct BrokerSecurityTests {
    /// A Mosquitto of the test's own, started from the production files with their paths and
    /// port rewritten, and accounts for two editors and the three roles.
    struct ProductionBroker {
        let directory: String
        let port: Int
        let process: ChildProcess

        static let accounts = ["alice", "bob", "morpheus-service", "morpheus-trainer", "morpheus-monitor"]
        static func password(_ user: String) -> String { "pw-\(user)-\(user.count)" }

        static func start() async throws -> ProductionBroker {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.unique("prodbroker")).path
            try await runScript("dev-certs.sh", [directory])
            for user in accounts { try await runScript("broker-users.sh", [directory, "add", user, password(user)]) }
            let port = TestEnvironment.freePort()
            var config = try String(contentsOf: TestEnvironment.repositoryRoot.appendingPathComponent("config/mosquitto-production.conf"), encoding: .utf8)
            config = config.replacingOccurrences(of: "/etc/mosquitto/morpheus/", with: directory + "/")
                .replacingOccurrences(of: "persistence true", with: "persistence false")
                .replacingOccurrences(of: "listener 8883", with: "listener \(port) 127.0.0.1")
            try (config + "\nlog_dest stderr\n").write(toFile: "\(directory)/mosquitto.conf", atomically: true, encoding: .utf8)
            chmod(directory, 0o755)
            chmod("\(directory)/acl", 0o644)
            let process = try ChildProcess(URL(fileURLWithPath: "/usr/sbin/mosquitto"), arguments: ["-c", "\(directory)/mosquitto.conf"])
            try await process.waitForLine("broker running", timeout: .seconds(10)) { $0.contains("running") }
            return ProductionBroker(directory: directory, port: port, process: process)
        }

        /// mosquitto_pub/mosquitto_sub arguments for `user` over TLS (nil: anonymous).
        func client(_ user: String?) -> [String] {
            ["-V", "mqttv5", "-h", "127.0.0.1", "-p", "\(port)", "--cafile", "\(directory)/ca.crt"]
                + (user.map { ["-u", $0, "-P", Self.password($0)] } ?? [])
        }

        func subscribe(_ user: String?, _ filter: String, seconds: Int = 60) throws -> ChildProcess {
            // -d prints the SUBACK, so a test can wait for the subscription to be in place; stdbuf:
            // line-buffered, as on a terminal (debug lines are not flushed into a pipe).
            try ChildProcess(URL(fileURLWithPath: "/usr/bin/stdbuf"),
                             arguments: ["-oL", "/usr/bin/mosquitto_sub"] + client(user) + ["-d", "-t", filter, "-v", "-W", "\(seconds)"])
        }

        @discardableResult
        func publish(_ user: String?, _ topic: String, _ payload: String, extra: [String] = []) async throws -> ChildProcess {
            let process = try ChildProcess(URL(fileURLWithPath: "/usr/bin/mosquitto_pub"),
                                           arguments: client(user) + ["-q", "1", "-t", topic, "-m", payload] + extra)
            _ = try await process.waitForExit(timeout: .seconds(10))
            return process
        }

        func stop() async throws {
            try await process.kill(SIGTERM)
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    @Test("an editor cannot publish as another user (PUBACK 0x87, nothing delivered), cannot read another user's replies or training data; anonymous clients are refused; roles get what the ACL gives them")
    func editorsAreConfined() async throws {
        let broker = try await ProductionBroker.start()
        let service = try broker.subscribe("morpheus-service", "$share/morpheus-feedback/morpheus/v1/corrections/+/+")
        let bobReplies = try broker.subscribe("bob", "morpheus/v1/replies/bob/#")
        let aliceSpying = try broker.subscribe("alice", "morpheus/v1/replies/bob/#")
        let aliceTraining = try broker.subscribe("alice", "morpheus/v1/training/#")
        let trainer = try broker.subscribe("morpheus-trainer", "morpheus/v1/training/#")
        let trainerCorrections = try broker.subscribe("morpheus-trainer", "morpheus/v1/corrections/#")
        try await waitUntil("every subscription acknowledged", timeout: .seconds(10)) {
            [service, bobReplies, aliceSpying, aliceTraining, trainer, trainerCorrections].allSatisfy { $0.lines.contains { $0.contains("SUBACK") } }
        }

        let forged = try await broker.publish("alice", "morpheus/v1/corrections/text/bob", "forged by alice")
        #expect(forged.lines.contains { $0.contains("Not authorized") }, "the broker answers the forged publish with a failure reason: \(forged.lines)")
        try await broker.publish("alice", "morpheus/v1/corrections/text/alice", "alice's own")
        try await broker.publish("morpheus-service", "morpheus/v1/replies/bob/r1", "receipt for bob")
        try await broker.publish("morpheus-service", "morpheus/v1/training/text", "an example")
        // Only the service may write receipts and training data.
        let fakeReceipt = try await broker.publish("alice", "morpheus/v1/replies/bob/r2", "fake receipt")
        #expect(fakeReceipt.lines.contains { $0.contains("Not authorized") })
        let anonymous = try await broker.publish(nil, "morpheus/v1/corrections/text/alice", "anonymous")
        #expect(anonymous.exitStatus != 0 && anonymous.lines.contains { $0.contains("Not authorized") }, "\(anonymous.lines)")

        do {
            try await waitUntil("the allowed deliveries", timeout: .seconds(20)) {
                service.lines.contains { $0.hasSuffix("alice's own") } && bobReplies.lines.contains { $0.hasSuffix("receipt for bob") }
                    && trainer.lines.contains { $0.hasSuffix("an example") }
            }
        } catch {
            Issue.record("service: \(service.lines)\nbob: \(bobReplies.lines)\ntrainer: \(trainer.lines)")
            throw error
        }
        // Every forbidden message was published (and refused or routed) before the allowed ones arrived.
        for process in [service, bobReplies, aliceSpying, aliceTraining, trainer, trainerCorrections] { try await process.kill(SIGTERM) }
        #expect(!service.lines.contains { $0.contains("forged") || $0.contains("anonymous") }, "\(service.lines)")
        #expect(!bobReplies.lines.contains { $0.contains("fake receipt") })
        #expect(!aliceSpying.lines.contains { $0.hasPrefix("morpheus/") }, "alice reads none of bob's replies: \(aliceSpying.lines)")
        #expect(!aliceTraining.lines.contains { $0.hasPrefix("morpheus/") }, "editors read no training data: \(aliceTraining.lines)")
        #expect(!trainerCorrections.lines.contains { $0.hasPrefix("morpheus/") }, "trainers read no raw corrections")
        try await broker.stop()
    }

    @Test("the service runs end to end under its own account over TLS: an editor's correction is stored and answered on the editor's reply topic")
    func serviceOverTLS() async throws {
        let broker = try await ProductionBroker.start()
        let database = try await ScratchDatabase.create()
        // The ACL names the contract's prefix: this broker is the test's own, so no other test meets it.
        let instance = Instance(prefix: "morpheus/v1")
        let status = try broker.subscribe("morpheus-monitor", instance.statusTopic, seconds: 60)
        let replies = try broker.subscribe("alice", "morpheus/v1/replies/alice/#", seconds: 60)
        try await waitUntil("alice subscribed", timeout: .seconds(10)) { replies.lines.contains { $0.contains("SUBACK") } }
        let service = try startService(instance, databaseURL: database.url, brokerPort: broker.port, environment: [
            "MORPHEUS_BROKER_USERNAME": "morpheus-service", "MORPHEUS_BROKER_PASSWORD": ProductionBroker.password("morpheus-service"),
            "MORPHEUS_BROKER_TLS_CA_FILE": "\(broker.directory)/ca.crt",
        ])
        try await waitUntil("service online", timeout: .seconds(30)) { status.lines.contains { $0.contains("\"online\"") } }

        let id = UUID().uuidString.lowercased()
        let payload = Samples.text.setting("/userId", to: .string("alice")).setting("/feedbackId", to: .string(id))
            .setting("/occurredAt", to: .string(RFC3339.format(Date()))).serializedString
        let published = try await broker.publish("alice", "morpheus/v1/corrections/text/alice", payload,
                                                 extra: ["-D", "publish", "response-topic", "morpheus/v1/replies/alice/r"])
        #expect(published.exitStatus == 0, "\(published.lines)")
        try await waitUntil("alice's receipt", timeout: .seconds(30)) { replies.lines.contains { $0.contains(id) && $0.contains("\"accepted\"") } }
        let pool = PostgresPool(configuration: database.configuration, size: 1)
        #expect(try await pool.withConnection { try $0.query("SELECT count(*) FROM feedback WHERE feedback_id = $1::uuid", [id]).first!.decode(0, as: Int.self) } == 1)
        await pool.close()

        try await service.kill(SIGTERM, timeout: .seconds(15))
        try await status.kill(SIGTERM)
        try await replies.kill(SIGTERM)
        try await database.drop()
        try await broker.stop()
    }
}
