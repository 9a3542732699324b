import Foundation
import MorpheusCore
import MorpheusStorage
import Postgres
import Testing
import TestSupport

/// Opt-out, opt-in and status against PostgreSQL: applied in the batch's transaction under the
/// user's lock, idempotent by request id, audited under the pseudonym.
@Suite("Privacy store against PostgreSQL")
struct PrivacyStoreTests {
    let base = FeedbackStoreTests()

    func request(_ action: PrivacyRequest.Action, user: String, id: String = UUID().uuidString.lowercased()) -> PrivacyWork {
        let document = JSONValue.object([("schema", .string(PrivacyRequest.schemaName)), ("requestId", .string(id)), ("userId", .string(user)),
                                         ("action", .string(action.rawValue))])
        guard case .valid(let request) = CorrectionValidator().validatePrivacy(document.serialized(), topicUserId: user) else {
            preconditionFailure("the sample request is invalid")
        }
        return PrivacyWork(request: request, requestedBy: "user", subject: "u_" + user)
    }

    func correction(user: String, text: String) throws -> Submission {
        base.accepted(try base.correction(Samples.text.setting("/userId", to: .string(user)), [
            ("/feedbackId", .string(UUID().uuidString)), ("/corrected/text", .string(text)), ("/generation/id", .string(UUID().uuidString)),
        ]))
    }

    @Test("an opt-out refuses the user's later corrections, outcomes and dead letters with nothing stored, counts them, and an opt-in resumes")
    func optOutAndIn() async throws {
        try await base.withStore { store, pool in
            let user = "private.user"
            _ = try await store.store([try correction(user: user, text: "Stored before the opt-out.")], outcomes: [], deadLetters: [])
            let optOut = try await store.store([], outcomes: [], deadLetters: [], privacy: [request(.optOut, user: user)])
            guard case let .applied(counts, settings, _)? = optOut.privacy.first else { Issue.record("\(optOut.privacy)"); return }
            #expect(counts == ["settings": 1, "storedCorrections": 1])
            #expect(settings.optedOut)

            let marker = "Zanzibar-lighthouse-\(UUID().uuidString)"
            let document = Samples.outcome.setting("/userId", to: .string(user))
            guard case .valid(let outcome) = CorrectionValidator().validateOutcome(document.serialized(), topicModality: "text", topicUserId: user,
                                                                                   now: FeedbackStoreTests.received) else { Issue.record("outcome"); return }
            let letter = DeadLetter(topic: "morpheus/v1/corrections/text/\(user)", reason: "no readable feedbackId",
                                    receivedAt: FeedbackStoreTests.received, payload: Array("{\"x\":\"\(marker)\"}".utf8), userId: user)
            let other = try correction(user: "someone.else", text: "Another user's correction.")
            let refused = try await store.store([try correction(user: user, text: marker), other], outcomes: [(outcome, FeedbackStoreTests.received)],
                                                deadLetters: [(letter, "morpheus/v1/deadletter")])
            #expect(refused.corrections.first == .optedOut)
            if case .stored = refused.corrections.last {} else { Issue.record("the other user's correction: \(refused.corrections)") }
            #expect(refused.outcomes == [.optedOut])
            #expect(refused.deadLettered == 0)
            #expect(try await ScratchDatabase.rows(containing: marker, pool) == 0)
            #expect(try await PrivacyStore(pool: pool).settings(of: user).refused == 3)

            _ = try await store.store([], outcomes: [], deadLetters: [], privacy: [request(.optIn, user: user)])
            let resumed = try await store.store([try correction(user: user, text: marker)], outcomes: [], deadLetters: [])
            if case .stored = resumed.corrections.first {} else { Issue.record("after opt-in: \(resumed.corrections)") }
            #expect(try await ScratchDatabase.rows(containing: marker, pool) > 0)
        }
    }

