import Foundation
import MorpheusCore
import MorpheusStorage
import Postgres
import Testing
import TestSupport

/// The ingest pipeline driven with Eclipse's `mosquitto_pub` (MQTT 5 properties included) and
/// watched with `mosquitto_sub`, against the real service process, broker and database.
@Suite("Ingest end to end")
struct IngestEndToEndTests {
    func correction(user: String, id: String = UUID().uuidString.lowercased(), text: String = "Hey there!") -> String {
        Samples.text
            .setting("/userId", to: .string(user))
            .setting("/feedbackId", to: .string(id))
            .setting("/occurredAt", to: .string(RFC3339.format(Date())))
            .setting("/corrected/text", to: .string(text))
            .serializedString
    }

    @Test("receipts for accepted, duplicate, conflicting, invalid and foreign-routed corrections; training event; dead letter")
    func receiptsAndEvents() async throws {
        let instance = Instance()
        let user = "alice.e2e"
        let replies = "\(instance.prefix)/replies/\(user)"
        let watcher = try watch(["\(replies)/#", "\(instance.prefix)/training/#", "\(instance.prefix)/deadletter"])
        try await waitSubscribed(watcher, topic: "\(replies)/marker")
        let service = try await ServiceUnderTest.start(instance)
        let database = service.database
        func observed() -> [Observed] { watcher.lines.compactMap(Observed.init) }
        func receipt(for id: String, status expected: String) async throws -> Observed {
            try await waitUntil("a \(expected) receipt for \(id)") {
                observed().contains { $0.json["feedbackId"] as? String == id && $0.json["status"] as? String == expected }
            }
            return observed().last { $0.json["feedbackId"] as? String == id && $0.json["status"] as? String == expected }!
        }
        let topic = "\(instance.prefix)/corrections/text/\(user)"

        // Accepted, answered on the response topic with the correlation data.
        let id = UUID().uuidString.lowercased()
        let payload = correction(user: user, id: id)
        try await mosquittoPublish(topic, payload: payload, responseTopic: "\(replies)/req-1", correlationData: "corr-42")
        let accepted = try await receipt(for: id, status: "accepted")
        #expect(accepted.topic == "\(replies)/req-1")
        #expect(accepted.correlation == "corr-42")
        #expect(accepted.json["committedAt"] is String)
        try await waitUntil("training event") { observed().contains { $0.topic == "\(instance.prefix)/training/text" && $0.json["feedbackId"] as? String == id } }
        let event = try #require(observed().first { $0.topic == "\(instance.prefix)/training/text" }?.json)
        #expect(event["schema"] as? String == "morpheus.training-example/1")
        #expect((event["contributor"] as? String)?.hasPrefix("u_") == true)

        // The identical payload again, as an editor without its receipt does: a duplicate.
        try await mosquittoPublish(topic, payload: payload)
        let duplicate = try await receipt(for: id, status: "duplicate")
        #expect(duplicate.topic == replies)
        #expect(duplicate.json["originalFeedbackId"] as? String == id)

        // Same id, other content: idempotency_conflict.
        try await mosquittoPublish(topic, payload: correction(user: user, id: id, text: "Something else"))
        let conflict = try await receipt(for: id, status: "rejected")
        #expect((conflict.json["errors"] as? [[String: Any]])?.first?["code"] as? String == "idempotency_conflict")

        // Invalid, with a response topic in someone else's reply space: refused, sent home.
        let bad = UUID().uuidString.lowercased()
        try await mosquittoPublish(topic, payload: #"{"schema":"morpheus.correction/1","feedbackId":"\#(bad)","extra":1}"#,
                                   responseTopic: "\(instance.prefix)/replies/mallory/inbox")
        let rejected = try await receipt(for: bad, status: "rejected")
        #expect(rejected.topic == replies)
        let codes = Set(((rejected.json["errors"] as? [[String: Any]]) ?? []).compactMap { $0["code"] as? String })
        #expect(codes.isSuperset(of: ["missing_field", "unknown_field"]))

        // Nothing readable: a dead letter.
        try await mosquittoPublish(topic, payload: "not json at all")
        try await waitUntil("dead letter") { observed().contains { $0.topic == "\(instance.prefix)/deadletter" } }
        let letter = try #require(observed().first { $0.topic == "\(instance.prefix)/deadletter" }?.json)
        #expect(letter["payloadSha256"] as? String == sha256Hex(Array("not json at all".utf8)))

        let pool = PostgresPool(configuration: database.configuration, size: 1)
        let counts = try await pool.withConnection { connection in
            try ["feedback", "training_examples", "dead_letters", "outbox_batches"].map {
                try connection.query("SELECT count(*) FROM \($0)").first!.decode(0, as: Int.self)
            }
        }
        #expect(counts[0] == 1)
        #expect(counts[1] == 1)
        #expect(counts[2] == 1)
        try await waitUntil("outbox drained") {
            try await pool.withConnection { try $0.query("SELECT count(*) FROM outbox_batches").first!.decode(0, as: Int.self) } == 0
        }

        await pool.close()
        #expect(try await service.stop() == 0)
        let counters = service.statuses.last?.counters
        #expect(counters?.received == 5)
        #expect(counters?.accepted == 1)
        #expect(counters?.duplicate == 1)
        #expect(counters?.rejected == 2)
        #expect(counters?.deadLettered == 1)
        try await watcher.kill(SIGTERM)
    }

