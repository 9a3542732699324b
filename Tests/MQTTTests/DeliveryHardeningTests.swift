import Foundation
import MQTT
import Testing
import TestSupport

/// The binding's answers to the service's own trouble: a batch that cannot be made durable is
/// given back, batches are bounded by bytes, and publishing never races shutdown.
@Suite("Releasing batches, byte bounds, publishing during shutdown")
struct DeliveryHardeningTests {
    @Test("a released batch is delivered again on the resumed session, and only acknowledged work is never redelivered")
    func releasedBatchIsRedelivered() async throws {
        let topic = TestEnvironment.unique("test/release")
        let id = TestEnvironment.unique("consumer")
        let subscriber = try await makeClient(id: id, cleanStart: false, sessionExpiry: .seconds(300)) { $0.maxBatchSize = 5 }
        var batches = subscriber.batches.makeAsyncIterator()
        try await subscriber.subscribe(topic)
        let publisher = try await makeClient()
        for index in 0..<5 { try await publisher.publish(.init(topic: topic, payload: "m\(index)".bytes)) }

        var first: [String] = []
        var held: [MQTTBatch] = []
        while first.count < 5, let batch = await batches.next() {
            first += batch.messages.map { String(decoding: $0.payload, as: UTF8.self) }
            held.append(batch)
            #expect(batch.deadline > .now, "a fresh batch leaves time to commit")
            if first.count < 5 { batch.acknowledge() }
        }
        // The last batch cannot be made durable: give it back.
        let released = held.last!.messages.map { String(decoding: $0.payload, as: UTF8.self) }
        held.last!.release()
        // The broker sends it again, on a new connection of the same session.
        var again: [String] = []
        while again.count < released.count, let batch = await batches.next() {
            again += batch.messages.map { String(decoding: $0.payload, as: UTF8.self) }
            batch.acknowledge()
        }
        #expect(again == released)
        // A late acknowledgement of the released batch changes nothing.
        held.last!.acknowledge()
        // QoS 1 allows the broker a further copy; whatever else comes is acknowledged too.
        let drain = Task {
            var extra: [String] = []
            while let batch = await batches.next() {
                extra += batch.messages.map { String(decoding: $0.payload, as: UTF8.self) }
                batch.acknowledge()
            }
            return extra
        }
        await subscriber.shutdown()
        #expect(Set(await drain.value).isSubset(of: Set(released)), "only copies of the released batch come again")

        // Everything acknowledged stays acknowledged: a new connection of the session gets nothing
        // of the acknowledged batches.
        try await publisher.publish(.init(topic: topic, payload: "after".bytes))
        let resumed = try await makeClient(id: id, cleanStart: false, sessionExpiry: .seconds(300))
        let inbox = Inbox(resumed)
        try await resumed.subscribe(topic)
        try await waitUntil("the new message on the resumed session") {
            inbox.messages.contains { String(decoding: $0.payload, as: UTF8.self) == "after" }
        }
        try await Task.sleep(for: .milliseconds(300))
        // A copy of the released batch that the broker sent while the subscriber shut down may
        // come once more (it was never acknowledged); the acknowledged batches never do.
        let resumedPayloads = inbox.messages.map { String(decoding: $0.payload, as: UTF8.self) }
        #expect(resumedPayloads.filter { !released.contains($0) } == ["after"], "\(resumedPayloads)")
        await resumed.shutdown()
        await publisher.shutdown()
    }

    @Test("batches are bounded by bytes as well as by count")
    func batchesBoundedByBytes() async throws {
        let topic = TestEnvironment.unique("test/bytes")
        let subscriber = try await makeClient(receiveMaximum: 100) { $0.maxBatchSize = 100; $0.maxBatchBytes = 1 << 20 }
        try await subscriber.subscribe(topic)
        let publisher = try await makeClient()
        let payload = [UInt8](repeating: 0x61, count: 300 << 10)
        let count = 20
        for _ in 0..<count { try publisher.enqueue(.init(topic: topic, payload: payload)) }
        var sizes: [Int] = []
        var bytes: [Int] = []
        var seen = 0
        for await batch in subscriber.batches {
            sizes.append(batch.messages.count)
            bytes.append(batch.messages.reduce(0) { $0 + $1.payload.count })
            seen += batch.messages.count
            try await Task.sleep(for: .milliseconds(20))
            batch.acknowledge()
            if seen >= count { break }
        }
        // Reading stops once a batch holds 1 MiB: at most 4 messages of 300 KiB.
        #expect(sizes.allSatisfy { $0 <= 4 }, "\(sizes)")
        #expect(bytes.allSatisfy { $0 < (1 << 20) + payload.count })
        await subscriber.shutdown()
        await publisher.shutdown()
    }

    @Test("publishing from many tasks while the client shuts down never touches a freed handle")
    func publishRacingShutdown() async throws {
        for round in 0..<20 {
            let client = try await makeClient()
            let topic = TestEnvironment.unique("test/race")
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        for index in 0..<500 {
                            do {
                                try client.enqueue(.init(topic: topic, payload: "\(index)".bytes))
                            } catch let error as MQTTError {
                                #expect(error.code == .shutdown)
                                return
                            } catch {
                                Issue.record("unexpected \(error)")
                                return
                            }
                        }
                    }
                }
                group.addTask {
                    try? await Task.sleep(for: .microseconds(100 * round))
                    await client.shutdown()
                }
            }
            #expect(client.connectionState == .stopped)
        }
    }
}
