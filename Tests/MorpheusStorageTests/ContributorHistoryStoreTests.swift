import Foundation
import MorpheusCore
@testable import MorpheusStorage
import Postgres
import Testing
import TestSupport

/// The history rules decided inside the batch transaction, against what every instance stored.
@Suite("Contributor history in PostgreSQL")
struct ContributorHistoryStoreTests {
    let base = FeedbackStoreTests()
    static let start = RFC3339.parse("2026-11-28T11:50:00Z")!

    /// The n-th correction of `user`, `n` seconds after the start, on panel `panel`.
    func item(_ n: Int, user: String, panel: String? = nil, text: String? = nil) throws -> Submission {
        base.accepted(try base.correction(Samples.text.setting("/userId", to: .string(user)), [
            ("/feedbackId", .string(UUID().uuidString)),
            ("/occurredAt", .string(RFC3339.format(Self.start.addingTimeInterval(Double(n))))),
            ("/generation/id", .string("g-\(n)")), ("/target/panelId", .string(panel ?? "p-\(n)")),
            ("/corrected/text", .string(text ?? "Fog lifts off the harbour, take \(n).")),
        ]))
    }

    /// Marks a submission held, as the ingest does.
    static func judge(_ policy: ExpertReviewPolicy = .off) -> HistoryJudge {
        HistoryJudge(policy: policy) { submission, flags, reasons in
            Submission(correction: submission.correction, receivedAt: submission.receivedAt, status: .flagged,
                       flags: submission.flags + flags, reasons: submission.reasons + reasons, quality: 0.2, trainingExample: nil, events: [])
        }
    }
    let hold = Self.judge()

    func flags(_ stored: StoredBatch) -> [[String]] { stored.submissions.map(\.flags) }

    @Test("a burst split between two instances is flagged from the 31st correction on; the rows record target and content digest")
    func burstAcrossStores() async throws {
        try await base.withStore { _, pool in
            let a = FeedbackStore(pool: pool), b = FeedbackStore(pool: PostgresPool(configuration: pool.configuration, size: 1))
            var all: [[String]] = []
            for (index, range) in [0..<10, 10..<20, 20..<30, 30..<35, 35..<40].enumerated() {
                let store = index % 2 == 0 ? a : b
                all += flags(try await store.store(try range.map { try item($0, user: "burst.user") }, outcomes: [], deadLetters: [], judge: hold))
            }
            #expect(all.prefix(30).allSatisfy { $0.isEmpty })
            #expect(all.dropFirst(30).allSatisfy { $0 == ["burst"] })
            let flagged = try await pool.withConnection {
                try $0.query("SELECT count(*) FROM feedback WHERE status = 'flagged' AND flags = '{burst}'").first!.decode(0, as: Int.self)
            }
            #expect(flagged == 10)
            let keys = try await pool.withConnection {
                try $0.query("SELECT count(*) FROM feedback WHERE target_key IS NOT NULL AND length(content_key) = 32").first!.decode(0, as: Int.self)
            }
            #expect(keys == 40)
            await b.pool.close()
        }
    }

    @Test("two batches of one user committed at once are judged one after the other (per-user lock)")
    func concurrentBatchesSerialize() async throws {
        try await base.withStore { store, pool in
            let user = "race.user"
            _ = try await store.store(try (0..<29).map { try item($0, user: user) }, outcomes: [], deadLetters: [], judge: hold)
            // Hold the user's lock, queue A (the 30th) and then B (the 31st) behind it, release.
            let lock = try await UserLock.hold(user, on: pool)
            let other = FeedbackStore(pool: PostgresPool(configuration: pool.configuration, size: 1))
            let first = Task { try await store.store([try item(29, user: user)], outcomes: [], deadLetters: [], judge: hold) }
            try await waitUntil("A waiting for the user's lock") { try await lock.waiting() == 1 }
            let second = Task { try await other.store([try item(30, user: user)], outcomes: [], deadLetters: [], judge: hold) }
            try await waitUntil("B waiting too") { try await lock.waiting() == 2 }
            try await lock.release()
            let a = try await first.value, b = try await second.value
            #expect(flags(a) == [[]])
            // Without the lock B would not have seen A's row and the burst would go unflagged.
            #expect(flags(b) == [["burst"]])
            await other.pool.close()
        }
    }

