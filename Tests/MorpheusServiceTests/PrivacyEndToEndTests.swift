import Foundation
import MorpheusCore
import Postgres
import Testing
import TestSupport

/// Privacy requests through the real broker and database, driven with `mosquitto_pub`, and
/// through `morpheus privacy`.
@Suite("Privacy end to end")
struct PrivacyEndToEndTests {
    func request(_ user: String, _ id: String, _ action: String) -> String {
        JSONValue.object([("schema", .string("morpheus.privacy/1")), ("requestId", .string(id)), ("userId", .string(user)), ("action", .string(action))])
            .serializedString
    }

    func correction(_ user: String, _ id: String, text: String) -> String {
        Samples.text.setting("/userId", to: .string(user)).setting("/feedbackId", to: .string(id)).setting("/generation/id", to: .string(id))
            .setting("/occurredAt", to: .string(RFC3339.format(Date()))).setting("/corrected/text", to: .string(text)).serializedString
    }

    @Test("opt_out → applied with counts; then a correction is rejected opted_out and its text is nowhere in the database; a replay answers the same; status; opt_in resumes")
    func optOutThenCorrection() async throws {
        let instance = Instance()
        let user = "privacy.e2e"
        let watcher = try watch(["\(instance.prefix)/replies/#", "\(instance.prefix)/training/#"])
        try await waitSubscribed(watcher, topic: "\(instance.prefix)/replies/\(user)/marker")
        let service = try await ServiceUnderTest.start(instance)
        func answer(_ id: String) -> [String: Any]? {
            watcher.lines.compactMap(Observed.init).first { $0.topic.contains("/replies/") && $0.json["feedbackId"] as? String == id }?.json
        }
        func send(_ topic: String, _ payload: String, _ id: String) async throws -> [String: Any] {
            try await mosquittoPublish("\(instance.prefix)/\(topic)", payload: payload)
            try await waitUntil("the answer to \(id)", timeout: .seconds(30)) { answer(id) != nil }
            return answer(id)!
        }
        let before = UUID().uuidString.lowercased()
        #expect(try await send("corrections/text/\(user)", correction(user, before, text: "MARA: We ride at first light."), before)["status"] as? String == "accepted")

        let optOut = UUID().uuidString.lowercased()
        let applied = try await send("privacy/\(user)", request(user, optOut, "opt_out"), optOut)
        #expect(applied["status"] as? String == "applied")
        #expect(applied["counts"] as? [String: Int] == ["settings": 1, "storedCorrections": 1])
        #expect((applied["settings"] as? [String: Any])?["optedOut"] as? Bool == true)

        // Unique, and words to the quality gate: a UUID's hex groups read as gibberish to it about
        // one time in twenty-five, which held the correction after opt-in for review.
        let syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "de", "pa"]
        let marker = "Quetzal harbour " + (0..<8).map { _ in syllables.randomElement()! }.joined()
        let refused = UUID().uuidString.lowercased()
        let rejection = try await send("corrections/text/\(user)", correction(user, refused, text: "MARA: \(marker)"), refused)
        #expect(rejection["status"] as? String == "rejected")
        #expect((rejection["errors"] as? [[String: Any]])?.first?["code"] as? String == "opted_out")
        let pool = PostgresPool(configuration: service.database.configuration, size: 1)
        #expect(try await ScratchDatabase.rows(containing: marker, pool) == 0)
        #expect(!watcher.lines.contains { $0.contains(marker) && !$0.contains("/replies/") }, "no event carries it")

        // The opt-out republished: the same answer, no second effect.
        try await mosquittoPublish("\(instance.prefix)/privacy/\(user)", payload: request(user, optOut, "opt_out"))
        try await waitUntil("the replayed answer") { watcher.lines.compactMap(Observed.init).filter { $0.json["feedbackId"] as? String == optOut }.count == 2 }
        let replies = watcher.lines.compactMap(Observed.init).filter { $0.json["feedbackId"] as? String == optOut }
        #expect(replies.map { $0.json["counts"] as? [String: Int] } == [["settings": 1, "storedCorrections": 1], ["settings": 1, "storedCorrections": 1]])

        // Operators see the same through the CLI, and the status action answers the settings.
        let cli = TestEnvironment.productsDirectory.appendingPathComponent("morpheus")
        let status = try ChildProcess(cli, arguments: ["privacy", "status", user, "--json", "--database-url", service.database.url,
                                                      "--config", TestEnvironment.repositoryRoot.appendingPathComponent("config/morpheus.json").path])
        #expect(try await status.waitForExit(timeout: .seconds(30)) == 0)
        #expect(status.lines.contains { $0.contains("\"optedOut\":true") && $0.contains("\"refusedSinceOptOut\":1") }, "\(status.lines)")
        let statusId = UUID().uuidString.lowercased()
        let settings = try await send("privacy/\(user)", request(user, statusId, "status"), statusId)
        #expect((settings["settings"] as? [String: Any])?["optedOut"] as? Bool == true)

