import Foundation
import MorpheusCore
import Postgres
import Testing
import TestSupport

/// A flagged correction through the reviewer CLI: approve → exactly one training event.
@Suite("Review end to end")
struct ReviewEndToEndTests {
    @Test("a flagged correction is listed; `morpheus review approve` publishes exactly one training event; a second approve changes nothing, a reject conflicts")
    func approveThroughCLI() async throws {
        let instance = Instance()
        let user = "review.e2e"
        let watcher = try watch(["\(instance.prefix)/replies/#", "\(instance.prefix)/training/#"])
        try await waitSubscribed(watcher, topic: "\(instance.prefix)/replies/\(user)/marker")
        let service = try await ServiceUnderTest.start(instance)
        let id = UUID().uuidString.lowercased()
        let payload = Samples.text.setting("/userId", to: .string(user)).setting("/feedbackId", to: .string(id))
            .setting("/occurredAt", to: .string(RFC3339.format(Date())))
            .setting("/corrected/text", to: .string("Fog lifts off the harbour. Call me on +49 170 1234567.")).serializedString
        try await mosquittoPublish("\(instance.prefix)/corrections/text/\(user)", payload: payload)
        func observed() -> [Observed] { watcher.lines.compactMap(Observed.init) }
        try await waitUntil("the flagged receipt") { observed().contains { $0.json["feedbackId"] as? String == id && $0.json["status"] as? String == "flagged" } }

        let cli = TestEnvironment.productsDirectory.appendingPathComponent("morpheus")
        let common = ["--config", TestEnvironment.repositoryRoot.appendingPathComponent("config/morpheus.json").path, "--database-url", service.database.url]
        let environment = ["MORPHEUS_TOPICS_PREFIX": instance.prefix]
        let list = try ChildProcess(cli, arguments: ["review", "list", "--json", "--flag", "pii"] + common, environment: environment)
        #expect(try await list.waitForExit(timeout: .seconds(30)) == 0, "\(list.lines)")
        #expect(list.lines.contains { $0.contains("\"feedbackId\":\"\(id)\"") && $0.contains("\"flags\":[\"pii\"]") })

        let approve = try ChildProcess(cli, arguments: ["review", "approve", id, "--reason", "a story phone number", "--reviewer", "rev-1"] + common,
                                       environment: environment)
        #expect(try await approve.waitForExit(timeout: .seconds(30)) == 0, "\(approve.lines)")
        // The service's outbox sweep publishes the approved example.
        try await waitUntil("the training event", timeout: .seconds(20)) {
            observed().contains { $0.topic == "\(instance.prefix)/training/text" && $0.json["feedbackId"] as? String == id }
        }
        let pool = PostgresPool(configuration: service.database.configuration, size: 1)
        try await waitUntil("the outbox emptied") {
            try await pool.withConnection { try $0.query("SELECT count(*) FROM outbox_batches").first!.decode(0, as: Int.self) } == 0
        }
        let again = try ChildProcess(cli, arguments: ["review", "approve", id, "--reviewer", "rev-1"] + common, environment: environment)
        #expect(try await again.waitForExit(timeout: .seconds(30)) == 0)
        let reject = try ChildProcess(cli, arguments: ["review", "reject", id, "--reviewer", "rev-2"] + common, environment: environment)
        #expect(try await reject.waitForExit(timeout: .seconds(30)) == 3)
        #expect(observed().filter { $0.topic.contains("/training/") && $0.json["feedbackId"] as? String == id }.count == 1)
        let audit = try await pool.withConnection {
            try $0.query("SELECT count(*) FROM review_decisions WHERE reviewer = 'rev-1' AND reason = 'a story phone number'").first!.decode(0, as: Int.self)
        }
        #expect(audit == 1)

        let show = try ChildProcess(cli, arguments: ["review", "show", id] + common, environment: environment)
        #expect(try await show.waitForExit(timeout: .seconds(30)) == 0)
        #expect(show.lines.contains { $0.contains("flags: pii") })
        #expect(show.lines.contains { $0.hasPrefix("corrected: ") && $0.contains("{+") })
        #expect(show.lines.contains { $0.contains("approve by rev-1: a story phone number") })
        let stats = try ChildProcess(cli, arguments: ["review", "stats", "--json"] + common, environment: environment)
        #expect(try await stats.waitForExit(timeout: .seconds(30)) == 0)
        #expect(stats.lines.contains { $0.contains("\"rev-1\":{\"approve\":1}") && $0.contains("\"waiting\":0") })
        let contributor = try ChildProcess(cli, arguments: ["contributors", "show", user, "--json"] + common, environment: environment)
        #expect(try await contributor.waitForExit(timeout: .seconds(30)) == 0)
        #expect(contributor.lines.contains { $0.contains("\"approvals\":1") && $0.contains("\"flagged\":1") && $0.contains("\"pii\":1") })
        await pool.close()
        try await service.stop()
        try await watcher.kill(SIGTERM)
    }

    @Test("reviewers' records reach the quality score at capture: a doubted contributor scores lower than a new one, one whose record sank is held for review (low_quality)")
    func reputationAtCapture() async throws {
        let instance = Instance()
        let watcher = try watch(["\(instance.prefix)/training/#", "\(instance.prefix)/replies/#"])
        try await waitSubscribed(watcher, topic: "\(instance.prefix)/training/marker")
        let service = try await ServiceUnderTest.start(instance, environment: ["MORPHEUS_REPUTATION_REFRESH_SECONDS": "1"])
        let pool = PostgresPool(configuration: service.database.configuration, size: 1)
        try await pool.withConnection {
            try $0.query("INSERT INTO contributor_reputation (user_id, approvals, rejections) VALUES ('doubted.user', 2, 6), ('sunk.user', 0, 20)")
        }
        /// The receipt of a fresh correction by `user`, and the quality of its training event when accepted.
        func submit(_ user: String) async throws -> (receipt: [String: Any], quality: Double?) {
            let id = UUID().uuidString.lowercased()
            let payload = Samples.text.setting("/userId", to: .string(user)).setting("/feedbackId", to: .string(id))
                .setting("/generation/id", to: .string(id)).setting("/occurredAt", to: .string(RFC3339.format(Date()))).serializedString
            try await mosquittoPublish("\(instance.prefix)/corrections/text/\(user)", payload: payload)
            func seen() -> [Observed] { watcher.lines.compactMap(Observed.init).filter { $0.json["feedbackId"] as? String == id } }
            try await waitUntil("the receipt for \(user)") { seen().contains { $0.topic.contains("/replies/") } }
            let receipt = seen().first { $0.topic.contains("/replies/") }!.json
            guard receipt["status"] as? String == "accepted" else { return (receipt, nil) }
            try await waitUntil("the training event of \(user)") { seen().contains { $0.topic.contains("/training/") } }
            return (receipt, seen().first { $0.topic.contains("/training/") }?.json["quality"] as? Double)
        }
        let fresh = try #require(try await submit("fresh.user").quality)
        // The service reads changed records every second.
        try await waitUntil("the doubted record to count", timeout: .seconds(15)) { (try await submit("doubted.user").quality ?? 1) < fresh }
        try await waitUntil("the sunk record to hold its corrections", timeout: .seconds(15)) {
            let receipt = try await submit("sunk.user").receipt
            return receipt["status"] as? String == "flagged" && receipt["flags"] as? [String] == [] && receipt["reviewReasons"] as? [String] == ["low_quality"]
        }
        await pool.close()
        try await service.stop()
        try await watcher.kill(SIGTERM)
    }
}