    @Test("the same content on a third target is flagged across instances; a redelivered correction does not count itself")
    func repeatedAcrossStores() async throws {
        try await base.withStore { store, pool in
            let other = FeedbackStore(pool: PostgresPool(configuration: pool.configuration, size: 1))
            let text = "To be continued..."
            let first = try item(0, user: "rep.user", panel: "p1", text: text)
            _ = try await store.store([first], outcomes: [], deadLetters: [], judge: hold)
            // A redelivery of the first is a duplicate, not a second target.
            _ = try await other.store([first], outcomes: [], deadLetters: [], judge: hold)
            let second = try await other.store([try item(1, user: "rep.user", panel: "p2", text: "to be  continued...")], outcomes: [], deadLetters: [], judge: hold)
            let third = try await store.store([try item(2, user: "rep.user", panel: "p3", text: "TO BE CONTINUED...")], outcomes: [], deadLetters: [], judge: hold)
            let elsewhere = try await other.store([try item(3, user: "someone.else", panel: "p4", text: text)], outcomes: [], deadLetters: [], judge: hold)
            #expect(flags(second) == [[]])
            #expect(flags(third) == [["repeated_content"]])
            #expect(flags(elsewhere) == [[]])
            await other.pool.close()
        }
    }

    @Test("a contributor's long history is not read: the history read fetches the window's rows and the same content's, not every earlier row")
    func longHistory() async throws {
        try await base.withStore { store, pool in
            let text = "Same words again."
            _ = try await store.store([try item(0, user: "long.user", panel: "p0", text: text)], outcomes: [], deadLetters: [], judge: hold)
            // 3,000 older corrections of the same user (an hour back and more), other content.
            try await pool.withConnection { connection in
                _ = try connection.query("""
                    INSERT INTO feedback (feedback_id, user_id, modality, correction_type, comic_id, generation_id, model, model_version,
                        original, corrected, payload_hash, content_hash, status, flags, quality, occurred_at, received_at, target_key, content_key)
                    SELECT gen_random_uuid(), user_id, modality, correction_type, comic_id, 'old-' || i, model, model_version,
                        original, corrected, payload_hash, sha256(convert_to('old-' || i, 'UTF8')), status, flags, quality,
                        occurred_at - make_interval(mins => 60 + i), received_at, target_key || i, sha256(convert_to('content-' || i, 'UTF8'))
                    FROM feedback, generate_series(1, 3000) AS i WHERE user_id = 'long.user'
                    """)
            }
            let batch = [try item(30, user: "long.user", panel: "p1", text: text), try item(31, user: "other.user")]
            let (fetched, rows) = try await pool.transaction { connection in
                // The plan a prepared statement gets from its sixth run on.
                _ = try connection.query("SET LOCAL plan_cache_mode = force_generic_plan")
                func fetchedSoFar() throws -> Int {
                    try connection.query("SELECT pg_stat_get_xact_tuples_fetched('feedback'::regclass)").first!.decode(0, as: Int.self)
                }
                let before = try fetchedSoFar()
                let results = try connection.pipeline(FeedbackStore.historyStatements(batch, policy: .off), prepared: true)
                return (try fetchedSoFar() - before, results[0].count)
            }
            #expect(rows == 1)
            #expect(fetched < 10, "heap rows fetched: \(fetched)")
            let second = try await store.store([try item(40, user: "long.user", panel: "p2", text: text)], outcomes: [], deadLetters: [], judge: hold)
            let third = try await store.store([try item(50, user: "long.user", panel: "p3", text: text)], outcomes: [], deadLetters: [], judge: hold)
            #expect(flags(second) == [[]])
            #expect(flags(third) == [["repeated_content"]])
        }
    }

