import Foundation
import Logging
import MorpheusCore
import MorpheusStorage
import Postgres
import Testing
import TestSupport

struct InvalidSample: Error { let issues: [ValidationIssue] }

@Suite("Feedback store against PostgreSQL")
struct FeedbackStoreTests {
    static let received = RFC3339.parse("2026-11-28T12:00:00Z")!
    let transform = TrainingTransform(instructions: SystemInstructions())

    func correction(_ sample: JSONValue, _ changes: [(JSONPointer, JSONValue?)] = []) throws -> Correction {
        var document = sample
        for (pointer, value) in changes { document = document.setting(pointer, to: value) }
        let modality = if case .string(let text)? = sample["modality"] { text } else { "" }
        let user = if case .string(let text)? = sample["userId"] { text } else { "" }
        switch CorrectionValidator().validate(document.serialized(), topicModality: modality, topicUserId: user, now: Self.received) {
        case .valid(let correction): return correction
        case .invalid(let issues): throw InvalidSample(issues: issues)
        }
    }

    func accepted(_ correction: Correction) -> Submission {
        let example = SerializedExample(transform.serializedExample(for: correction, quality: 0.9, contributor: "u_x", createdAt: Self.received))
        return Submission(correction: correction, receivedAt: Self.received, status: .accepted, quality: 0.9,
                          trainingExample: example, events: [OutboxEvent(topic: "morpheus/v1/training/\(correction.modality.rawValue)", payload: example.json)])
    }

    func withStore(_ body: (FeedbackStore, PostgresPool) async throws -> Void) async throws {
        let database = try await ScratchDatabase.create()
        let pool = PostgresPool(configuration: database.configuration, size: 2)
        try await Migrator.bundled().apply(to: pool, logger: Logger(label: "test"))
        do {
            try await body(FeedbackStore(pool: pool, owner: "test", outboxLease: .zero), pool)
        } catch {
            await pool.close()
            try await database.drop()
            throw error
        }
        await pool.close()
        try await database.drop()
    }

    func count(_ pool: PostgresPool, _ sql: String) async throws -> Int {
        try await pool.withConnection { try $0.query(sql).first!.decode(0, as: Int.self) }
    }

    @Test("a batch of every modality is stored with its training examples and outbox events")
    func storesBatch() async throws {
        try await withStore { store, pool in
            let batch = try [Samples.text, Samples.image, Samples.layout].map { accepted(try correction($0)) }
            let stored = try await store.store(batch, outcomes: [], deadLetters: [])
            #expect(stored.corrections.allSatisfy { if case .stored = $0 { true } else { false } })
            #expect(try await count(pool, "SELECT count(*) FROM feedback WHERE status = 'accepted'") == 3)
            #expect(try await count(pool, "SELECT count(*) FROM training_examples") == 3)
            // One outbox row for the batch, holding its three events byte for byte.
            #expect(try await count(pool, "SELECT count(*) FROM outbox_batches") == 1)
            let pending = try await store.claimBatches(limit: 10)
            #expect(pending.map(\.events) == [batch.flatMap(\.events)])
            #expect(stored.outbox == pending.first)
            #expect(try await count(pool, "SELECT cardinality(feedback_ids) FROM outbox_batches") == 3)
            try await store.batchesPublished(pending.map(\.id))
            #expect(try await count(pool, "SELECT count(*) FROM outbox_batches") == 0)
            let lineage = try await pool.withConnection { connection in
                try connection.query("SELECT count(*) FROM training_examples t JOIN feedback f USING (feedback_id) WHERE t.body->>'feedbackId' = f.feedback_id::text")
                    .first!.decode(0, as: Int.self)
            }
            #expect(lineage == 3)
            // The stored example is the published bytes, exactly.
            let bodies = try await pool.withConnection { connection in
                try connection.query("SELECT body::text AS body FROM training_examples").map { try $0.decode("body", as: String.self) }
            }
            #expect(Set(bodies) == Set(batch.compactMap { $0.trainingExample.map { String(decoding: $0.json, as: UTF8.self) } }))
        }
    }

    @Test("republishing is a duplicate; a reused id with other content is a conflict; same content under a new id is a duplicate of the first")
    func idempotency() async throws {
        try await withStore { store, pool in
            let original = try correction(Samples.text)
            _ = try await store.store([accepted(original)])
            let again = try await store.store([accepted(original)])
            guard case .duplicate(let firstId, let status, _)? = again.first else { Issue.record("\(again)"); return }
            #expect(firstId == original.feedbackId)
            #expect(status == .accepted)

            let changed = try correction(Samples.text, [("/corrected/text", .string("A different fix."))])
            #expect(try await store.store([accepted(changed)]) == [.conflict])

            let newId = try correction(Samples.text, [("/feedbackId", .string("99999999-8888-4777-8666-555555555555"))])
            guard case .duplicate(let sameContentId, _, _)? = try await store.store([accepted(newId)]).first else { Issue.record("not a duplicate"); return }
            #expect(sameContentId == original.feedbackId)
            #expect(try await count(pool, "SELECT count(*) FROM feedback") == 1)
            #expect(try await count(pool, "SELECT sum(event_count) FROM outbox_batches") == 1)
        }
    }

