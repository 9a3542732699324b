import Foundation
import MorpheusCore
import Postgres
import Testing
import TestSupport

/// Where receipts go, driven with Eclipse's `mosquitto_pub` and watched with `mosquitto_sub`.
@Suite("Reply space end to end")
struct ReplySpaceTests {
    @Test("a response topic that only looks like the sender's reply space (Kelvin sign) is not used")
    func kelvinSign() async throws {
        let instance = Instance()
        let user = "Kim-" + TestEnvironment.unique("u")
        let lookalike = "\u{212A}" + user.dropFirst()
        let watcher = try watch(["\(instance.prefix)/replies/#"])
        try await waitSubscribed(watcher, topic: "\(instance.prefix)/replies/\(user)/marker")
        let service = try await ServiceUnderTest.start(instance)

        let id = UUID().uuidString.lowercased()
        let payload = Samples.text.setting("/userId", to: .string(user)).setting("/feedbackId", to: .string(id))
            .setting("/occurredAt", to: .string(RFC3339.format(Date()))).serializedString
        try await mosquittoPublish("\(instance.prefix)/corrections/text/\(user)", payload: payload,
                                   responseTopic: "\(instance.prefix)/replies/\(lookalike)/req-1", correlationData: "k-1")
        let base = "\(instance.prefix)/replies/\(user)"
        try await waitUntil("the receipt") { watcher.lines.compactMap(Observed.init).contains { $0.json["feedbackId"] as? String == id } }
        let receipts = watcher.lines.compactMap(Observed.init).filter { $0.json["feedbackId"] as? String == id }
        #expect(receipts.count == 1)
        // Compared as bytes: String equality would call the two topics equal.
        #expect(receipts.allSatisfy { Array($0.topic.utf8) == Array(base.utf8) })
        #expect(receipts.first?.correlation == "k-1")
        #expect(receipts.first?.json["status"] as? String == "accepted")
        try await service.stop()
        try await watcher.kill(SIGTERM)
    }

    @Test("a message whose id cannot be read is answered `rejected` without an id when it asked for an answer in its reply space; otherwise it is a dead letter")
    func unreadableIds() async throws {
        let instance = Instance()
        let user = "dana.r"
        let replies = "\(instance.prefix)/replies/\(user)"
        let watcher = try watch(["\(replies)/#", "\(instance.prefix)/deadletter"])
        try await waitSubscribed(watcher, topic: "\(replies)/marker")
        let service = try await ServiceUnderTest.start(instance)
        func observed() -> [Observed] { watcher.lines.compactMap(Observed.init) }

        // Malformed, no id: the Correlation Data names the request.
        try await mosquittoPublish("\(instance.prefix)/corrections/text/\(user)", payload: #"{"schema":"morpheus.correction/1","#,
                                   responseTopic: "\(replies)/req-a", correlationData: "corr-a")
        // Valid JSON, id not a UUID.
        let notUUID = Samples.text.setting("/userId", to: .string(user)).setting("/feedbackId", to: .string("42"))
            .setting("/occurredAt", to: .string(RFC3339.format(Date()))).serializedString
        try await mosquittoPublish("\(instance.prefix)/corrections/text/\(user)", payload: notUUID,
                                   responseTopic: "\(replies)/req-b", correlationData: "corr-b")
        // A privacy request without a readable requestId.
        try await mosquittoPublish("\(instance.prefix)/privacy/\(user)", payload: #"{"action":"opt_out"}"#,
                                   responseTopic: "\(replies)/req-c", correlationData: "corr-c")
        // No response topic: nobody to answer, a dead letter.
        try await mosquittoPublish("\(instance.prefix)/corrections/text/\(user)", payload: "not json at all")

        try await waitUntil("three rejections and a dead letter", timeout: .seconds(20)) {
            Set(observed().map(\.correlation)).isSuperset(of: ["corr-a", "corr-b", "corr-c"])
                && observed().contains { $0.topic.hasSuffix("/deadletter") }
        }
        for (correlation, topic, code) in [("corr-a", "req-a", "malformed_json"), ("corr-b", "req-b", "invalid_value"), ("corr-c", "req-c", "missing_field")] {
            let receipt = try #require(observed().first { $0.correlation == correlation })
            #expect(receipt.topic == "\(replies)/\(topic)")
            #expect(receipt.json["status"] as? String == "rejected")
            #expect(receipt.json["feedbackId"] == nil, "no id to name")
            let codes = ((receipt.json["errors"] as? [[String: Any]]) ?? []).compactMap { $0["code"] as? String }
            #expect(codes.contains(code), "\(correlation): \(codes)")
        }
        let letters = observed().filter { $0.topic.hasSuffix("/deadletter") }
        #expect(letters.count == 1, "only the unanswerable message is a dead letter")

        let pool = PostgresPool(configuration: service.database.configuration, size: 1)
        let stored = try await pool.withConnection { try $0.query("SELECT count(*) FROM dead_letters").first!.decode(0, as: Int.self) }
        #expect(stored == 1)
        await pool.close()
        try await service.stop()
        try await watcher.kill(SIGTERM)
    }
}