    @Test("expert review: a contributor's first N corrections are held across instances, then no more; reasons are stored on the review item")
    func firstCorrections() async throws {
        try await base.withStore { store, pool in
            let other = FeedbackStore(pool: PostgresPool(configuration: pool.configuration, size: 1))
            let judge = Self.judge(ExpertReviewPolicy(minQuality: 0, firstCorrections: 3))
            func reasons(_ stored: StoredBatch) -> [[String]] { stored.submissions.map(\.reasons) }
            // Two in one batch, the third on the other instance, then a redelivery of the first.
            let first = try item(0, user: "new.user")
            let a = try await store.store([first, try item(1, user: "new.user")], outcomes: [], deadLetters: [], judge: judge)
            let b = try await other.store([try item(2, user: "new.user")], outcomes: [], deadLetters: [], judge: judge)
            let redelivered = try await other.store([first], outcomes: [], deadLetters: [], judge: judge)
            let c = try await store.store([try item(3, user: "new.user"), try item(4, user: "another.user")], outcomes: [], deadLetters: [], judge: judge)
            #expect(reasons(a) == [["new_contributor"], ["new_contributor"]])
            #expect(reasons(b) == [["new_contributor"]])
            #expect(redelivered.corrections.allSatisfy { if case .duplicate = $0 { true } else { false } })
            #expect(reasons(c) == [[], ["new_contributor"]])
            #expect(flags(c) == [[], []])
            let stored = try await pool.withConnection {
                try $0.query("SELECT count(*) FROM review_queue WHERE reasons = '{new_contributor}' AND flags = '{}'").first!.decode(0, as: Int.self)
            }
            #expect(stored == 4)
            await other.pool.close()
        }
    }

    @Test("expert review: a change to a generation that N users saw (corrections and outcomes) is held")
    func wideAudience() async throws {
        try await base.withStore { store, pool in
            let judge = Self.judge(ExpertReviewPolicy(minQuality: 0, audience: 3))
            func on(_ generation: String, _ n: Int, user: String) throws -> Submission {
                base.accepted(try base.correction(Samples.text.setting("/userId", to: .string(user)), [
                    ("/feedbackId", .string(UUID().uuidString)),
                    ("/occurredAt", .string(RFC3339.format(Self.start.addingTimeInterval(Double(n))))),
                    ("/generation/id", .string(generation)), ("/corrected/text", .string("Rain on the tin roof, take \(n).")),
                ]))
            }
            let first = try await store.store([try on("popular", 0, user: "viewer.a"), try on("popular", 1, user: "viewer.a")],
                                              outcomes: [], deadLetters: [], judge: judge)
            #expect(first.submissions.map(\.reasons) == [[], []])
            // A third user reported an outcome for it; the second user's correction makes three.
            let document = Samples.outcome.setting("/userId", to: .string("viewer.c")).setting("/generation/id", to: .string("popular"))
            guard case .valid(let outcome) = CorrectionValidator().validateOutcome(
                document.serialized(), topicModality: "text", topicUserId: "viewer.c", now: FeedbackStoreTests.received) else {
                Issue.record("the sample outcome is invalid")
                return
            }
            _ = try await store.store([], outcomes: [(outcome, Self.start)], deadLetters: [], judge: judge)
            let second = try await store.store([try on("popular", 2, user: "viewer.b"), try on("quiet", 3, user: "viewer.b")],
                                               outcomes: [], deadLetters: [], judge: judge)
            #expect(second.submissions.map(\.reasons) == [["wide_audience"], []])
            #expect(second.submissions.map(\.status) == [.flagged, .accepted])
            let held = try await pool.withConnection {
                try $0.query("SELECT count(*) FROM review_queue WHERE reasons = '{wide_audience}'").first!.decode(0, as: Int.self)
            }
            #expect(held == 1)
        }
    }
}