    @Test("a request and a correction in one batch: the request wins; a replay answers the same and changes nothing; a reused id conflicts")
    func ordering() async throws {
        try await base.withStore { store, pool in
            let user = "batch.user"
            let optOut = request(.optOut, user: user)
            let batch = try await store.store([try correction(user: user, text: "Sent with the opt-out.")], outcomes: [], deadLetters: [], privacy: [optOut])
            #expect(batch.corrections == [.optedOut])
            _ = try await store.store([], outcomes: [], deadLetters: [], privacy: [request(.optIn, user: user)])
            // The opt-out again, as the editor republishes it: the first answer, no second opt-out.
            let replay = try await store.store([], outcomes: [], deadLetters: [], privacy: [optOut])
            guard case let .applied(counts, settings, _)? = replay.privacy.first else { Issue.record("\(replay.privacy)"); return }
            #expect(counts == ["settings": 1, "storedCorrections": 0])
            #expect(!settings.optedOut)
            let reused = request(.optIn, user: user, id: optOut.request.requestId)
            #expect(try await store.store([], outcomes: [], deadLetters: [], privacy: [reused]).privacy == [.conflict])
            // Audited under the pseudonym, never the user id.
            let audit = try await pool.withConnection {
                try $0.query("SELECT count(*) FROM privacy_requests WHERE subject = 'u_batch.user' AND requested_by = 'user'").first!.decode(0, as: Int.self)
            }
            #expect(audit == 2)
            let named = try await pool.withConnection {
                try $0.query("SELECT count(*) FROM privacy_requests WHERE subject = $1", [user]).first!.decode(0, as: Int.self)
            }
            #expect(named == 0)
        }
    }

    @Test("an opt-out committed while a batch of the user waits for the user's lock wins over that batch")
    func racingBatch() async throws {
        try await base.withStore { store, pool in
            let user = "race.privacy"
            let lock = try await UserLock.hold(user, on: pool)
            let other = FeedbackStore(pool: PostgresPool(configuration: pool.configuration, size: 1))
            let optOut = request(.optOut, user: user)
            let first = Task { try await store.store([], outcomes: [], deadLetters: [], privacy: [optOut]) }
            try await waitUntil("the opt-out waiting for the user's lock") { try await lock.waiting() == 1 }
            let submission = try correction(user: user, text: "Raced the opt-out.")
            let second = Task { try await other.store([submission], outcomes: [], deadLetters: []) }
            try await waitUntil("the batch waiting too") { try await lock.waiting() == 2 }
            try await lock.release()
            _ = try await first.value
            #expect(try await second.value.corrections == [.optedOut])
            await other.pool.close()
        }
    }

    @Test("approving a review item of a user who opted out records the decision but publishes no training example")
    func approvalAfterOptOut() async throws {
        try await base.withStore { store, pool in
            let user = "flagged.user"
            let held = try correction(user: user, text: "MARA: Mail me at jonas.weber@gmx.de tonight.")
            let flagged = Submission(correction: held.correction, receivedAt: held.receivedAt, status: .flagged, flags: ["pii"], quality: 0.2,
                                     trainingExample: nil, events: [])
            _ = try await store.store([flagged], outcomes: [], deadLetters: [])
            _ = try await store.store([], outcomes: [], deadLetters: [], privacy: [request(.optOut, user: user)])
            let outcome = try await ReviewStore(pool: pool).decide(.approve, feedbackId: held.correction.feedbackId, reviewer: "rev", reason: nil) { correction, _ in
                let example = SerializedExample(exampleId: TrainingTransform.exampleId(for: correction.feedbackId), json: Array("{}".utf8))
                return (example, OutboxEvent(topic: "morpheus/v1/training/text", payload: example.json))
            }
            #expect(outcome == .decided(previousState: "open"))
            let examples = try await pool.withConnection { try $0.query("SELECT count(*) FROM training_examples").first!.decode(0, as: Int.self) }
            #expect(examples == 0)
        }
    }
}