    @Test("events committed by a process that died before publishing them are published by the next one")
    func outboxRepublishAfterCrash() async throws {
        let database = try await ScratchDatabase.create()
        let instance = Instance()
        // First run: migrate, then die without ever publishing the events below.
        let status = try watchStatus(instance)
        let first = try startService(instance, databaseURL: database.url)
        try await waitUntil("first run online", timeout: .seconds(30)) { status.lines.contains { $0.contains("\"online\"") } }
        try await first.kill(SIGKILL)

        let pool = PostgresPool(configuration: database.configuration, size: 1)
        let events = (0..<5).map { #"{"schema":"morpheus.training-example/1","n":\#($0)}"# }
        try await pool.withConnection { [prefix = instance.prefix] connection in
            // Two committed batches that were never published.
            for batch in [events.prefix(2), events.dropFirst(2)] {
                let framed = OutboxFraming.encode(batch.map { OutboxEvent(topic: "\(prefix)/training/text", payload: Array($0.utf8)) })
                try connection.query("INSERT INTO outbox_batches (events, event_count) VALUES ($1, $2)", [PostgresBytes(framed), batch.count])
            }
        }
        let watcher = try watch(["\(instance.prefix)/training/#"])
        try await waitSubscribed(watcher, topic: "\(instance.prefix)/training/marker")
        let second = try startService(instance, databaseURL: database.url)
        try await waitUntil("every pending event published", timeout: .seconds(30)) {
            Set(watcher.lines.compactMap(Observed.init).map(\.payload)).isSuperset(of: events)
        }
        try await waitUntil("outbox emptied") {
            try await pool.withConnection { try $0.query("SELECT count(*) FROM outbox_batches").first!.decode(0, as: Int.self) } == 0
        }
        try await second.kill(SIGTERM)
        try await watcher.kill(SIGTERM)
        try await status.kill(SIGTERM)
        await pool.close()
        try await database.drop()
    }

    @Test("outcomes are stored once and answered only when they carry a response topic; a privacy status request is answered applied with the settings")
    func outcomesAndPrivacy() async throws {
        let instance = Instance()
        let user = "alice.w_1"
        let replies = "\(instance.prefix)/replies/\(user)"
        let watcher = try watch(["\(replies)/#"])
        try await waitSubscribed(watcher, topic: "\(replies)/marker")
        let service = try await ServiceUnderTest.start(instance)
        let database = service.database
        func receipts() -> [[String: Any]] { watcher.lines.compactMap(Observed.init).map(\.json).filter { !$0.isEmpty } }

        let asked = Samples.outcome.setting("/occurredAt", to: .string(RFC3339.format(Date()))).serializedString
        let silentId = UUID().uuidString.lowercased()
        let silent = Samples.outcome.setting("/outcomeId", to: .string(silentId)).setting("/occurredAt", to: .string(RFC3339.format(Date()))).serializedString
        let topic = "\(instance.prefix)/outcomes/text/\(user)"
        try await mosquittoPublish(topic, payload: silent)
        try await mosquittoPublish(topic, payload: asked, responseTopic: "\(replies)/o1", correlationData: "o1")
        try await mosquittoPublish(topic, payload: asked, responseTopic: "\(replies)/o1", correlationData: "o1")
        let requestId = UUID().uuidString.lowercased()
        try await mosquittoPublish("\(instance.prefix)/privacy/\(user)",
                                   payload: #"{"schema":"morpheus.privacy/1","requestId":"\#(requestId)","userId":"\#(user)","action":"status"}"#)

        try await waitUntil("outcome and privacy receipts") { receipts().count >= 3 }
        // Receipts of one batch need not keep the messages' order; they are matched by id.
        let outcomeStatuses = receipts().filter { $0["feedbackId"] as? String == "5e0d6c1a-7b2f-4f3e-9a8d-1c2b3a4d5e6f" }.compactMap { $0["status"] as? String }
        #expect(outcomeStatuses == ["accepted", "duplicate"])
        let privacy = try #require(receipts().first { $0["feedbackId"] as? String == requestId })
        #expect(privacy["status"] as? String == "applied")
        #expect(privacy["feedbackId"] as? String == requestId)
        #expect((privacy["settings"] as? [String: Any])?["optedOut"] as? Bool == false)
        #expect(!receipts().contains { $0["feedbackId"] as? String == silentId })

        let pool = PostgresPool(configuration: database.configuration, size: 1)
        let stored = try await pool.withConnection { try $0.query("SELECT count(*) FROM outcomes").first!.decode(0, as: Int.self) }
        #expect(stored == 2)
        await pool.close()
        try await service.stop()
        try await watcher.kill(SIGTERM)
    }

    @Test("the CLI publishes a correction and prints its receipt; `status --json` lists the instance")
    func commandLine() async throws {
        let service = try await ServiceUnderTest.start()
        let instance = service.instance
        let cli = TestEnvironment.productsDirectory.appendingPathComponent("morpheus")
        let broker = ["--port", "\(TestEnvironment.brokerPort)", "--prefix", instance.prefix]

        let file = FileManager.default.temporaryDirectory.appendingPathComponent("\(TestEnvironment.unique("correction")).json")
        let id = UUID().uuidString.lowercased()
        try Samples.text.setting("/feedbackId", to: .string(id)).setting("/occurredAt", to: .string(RFC3339.format(Date())))
            .serializedString.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let publish = try ChildProcess(cli, arguments: ["publish"] + broker + [file.path])
        #expect(try await publish.waitForExit(timeout: .seconds(30)) == 0, "\(publish.lines)")
        let receipt = try #require(publish.lines.first { $0.hasPrefix("{") })
        #expect(receipt.contains("\"feedbackId\":\"\(id)\""))
        #expect(receipt.contains("\"status\":\"accepted\""))

        let rejected = FileManager.default.temporaryDirectory.appendingPathComponent("\(TestEnvironment.unique("bad")).json")
        try Samples.text.setting("/feedbackId", to: .string(UUID().uuidString)).setting("/occurredAt", to: .string("yesterday"))
            .serializedString.write(to: rejected, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: rejected) }
        let refused = try ChildProcess(cli, arguments: ["publish"] + broker + [rejected.path])
        #expect(try await refused.waitForExit(timeout: .seconds(30)) == 2)
        #expect(refused.lines.contains { $0.contains("invalid_timestamp") })

        let listing = try ChildProcess(cli, arguments: ["status", "--json"] + broker)
        #expect(try await listing.waitForExit(timeout: .seconds(30)) == 0)
        let listed = try #require(listing.lines.first { $0.hasPrefix("[") })
        #expect(listed.contains("\"instanceId\":\"\(instance.id)\""))
        #expect(listed.contains("\"state\":\"online\""))
        try await service.stop()
    }

    @Test("every rejection code reaches the editor end to end, through mosquitto_pub")
    func everyRejectionCode() async throws {
        let instance = Instance()
        let user = "alice.w_1"
        let watcher = try watch(["\(instance.prefix)/replies/#"])
        try await waitSubscribed(watcher, topic: "\(instance.prefix)/replies/\(user)/marker")
        let service = try await ServiceUnderTest.start(instance)
        let database = service.database

        func sample(_ id: String, _ changes: [(JSONPointer, JSONValue?)]) -> String {
            var document = Samples.text.setting("/feedbackId", to: .string(id)).setting("/occurredAt", to: .string(RFC3339.format(Date())))
            for (pointer, value) in changes { document = document.setting(pointer, to: value) }
            return document.serializedString
        }
        let deep = (0..<20).reduce(JSONValue.string("x")) { inner, _ in .array([inner]) }
        let cases: [(code: String, make: (String) -> String, topicUser: String)] = [
            ("malformed_json", { #"{"feedbackId":"\#($0)","schema":"# }, user),
            ("payload_too_large", { #"{"feedbackId":"\#($0)","pad":""# + String(repeating: "a", count: 300_000) + #""}"# }, user),
            ("unsupported_schema", { sample($0, [("/schema", .string("morpheus.correction/9"))]) }, user),
            ("missing_field", { sample($0, [("/target", nil)]) }, user),
            ("unknown_field", { sample($0, [("/rating", .number(5))]) }, user),
            ("invalid_type", { sample($0, [("/editDurationMs", .string("long"))]) }, user),
            ("invalid_value", { sample($0, [("/correctionType", .string("panel_order"))]) }, user),
            ("too_long", { sample($0, [("/target/comicId", .string(String(repeating: "c", count: 129)))]) }, user),
            ("invalid_timestamp", { sample($0, [("/occurredAt", .string("yesterday"))]) }, user),
            ("topic_mismatch", { sample($0, []) }, "bob"),
            ("no_change", { sample($0, [("/corrected/text", .string("A harbour. Boats."))]) }, user),
            ("nesting_too_deep", { sample($0, [("/client/app", deep)]) }, user),
            ("duplicate_field", { #"{"feedbackId":"\#($0)","feedbackId":"\#($0)"}"# }, user),
        ]
        var expected: [String: (code: String, replyTopic: String)] = [:]
        for entry in cases {
            let id = UUID().uuidString.lowercased()
            expected[id] = (entry.code, "\(instance.prefix)/replies/\(entry.topicUser)")
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("\(id).json")
            try entry.make(id).write(to: file, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(at: file) }
            let publisher = try ChildProcess(URL(fileURLWithPath: "/usr/bin/mosquitto_pub"), arguments: [
                "-V", "mqttv5", "-h", "127.0.0.1", "-p", "\(TestEnvironment.brokerPort)", "-q", "1",
                "-t", "\(instance.prefix)/corrections/text/\(entry.topicUser)", "-f", file.path,
            ])
            #expect(try await publisher.waitForExit() == 0)
        }
        func receipts() -> [String: Observed] {
            Dictionary(watcher.lines.compactMap(Observed.init).compactMap { observed in
                (observed.json["feedbackId"] as? String).map { ($0, observed) }
            }, uniquingKeysWith: { first, _ in first })
        }
        try await waitUntil("a receipt for every case", timeout: .seconds(30)) { Set(receipts().keys).isSuperset(of: expected.keys) }
        for (id, want) in expected {
            let receipt = try #require(receipts()[id])
            let codes = ((receipt.json["errors"] as? [[String: Any]]) ?? []).compactMap { $0["code"] as? String }
            #expect(receipt.json["status"] as? String == "rejected", "\(want.code)")
            #expect(codes.contains(want.code), "expected \(want.code), got \(codes)")
            #expect(receipt.topic == want.replyTopic, "\(want.code)")
        }
        let pool = PostgresPool(configuration: database.configuration, size: 1)
        let stored = try await pool.withConnection { try $0.query("SELECT count(*) FROM feedback").first!.decode(0, as: Int.self) }
        #expect(stored == 0)
        await pool.close()
        try await service.stop()
        try await watcher.kill(SIGTERM)
    }
}
