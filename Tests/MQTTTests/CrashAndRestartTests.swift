import Foundation
import MQTT
import Testing
import TestSupport

/// The properties the whole service relies on: what was not acknowledged comes back after a
/// crash, what was acknowledged does not, and a broker restart is survived.
@Suite("Deferred acknowledgement, crashes and broker restarts")
struct CrashAndRestartTests {
    let probe = TestEnvironment.productsDirectory.appendingPathComponent("mqtt-probe")

    func startProbe(id: String, filter: String, mode: String, extra: [String] = []) async throws -> ChildProcess {
        let process = try ChildProcess(probe, arguments: [
            "--port", "\(TestEnvironment.brokerPort)", "--id", id, "--filter", filter, "--mode", mode,
        ] + extra)
        try await process.waitForLine("probe READY") { $0 == "READY" }
        return process
    }

    func payloads(_ process: ChildProcess) -> [String] {
        process.lines.filter { $0.hasPrefix("MSG ") }.map { String($0.split(separator: " ", maxSplits: 2).last ?? "") }
    }

    @Test("a subscriber SIGKILLed before acknowledging its batch gets the whole batch again")
    func unacknowledgedBatchIsRedelivered() async throws {
        let topic = TestEnvironment.unique("test/crash")
        let id = TestEnvironment.unique("probe")
        let holding = try await startProbe(id: id, filter: topic, mode: "hold")
        let publisher = try await makeClient()
        let sent = (0..<50).map { "c\($0)" }
        for payload in sent {
            try await publisher.publish(.init(topic: topic, payload: payload.bytes))
        }
        try await holding.waitForLine("the held batch") { $0 == "HOLDING" }
        let held = payloads(holding)
        #expect(!held.isEmpty)
        try await holding.kill(SIGKILL)

        let acking = try await startProbe(id: id, filter: topic, mode: "ack")
        try await waitUntil("every message redelivered") { Set(payloads(acking)).isSuperset(of: sent) }
        #expect(Set(held).isSubset(of: Set(payloads(acking))))
        try await acking.kill(SIGTERM)
        await publisher.shutdown()
    }

    @Test("a batch acknowledged before a SIGKILL is not delivered again")
    func acknowledgedBatchIsNotRedelivered() async throws {
        let topic = TestEnvironment.unique("test/acked")
        let id = TestEnvironment.unique("probe")
        let first = try await startProbe(id: id, filter: topic, mode: "ack")
        let publisher = try await makeClient()
        for index in 0..<20 {
            try await publisher.publish(.init(topic: topic, payload: "a\(index)".bytes))
        }
        try await waitUntil("20 messages acknowledged") { payloads(first).count >= 20 && first.lines.last == "ACKED" }
        // The PUBACKs were written when the batch was acknowledged; give the loop its write.
        try await publisher.publish(.init(topic: topic, payload: "fence".bytes))
        try await waitUntil("fence acknowledged") { payloads(first).contains("fence") && first.lines.last == "ACKED" }
        try await first.kill(SIGKILL)

        let second = try await startProbe(id: id, filter: topic, mode: "ack")
        try await publisher.publish(.init(topic: topic, payload: "marker".bytes))
        try await waitUntil("marker") { payloads(second).contains("marker") }
        // Only what was published after the crash, plus possibly the last batch whose PUBACKs
        // may not have left before the kill (the fence exists to make that one batch).
        let replayed = payloads(second).filter { $0 != "marker" && $0 != "fence" }
        #expect(replayed.isEmpty, "acknowledged messages came back: \(replayed)")
        try await second.kill(SIGTERM)
        await publisher.shutdown()
    }

    @Test("a client killed without DISCONNECT makes the broker publish its last will")
    func lastWillOnCrash() async throws {
        let topic = TestEnvironment.unique("test/will")
        let watcher = try await makeClient()
        let inbox = Inbox(watcher)
        try await watcher.subscribe(topic)
        let probe = try await startProbe(id: TestEnvironment.unique("probe"), filter: "\(topic)/unused", mode: "ack",
                                         extra: ["--will-topic", topic, "--will-payload", "offline"])
        try await probe.kill(SIGKILL)
        try await inbox.waitForCount(1, timeout: .seconds(15))
        #expect(inbox.messages.first?.payload == "offline".bytes)
        await watcher.shutdown()
    }

    @Test("after a broker restart the client reconnects, resubscribes and keeps working")
    func brokerRestart() async throws {
        let port = TestEnvironment.freePort()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.unique("broker")).path
        try await runScript("broker.sh", ["start", directory, "\(port)"])

        let topic = TestEnvironment.unique("test/restart")
        // A clean session: after the restart the broker has nothing for it, so the client
        // must send its SUBSCRIBE again by itself.
        let subscriber = try await makeClient(port: port)
        let inbox = Inbox(subscriber)
        try await subscriber.subscribe(topic)
        let publisher = try await makeClient(port: port)
        try await publisher.publish(.init(topic: topic, payload: "before".bytes))
        try await inbox.waitForCount(1)

        let states = subscriber.connectionStates()
        try await runScript("broker.sh", ["stop", directory, "\(port)"])
        try await waitUntil("the subscriber to notice") { !subscriber.connectionState.isConnected }
        try await runScript("broker.sh", ["start", directory, "\(port)"])
        try await subscriber.waitUntilConnected(timeout: .seconds(15))
        try await publisher.waitUntilConnected(timeout: .seconds(15))

        try await waitUntil("delivery after the restart", timeout: .seconds(15)) {
            try? await publisher.publish(.init(topic: topic, payload: "after".bytes))
            return inbox.messages.contains { $0.payload == "after".bytes }
        }
        var observed: [MQTTConnectionState] = []
        for await state in states {
            observed.append(state)
            if observed.count >= 3, state.isConnected { break }
        }
        #expect(observed.contains { if case .disconnected = $0 { true } else { false } })
        #expect(observed.last?.isConnected == true)
        await subscriber.shutdown()
        await publisher.shutdown()
        try await runScript("broker.sh", ["stop", directory, "\(port)"])
    }

    @Test("a persistent session's shared subscription is sent again after a graceful broker restart (the broker restores the session without it)")
    func sharedSubscriptionAfterRestart() async throws {
        let port = TestEnvironment.freePort()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.unique("broker")).path
        try await runScript("broker.sh", ["start", directory, "\(port)"])
        let topic = TestEnvironment.unique("test/shared")
        let subscriber = try await makeClient(port: port, cleanStart: false, sessionExpiry: .seconds(300))
        let inbox = Inbox(subscriber)
        try await subscriber.subscribe("$share/g/\(topic)/#")
        let publisher = try await makeClient(port: port)
        try await publisher.publish(.init(topic: "\(topic)/1", payload: "before".bytes))
        try await inbox.waitForCount(1)

        // SIGTERM: the broker writes its persistence file and restores the session from it.
        try await runScript("broker.sh", ["stop", directory, "\(port)"])
        try await waitUntil("the subscriber to notice") { !subscriber.connectionState.isConnected }
        let states = subscriber.connectionStates()
        try await runScript("broker.sh", ["start", directory, "\(port)"])
        for await state in states where state.isConnected {
            #expect(state == .connected(sessionPresent: true), "the broker kept the session")
            break
        }
        try await waitUntil("delivery after the restart", timeout: .seconds(15)) {
            try? await publisher.publish(.init(topic: "\(topic)/2", payload: "after".bytes))
            return inbox.messages.contains { $0.payload == "after".bytes }
        }
        await subscriber.shutdown()
        await publisher.shutdown()
        try await runScript("broker.sh", ["stop", directory, "\(port)"])
    }
}
