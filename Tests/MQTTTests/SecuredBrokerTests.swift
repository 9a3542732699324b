import Foundation
import MQTT
import Testing
import TestSupport

/// A broker of the test's own with a TLS listener, a password file and no anonymous access.
@Suite("TLS and credentials")
struct SecuredBrokerTests {
    struct SecuredBroker {
        let directory: String
        let port: Int
        let process: ChildProcess
        var caFile: String { "\(directory)/ca.crt" }

        static func start() async throws -> SecuredBroker {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.unique("tls")).path
            try await runScript("dev-certs.sh", [directory])
            let passwords = try ChildProcess(URL(fileURLWithPath: "/usr/bin/mosquitto_passwd"),
                                             arguments: ["-c", "-b", "\(directory)/passwd", "editor", "correct horse"])
            #expect(try await passwords.waitForExit() == 0)
            chmod("\(directory)/passwd", 0o644)
            let port = TestEnvironment.freePort()
            try """
            listener \(port) 127.0.0.1
            cafile \(directory)/ca.crt
            certfile \(directory)/server.crt
            keyfile \(directory)/server.key
            allow_anonymous false
            password_file \(directory)/passwd
            persistence false
            log_dest stderr
            """.write(toFile: "\(directory)/mosquitto.conf", atomically: true, encoding: .utf8)
            let process = try ChildProcess(URL(fileURLWithPath: "/usr/sbin/mosquitto"), arguments: ["-c", "\(directory)/mosquitto.conf"])
            try await process.waitForLine("broker listening", timeout: .seconds(10)) { $0.contains("Opening ipv4 listen socket on port \(port)") }
            return SecuredBroker(directory: directory, port: port, process: process)
        }

        func stop() async throws {
            try await process.kill(SIGTERM)
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    @Test("with the CA and the right credentials a client connects over TLS and messages flow")
    func tlsWithCredentials() async throws {
        let broker = try await SecuredBroker.start()
        let secure: (inout MQTTClientConfiguration) -> Void = {
            $0.tls = .init(caFile: broker.caFile)
            $0.username = "editor"
            $0.password = "correct horse"
        }
        let subscriber = try await makeClient(port: broker.port, configure: secure)
        let inbox = Inbox(subscriber)
        try await subscriber.subscribe("secure/#")
        let publisher = try await makeClient(port: broker.port, configure: secure)
        try await publisher.publish(.init(topic: "secure/a", payload: "over tls".bytes))
        try await inbox.waitForCount(1)
        #expect(inbox.messages.first?.payload == "over tls".bytes)
        await subscriber.shutdown()
        await publisher.shutdown()
        try await broker.stop()
    }

    @Test("a client certificate is accepted by a broker that verifies the CA")
    func clientCertificate() async throws {
        let broker = try await SecuredBroker.start()
        let client = try await makeClient(port: broker.port) {
            $0.tls = .init(caFile: broker.caFile, certificateFile: "\(broker.directory)/client.crt", keyFile: "\(broker.directory)/client.key")
            $0.username = "editor"
            $0.password = "correct horse"
        }
        try await client.publish(.init(topic: "secure/b", payload: []))
        await client.shutdown()
        try await broker.stop()
    }

    @Test("a wrong password or a plain-text connection never gets connected")
    func refusedClients() async throws {
        let broker = try await SecuredBroker.start()
        let wrongPassword = try MQTTClient(configuration: .init(
            port: broker.port, clientID: TestEnvironment.unique("bad"), username: "editor", password: "wrong",
            tls: .init(caFile: broker.caFile), reconnectBackoff: .init(initial: .milliseconds(100), maximum: .milliseconds(200))
        ))
        let states = wrongPassword.connectionStates()
        wrongPassword.start()
        var refusal: String?
        for await state in states {
            if case .disconnected(let reason) = state, reason.hasPrefix("refused") {
                refusal = reason
                break
            }
        }
        #expect(refusal == "refused: Not authorized")
        await #expect(throws: MQTTError.self) { try await wrongPassword.waitUntilConnected(timeout: .milliseconds(500)) }
        await wrongPassword.shutdown()

        let plain = try MQTTClient(configuration: .init(port: broker.port, clientID: TestEnvironment.unique("plain"), username: "editor", password: "correct horse"))
        plain.start()
        await #expect(throws: MQTTError.self) { try await plain.waitUntilConnected(timeout: .seconds(1)) }
        await plain.shutdown()
        try await broker.stop()
    }
}
