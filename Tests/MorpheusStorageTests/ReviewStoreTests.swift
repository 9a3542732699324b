import Foundation
import MorpheusCore
import MorpheusStorage
import Postgres
import Testing
import TestSupport

/// Review decisions: audited, idempotent, decided by the database when reviewers race.
@Suite("Review decisions")
struct ReviewStoreTests {
    let base = FeedbackStoreTests()
    let transform = TrainingTransform(instructions: SystemInstructions())

    var approval: ReviewStore.Approval {
        { [transform] correction, quality in
            let example = SerializedExample(transform.serializedExample(for: correction, quality: quality, contributor: "u_x", createdAt: Date()))
            return (example, OutboxEvent(topic: "morpheus/v1/training/\(correction.modality.rawValue)", payload: example.json))
        }
    }

    func flagged(_ store: FeedbackStore, user: String = "alice.w_1") async throws -> Correction {
        let correction = try base.correction(Samples.text.setting("/userId", to: .string(user)),
                                             [("/feedbackId", .string(UUID().uuidString)), ("/generation/id", .string(UUID().uuidString))])
        _ = try await store.store([Submission(correction: correction, receivedAt: FeedbackStoreTests.received, status: .flagged, flags: ["pii"],
                                              quality: 0.2, trainingExample: nil, events: [])])
        return correction
    }

    func count(_ pool: PostgresPool, _ sql: String) async throws -> Int {
        try await pool.withConnection { try $0.query(sql).first!.decode(0, as: Int.self) }
    }

    @Test("approve: one training example and one training event, audited; again: nothing more; reject after: a conflict")
    func approve() async throws {
        try await base.withStore { store, pool in
            let reviews = ReviewStore(pool: pool)
            let item = try await flagged(store)
            let before = try await count(pool, "SELECT count(*) FROM outbox_batches")
            #expect(try await reviews.decide(.approve, feedbackId: item.feedbackId, reviewer: "rev-a", reason: "fine", approval: approval) == .decided(previousState: "open"))
            #expect(try await reviews.decide(.approve, feedbackId: item.feedbackId, reviewer: "rev-a", reason: "fine", approval: approval) == .alreadyDecided)
            #expect(try await reviews.decide(.reject, feedbackId: item.feedbackId, reviewer: "rev-b", reason: "no", approval: approval) == .conflict(state: "approved"))
            #expect(try await count(pool, "SELECT count(*) FROM training_examples") == 1)
            #expect(try await count(pool, "SELECT count(*) FROM outbox_batches") == before + 1)
            let pending = try await FeedbackStore(pool: pool, outboxLease: .zero).claimBatches(limit: 10)
            #expect(pending.flatMap(\.events).filter { $0.topic == "morpheus/v1/training/text" }.count == 1)
            #expect(try await count(pool, "SELECT count(*) FROM review_decisions WHERE reviewer = 'rev-a' AND previous_state = 'open' AND reason = 'fine'") == 1)
            #expect(try await reviews.record(of: item.userId) == ContributorRecord(approvals: 1, rejections: 0))
            #expect(try await count(pool, "SELECT count(*) FROM feedback WHERE quality > 0.5") == 1, "an approved correction is scored without its flag")
        }
    }

    @Test("reject: never trained on, reason kept, the contributor's record lowered; escalate, then decide")
    func rejectAndEscalate() async throws {
        try await base.withStore { store, pool in
            let reviews = ReviewStore(pool: pool)
            let first = try await flagged(store, user: "bob.r")
            #expect(try await reviews.decide(.reject, feedbackId: first.feedbackId, reviewer: "rev-a", reason: "real phone number", approval: approval) == .decided(previousState: "open"))
            #expect(try await count(pool, "SELECT count(*) FROM training_examples") == 0)
            #expect(try await count(pool, "SELECT count(*) FROM review_queue WHERE state = 'rejected' AND reason = 'real phone number'") == 1)
            #expect(try await reviews.record(of: "bob.r") == ContributorRecord(approvals: 0, rejections: 1))

            let second = try await flagged(store, user: "bob.r")
            #expect(try await reviews.decide(.escalate, feedbackId: second.feedbackId, reviewer: "rev-a", reason: "unsure", approval: approval) == .decided(previousState: "open"))
            #expect(try await reviews.decide(.approve, feedbackId: second.feedbackId, reviewer: "rev-senior", reason: nil, approval: approval) == .decided(previousState: "escalated"))
            #expect(try await reviews.decide(.approve, feedbackId: UUID().uuidString, reviewer: "rev-a", reason: nil, approval: approval) == .notFound)
        }
    }

    @Test("two reviewers deciding one item at once: exactly one wins")
    func race() async throws {
        try await base.withStore { store, pool in
            let other = PostgresPool(configuration: pool.configuration, size: 1)
            for _ in 0..<5 {
                let item = try await flagged(store)
                async let a = ReviewStore(pool: pool).decide(.approve, feedbackId: item.feedbackId, reviewer: "rev-a", reason: nil, approval: approval)
                async let b = ReviewStore(pool: other).decide(.reject, feedbackId: item.feedbackId, reviewer: "rev-b", reason: nil, approval: approval)
                let outcomes = try await [a, b]
                #expect(outcomes.filter { if case .decided = $0 { true } else { false } }.count == 1, "\(outcomes)")
                #expect(outcomes.filter { if case .conflict = $0 { true } else { false } }.count == 1, "\(outcomes)")
            }
            #expect(try await count(pool, "SELECT count(*) FROM review_decisions") == 5)
            await other.close()
        }
    }
}