    @Test("the same correction twice in one batch is stored once")
    func duplicateWithinBatch() async throws {
        try await withStore { store, pool in
            let item = accepted(try correction(Samples.layout))
            let results = try await store.store([item, item])
            guard case .stored = results[0], case .duplicate = results[1] else { Issue.record("\(results)"); return }
            #expect(try await count(pool, "SELECT count(*) FROM feedback") == 1)
            // Rows, examples and events are written as if both were new, then kept for one.
            #expect(try await count(pool, "SELECT count(*) FROM training_examples") == 1)
            #expect(try await count(pool, "SELECT sum(event_count) FROM outbox_batches") == 1)

            // A new correction beside a copy of a stored one, and a held one twice: the
            // outbox batch is rewritten to the stored corrections' events only.
            let fresh = accepted(try correction(Samples.text))
            let c = try correction(Samples.image)
            let held = Submission(correction: c, receivedAt: Self.received, status: .flagged, flags: ["pii"], quality: 0.2,
                                  trainingExample: nil, events: [OutboxEvent(topic: "morpheus/v1/review/flagged", json: .object([("feedbackId", .string(c.feedbackId))]))])
            let mixed = try await store.store([item, fresh, held, held])
            guard case .duplicate = mixed[0], case .stored = mixed[1], case .stored = mixed[2], case .duplicate = mixed[3] else {
                Issue.record("\(mixed)")
                return
            }
            #expect(try await count(pool, "SELECT count(*) FROM feedback") == 3)
            #expect(try await count(pool, "SELECT count(*) FROM training_examples") == 2)
            #expect(try await count(pool, "SELECT count(*) FROM review_queue") == 1)
            #expect(try await count(pool, "SELECT event_count FROM outbox_batches ORDER BY id DESC LIMIT 1") == 2)
            #expect(try await count(pool, "SELECT cardinality(feedback_ids) FROM outbox_batches ORDER BY id DESC LIMIT 1") == 2)
        }
    }

    @Test("a flagged correction goes to the review queue, not to training data")
    func flagged() async throws {
        try await withStore { store, pool in
            let c = try correction(Samples.image)
            let submission = Submission(correction: c, receivedAt: Self.received, status: .flagged, flags: ["pii"], quality: 0.2,
                                        trainingExample: nil, events: [OutboxEvent(topic: "morpheus/v1/review/flagged", json: .object([("feedbackId", .string(c.feedbackId))]))])
            _ = try await store.store([submission])
            #expect(try await count(pool, "SELECT count(*) FROM review_queue WHERE flags = '{pii}' AND decision IS NULL") == 1)
            #expect(try await count(pool, "SELECT count(*) FROM training_examples") == 0)
            let pending = try await store.claimBatches(limit: 10)
            #expect(pending.flatMap(\.events).map(\.topic) == ["morpheus/v1/review/flagged"])
        }
    }

    @Test("two instances storing the same correction at once store it exactly once")
    func concurrentInstances() async throws {
        try await withStore { store, pool in
            let item = accepted(try correction(Samples.text))
            let other = FeedbackStore(pool: PostgresPool(configuration: pool.configuration, size: 1))
            async let first = store.store([item])
            async let second = other.store([item])
            let results = try await first + second
            let stored = results.filter { if case .stored = $0 { true } else { false } }.count
            #expect(stored == 1)
            #expect(results.count == 2)
            #expect(try await count(pool, "SELECT count(*) FROM feedback") == 1)
            await other.pool.close()
        }
    }

    @Test("an outbox batch is published by one instance at a time: the committer holds a lease, a sweep claims it only after it ran out")
    func outboxLeases() async throws {
        try await withStore { _, pool in
            let committer = FeedbackStore(pool: pool, owner: "a", outboxLease: .seconds(600))
            let sweeperB = FeedbackStore(pool: pool, owner: "b", outboxLease: .seconds(30))
            let sweeperC = FeedbackStore(pool: PostgresPool(configuration: pool.configuration, size: 1), owner: "c", outboxLease: .seconds(30))
            let batches = try [Samples.text, Samples.image, Samples.layout].map { [accepted(try correction($0))] }
            for batch in batches { _ = try await committer.store(batch, outcomes: [], deadLetters: []) }
            // While the committer's lease runs, nobody else may publish its batches.
            #expect(try await sweeperB.claimBatches(limit: 10).isEmpty)
            // The test's clock: the committer died and its leases ran out.
            try await pool.withConnection { try $0.query("UPDATE outbox_batches SET claimed_until = now() - interval '1 second'") }
            // Two sweepers at once: every batch claimed exactly once.
            async let b = sweeperB.claimBatches(limit: 10)
            async let c = sweeperC.claimBatches(limit: 10)
            let claimed = try await (b + c).map(\.id)
            #expect(claimed.count == 3)
            #expect(Set(claimed).count == 3)
            #expect(try await sweeperB.claimBatches(limit: 10).isEmpty, "claimed rows are leased again")
            await sweeperC.pool.close()
        }
    }

    @Test("a dead letter redelivered is stored once, its arrivals counted, its event published once; retention deletes old ones")
    func deadLettersIdempotent() async throws {
        try await withStore { store, pool in
            let letter = DeadLetter(topic: "morpheus/v1/corrections/text/x", reason: "no readable feedbackId", receivedAt: Date(), payload: Array("junk".utf8))
            let first = try await store.store([], outcomes: [], deadLetters: [(letter, "morpheus/v1/deadletter")])
            let second = try await store.store([], outcomes: [], deadLetters: [(letter, "morpheus/v1/deadletter")])
            #expect(first.deadLettered == 1)
            #expect(first.outbox?.events.count == 1)
            #expect(second.deadLettered == 0)
            #expect(second.outbox == nil)
            #expect(try await count(pool, "SELECT count(*) FROM dead_letters") == 1)
            #expect(try await count(pool, "SELECT occurrences FROM dead_letters") == 2)
            // A topic longer than a btree entry may be is still one dead letter.
            let long = DeadLetter(topic: String(repeating: "t/", count: 5000), reason: "unknown topic", receivedAt: Date(), payload: [])
            _ = try await store.store([], outcomes: [], deadLetters: [(long, "morpheus/v1/deadletter")])
            #expect(try await count(pool, "SELECT count(*) FROM dead_letters") == 2)
        }
    }
}