        let optIn = UUID().uuidString.lowercased()
        #expect(try await send("privacy/\(user)", request(user, optIn, "opt_in"), optIn)["counts"] as? [String: Int] == ["settings": 1])
        let after = UUID().uuidString.lowercased()
        let afterReply = try await send("corrections/text/\(user)", correction(user, after, text: "MARA: \(marker)"), after)
        #expect(afterReply["status"] as? String == "accepted", "\(afterReply)")

        // Another user's id in the request is topic_mismatch; an action not carried out yet says so.
        let mismatch = UUID().uuidString.lowercased()
        let wrong = try await send("privacy/\(user)", request("someone.else", mismatch, "opt_out"), mismatch)
        #expect((wrong["errors"] as? [[String: Any]])?.first?["code"] as? String == "topic_mismatch")
        let audit = try await pool.withConnection { try $0.query("SELECT count(*) FROM privacy_requests").first!.decode(0, as: Int.self) }
        #expect(audit == 4, "opt_out, status (CLI), status, opt_in")
        await pool.close()
        try await service.stop()
        try await watcher.kill(SIGTERM)
    }

    @Test("erase → applied with counts; a retraction of the user's training examples reaches trainers; no row anywhere names the user; the erasure log keeps the counts")
    func erase() async throws {
        let instance = Instance()
        let user = "erasable.e2e"
        let watcher = try watch(["\(instance.prefix)/replies/#", "\(instance.prefix)/training/#"])
        try await waitSubscribed(watcher, topic: "\(instance.prefix)/replies/\(user)/marker")
        let service = try await ServiceUnderTest.start(instance)
        func seen(_ id: String, on part: String) -> [String: Any]? {
            watcher.lines.compactMap(Observed.init).first { $0.topic.contains(part) && $0.json["feedbackId"] as? String == id }?.json
        }
        let kept = UUID().uuidString.lowercased(), held = UUID().uuidString.lowercased()
        try await mosquittoPublish("\(instance.prefix)/corrections/text/\(user)", payload: correction(user, kept, text: "MARA: We ride at first light."))
        try await mosquittoPublish("\(instance.prefix)/corrections/text/\(user)", payload: correction(user, held, text: "MARA: Mail me at mara.v@example-mail.de."))
        try await waitUntil("both answered and the training event out", timeout: .seconds(30)) {
            seen(kept, on: "/replies/") != nil && seen(held, on: "/replies/") != nil && seen(kept, on: "/training/") != nil
        }
        let exampleId = try #require(seen(kept, on: "/training/")?["exampleId"] as? String)

        let erase = UUID().uuidString.lowercased()
        try await mosquittoPublish("\(instance.prefix)/privacy/\(user)", payload: request(user, erase, "erase"))
        try await waitUntil("the erase answered", timeout: .seconds(30)) { seen(erase, on: "/replies/") != nil }
        let counts = seen(erase, on: "/replies/")?["counts"] as? [String: Int]
        #expect(counts?["corrections"] == 2 && counts?["trainingExamples"] == 1 && counts?["reviewItems"] == 1, "\(counts ?? [:])")
        try await waitUntil("the retraction on training/text", timeout: .seconds(30)) {
            watcher.lines.compactMap(Observed.init).contains {
                $0.topic.hasSuffix("/training/text") && $0.json["schema"] as? String == "morpheus.training-retraction/1"
                    && ($0.json["exampleIds"] as? [String]) == [exampleId] && $0.json["reason"] as? String == "erasure"
            }
        }
        let pool = PostgresPool(configuration: service.database.configuration, size: 1)
        try await waitUntil("the published retraction leaves the outbox") {
            try await pool.withConnection { try $0.query("SELECT count(*) FROM outbox_batches").first!.decode(0, as: Int.self) } == 0
        }
        let naming = try await ScratchDatabase.tables(containing: user, pool)
        #expect(naming.isEmpty, "\(naming)")
        let log = try await pool.withConnection {
            try $0.query("SELECT counts->>'corrections' AS n FROM privacy_requests WHERE action = 'erase'").first?.decode("n", as: String.self)
        }
        #expect(log == "2")
        await pool.close()
        try await service.stop()
        try await watcher.kill(SIGTERM)
    }

    @Test("anonymize → every stored row under the pseudonym, personal data scrubbed, the training example republished rebuilt; later feedback stored the same way; identify restores the real id for what follows")
    func anonymize() async throws {
        let instance = Instance()
        let user = "anonymous.e2e"
        let watcher = try watch(["\(instance.prefix)/replies/#", "\(instance.prefix)/training/#"])
        try await waitSubscribed(watcher, topic: "\(instance.prefix)/replies/\(user)/marker")
        let service = try await ServiceUnderTest.start(instance)
        func seen(_ id: String, on part: String) -> [[String: Any]] {
            watcher.lines.compactMap(Observed.init).filter { $0.topic.contains(part) && $0.json["feedbackId"] as? String == id }.map(\.json)
        }
        func send(_ topic: String, _ payload: String, _ id: String) async throws -> [String: Any] {
            try await mosquittoPublish("\(instance.prefix)/\(topic)", payload: payload)
            try await waitUntil("the answer to \(id)", timeout: .seconds(30)) { !seen(id, on: "/replies/").isEmpty }
            return seen(id, on: "/replies/")[0]
        }
        let email = "mara.v@gmx.de"
        let clean = UUID().uuidString.lowercased(), held = UUID().uuidString.lowercased()
        #expect(try await send("corrections/text/\(user)", correction(user, clean, text: "MARA: We ride at first light."), clean)["status"] as? String == "accepted")
        #expect(try await send("corrections/text/\(user)", correction(user, held, text: "MARA: Write to \(email) tonight."), held)["status"] as? String == "flagged")
        try await waitUntil("the first training event") { !seen(clean, on: "/training/").isEmpty }

        let anonymize = UUID().uuidString.lowercased()
        let applied = try await send("privacy/\(user)", request(user, anonymize, "anonymize"), anonymize)
        #expect(applied["status"] as? String == "applied")
        #expect((applied["counts"] as? [String: Int])?["corrections"] == 2, "\(applied)")
        // The rebuilt example goes out again under the same exampleId, naming the pseudonym.
        try await waitUntil("the rebuilt training event", timeout: .seconds(30)) { seen(clean, on: "/training/").count >= 2 }
        let events = seen(clean, on: "/training/")
        #expect(events.first?["exampleId"] as? String == events.last?["exampleId"] as? String)

        let later = UUID().uuidString.lowercased()
        #expect(try await send("corrections/text/\(user)", correction(user, later, text: "MARA: Or mail \(email) if the road is closed."), later)["status"] as? String == "flagged")
        let pool = PostgresPool(configuration: service.database.configuration, size: 1)
        #expect(try await ScratchDatabase.tables(containing: user, pool) == ["privacy_settings": 1])
        #expect(try await ScratchDatabase.rows(containing: email, pool) == 0)

        let identify = UUID().uuidString.lowercased()
        #expect(try await send("privacy/\(user)", request(user, identify, "identify"), identify)["counts"] as? [String: Int] == ["settings": 1])
        let named = UUID().uuidString.lowercased()
        #expect(try await send("corrections/text/\(user)", correction(user, named, text: "MARA: Under my own name again."), named)["status"] as? String == "accepted")
        let underRealId = try await pool.withConnection { try $0.query("SELECT count(*) FROM feedback WHERE user_id = $1", [user]).first!.decode(0, as: Int.self) }
        #expect(underRealId == 1)
        await pool.close()
        try await service.stop()
        try await watcher.kill(SIGTERM)
    }

    @Test("an opt-out racing a stream of corrections on two instances: every receipt matches the database, and whatever is sent after the opt-out's answer is refused")
    func optOutRacingTwoInstances() async throws {
        let first = Instance()
        var second = Instance()
        second.prefix = first.prefix
        let user = "racing.e2e"
        let a = try await ServiceUnderTest.start(first)
        let statusB = try watchStatus(second)
        let b = try startService(second, databaseURL: a.database.url)
        try await waitUntil("second instance online", timeout: .seconds(30)) { statusB.lines.contains { $0.contains("\"online\"") } }
        let editor = try await Editor(prefix: first.prefix)

        var before: [String] = [], after: [String] = []
        for index in 0..<30 {
            let correction = Editor.correction(index: index, user: user)
            before.append(correction.id)
            try editor.publish(correction, user: user)
            if index % 5 == 4 { try await Task.sleep(for: .milliseconds(20)) }
        }
        // The opt-out goes out while those are still being committed, on either instance.
        let optOut = UUID().uuidString.lowercased()
        try await mosquittoPublish("\(first.prefix)/privacy/\(user)", payload: request(user, optOut, "opt_out"))
        try await waitUntil("the opt-out applied", timeout: .seconds(30)) { editor.statuses(optOut) == ["applied"] }
        for index in 30..<50 {
            let correction = Editor.correction(index: index, user: user)
            after.append(correction.id)
            try editor.publish(correction, user: user)
        }
        try await waitUntil("every correction answered", timeout: .seconds(60)) { Set(before + after).isSubset(of: editor.answered) }

        #expect(after.allSatisfy { editor.statuses($0).first == "rejected" }, "sent after the opt-out's answer")
        let accepted = Set((before + after).filter { editor.statuses($0).first == "accepted" })
        let pool = PostgresPool(configuration: a.database.configuration, size: 1)
        let stored = Set(try await pool.withConnection {
            try $0.query("SELECT feedback_id::text AS id FROM feedback WHERE user_id = $1", [user]).map { try $0.decode("id", as: String.self) }
        })
        #expect(stored == accepted, "a receipt says accepted exactly for what is stored")
        #expect((before + after).allSatisfy { ["accepted", "rejected"].contains(editor.statuses($0).first ?? "") })
        await pool.close()
        await editor.shutdown()
        try await b.kill(SIGTERM, timeout: .seconds(15))
        try await statusB.kill(SIGTERM)
        try await a.stop()
    }
}
