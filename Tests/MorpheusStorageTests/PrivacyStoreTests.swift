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
        return PrivacyWork(request: request, requestedBy: "user", subject: Self.subject(user))
    }

    /// A stand-in pseudonym that, like the real one, does not contain the user id.
    static func subject(_ user: String) -> String { "u_" + sha256Hex(Array(user.utf8)).prefix(32) }

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

    @Test("a batch of corrections alone with one from a user who opted out earlier: that one refused with nothing of it stored, the others stored with their events")
    func optedOutAmongCorrections() async throws {
        try await base.withStore { store, pool in
            let user = "quiet.user"
            _ = try await store.store([], outcomes: [], deadLetters: [], privacy: [request(.optOut, user: user)])
            let marker = "Quiet-harbour-\(UUID().uuidString)"
            let other = try correction(user: "loud.user", text: "Another user's correction.")
            let batch = try await store.store([try correction(user: user, text: marker), other], outcomes: [], deadLetters: [])
            #expect(batch.corrections.first == .optedOut)
            if case .stored = batch.corrections.last {} else { Issue.record("the other user's correction: \(batch.corrections)") }
            #expect(try await ScratchDatabase.rows(containing: marker, pool) == 0)
            #expect(!other.events.isEmpty)
            #expect(batch.outbox?.events.count == other.events.count)
            #expect(try await PrivacyStore(pool: pool).settings(of: user).refused == 1)
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
                try $0.query("SELECT count(*) FROM privacy_requests WHERE subject = $1 AND requested_by = 'user'", [Self.subject(user)]).first!.decode(0, as: Int.self)
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

    @Test("erase deletes every row of the user (corrections, examples, review items and decisions, outcomes, record, dead letters, unpublished events), keeps the counts under the pseudonym, and queues a retraction")
    func erase() async throws {
        try await base.withStore { store, pool in
            let user = "erase.user"
            let accepted = try correction(user: user, text: "MARA: We ride at first light.")
            let held = try correction(user: user, text: "MARA: Mail me at jonas.weber@gmx.de tonight.")
            let flagged = Submission(correction: held.correction, receivedAt: held.receivedAt, status: .flagged, flags: ["pii"], quality: 0.2,
                                     trainingExample: nil, events: [OutboxEvent(topic: "morpheus/v1/review/flagged", json: .object([
                                         ("schema", .string("morpheus.review-item/1")), ("feedbackId", .string(held.correction.feedbackId)),
                                     ]))])
            let bystander = try correction(user: "bystander", text: "MARA: Another user's line.")
            let document = Samples.outcome.setting("/userId", to: .string(user))
            guard case .valid(let outcome) = CorrectionValidator().validateOutcome(document.serialized(), topicModality: "text", topicUserId: user,
                                                                                   now: FeedbackStoreTests.received) else { Issue.record("outcome"); return }
            let letter = DeadLetter(topic: "morpheus/v1/corrections/text/\(user)", reason: "no readable feedbackId",
                                    receivedAt: FeedbackStoreTests.received, payload: Array("{}".utf8), userId: user)
            _ = try await store.store([accepted, flagged, bystander], outcomes: [(outcome, FeedbackStoreTests.received)],
                                      deadLetters: [(letter, "morpheus/v1/deadletter")])
            _ = try await ReviewStore(pool: pool).decide(.escalate, feedbackId: held.correction.feedbackId, reviewer: "rev", reason: "unsure") { _, _ in
                preconditionFailure("escalation trains nothing")
            }
            try await pool.withConnection { try $0.query("INSERT INTO contributor_reputation (user_id, approvals, rejections) VALUES ($1, 2, 1)", [user]) }

            let erased = try await store.store([], outcomes: [], deadLetters: [], privacy: [request(.erase, user: user)])
            guard case let .applied(counts, _, _)? = erased.privacy.first else { Issue.record("\(erased.privacy)"); return }
            #expect(counts == ["corrections": 2, "trainingExamples": 1, "reviewItems": 1, "reviewDecisions": 1, "outcomes": 1, "reputation": 1,
                               "deadLetters": 1, "outboxEvents": 3, "retractionEvents": 1, "datasetVersions": 0, "archivedCorrections": 0])
            let naming = try await ScratchDatabase.tables(containing: user, pool)
            #expect(naming.isEmpty, "no row anywhere names the user: \(naming)")
            #expect(try await ScratchDatabase.rows(containing: "jonas.weber", pool) == 0)
            #expect(try await ScratchDatabase.rows(containing: "Another user's line", pool) > 0, "other users' rows stay")
            // The erasure log: counts under the pseudonym.
            let logged = try await pool.withConnection {
                try $0.query("SELECT counts->>'corrections' AS n FROM privacy_requests WHERE subject = $1 AND action = 'erase'", [Self.subject(user)]).first?
                    .decode("n", as: String.self)
            }
            #expect(logged == "2")
            // The retraction waits in the outbox for the publisher.
            let events = try await pool.withConnection { connection in
                try connection.query("SELECT events FROM outbox_batches ORDER BY id").flatMap { try OutboxFraming.decode(try $0.decode("events", as: PostgresBytes.self).bytes) }
            }
            let retraction = events.first { String(decoding: $0.payload, as: UTF8.self).contains("training-retraction") }
            #expect(retraction?.topic == "morpheus/v1/training/text")
            #expect(retraction.map { String(decoding: $0.payload, as: UTF8.self) }?.contains(TrainingTransform.exampleId(for: accepted.correction.feedbackId)) == true)
            #expect(!events.contains { String(decoding: $0.payload, as: UTF8.self).contains(held.correction.feedbackId) }, "unpublished events about the user are dropped")
        }
    }

    /// Examples as the service builds them (contributor: the correction's user, already the pseudonym).
    var rebuild: ReviewStore.Approval {
        { [transform = base.transform] correction, quality in
            let example = SerializedExample(transform.serializedExample(for: correction, quality: quality, contributor: correction.userId, createdAt: FeedbackStoreTests.received))
            return (example, OutboxEvent(topic: "morpheus/v1/training/\(correction.modality.rawValue)", payload: example.json))
        }
    }

    @Test("anonymize rewrites every row under the pseudonym with personal data scrubbed, rebuilds the examples; later feedback is stored the same way until identify")
    func anonymize() async throws {
        try await base.withStore { store, pool in
            let user = "anon.user"
            var work = request(.anonymize, user: user)
            work.rebuild = rebuild
            let pseudonym = work.subject
            let phone = "312-789-9973", email = "mara.v@gmx.de"
            let spoken = try correction(user: user, text: "MARA: Call me at \(phone) when the ship docks.")
            let held = try correction(user: user, text: "MARA: Write to \(email) tonight.")
            let flagged = Submission(correction: held.correction, receivedAt: held.receivedAt, status: .flagged, flags: ["pii"], quality: 0.2,
                                     trainingExample: nil, events: [])
            let document = Samples.outcome.setting("/userId", to: .string(user))
            guard case .valid(let outcome) = CorrectionValidator().validateOutcome(document.serialized(), topicModality: "text", topicUserId: user,
                                                                                   now: FeedbackStoreTests.received) else { Issue.record("outcome"); return }
            _ = try await store.store([spoken, flagged], outcomes: [(outcome, FeedbackStoreTests.received)], deadLetters: [])
            try await pool.withConnection { try $0.query("INSERT INTO contributor_reputation (user_id, approvals, rejections) VALUES ($1, 3, 1)", [user]) }

            let result = try await store.store([], outcomes: [], deadLetters: [], privacy: [work])
            guard case let .applied(counts, settings, _)? = result.privacy.first else { Issue.record("\(result.privacy)"); return }
            #expect(counts == ["corrections": 2, "trainingExamples": 1, "outcomes": 1, "reputation": 1, "deadLetters": 0, "outboxEvents": 1, "archivedCorrections": 0])
            #expect(settings.anonymized)
            // Only the setting that makes capture anonymize names the user.
            #expect(try await ScratchDatabase.tables(containing: user, pool) == ["privacy_settings": 1])
            #expect(try await ScratchDatabase.rows(containing: phone, pool) == 0)
            #expect(try await ScratchDatabase.rows(containing: email, pool) == 0)
            let body = try await pool.withConnection {
                try $0.query("SELECT body::text AS body FROM training_examples").first!.decode("body", as: String.self)
            }
            #expect(body.contains("MARA: Call me at [phone] when the ship docks.") && body.contains(pseudonym))
            #expect(try await pool.withConnection {
                try $0.query("SELECT count(*) FROM contributor_reputation WHERE user_id = $1 AND approvals = 3", [pseudonym]).first!.decode(0, as: Int.self)
            } == 1)

            // Later feedback: stored the same way at capture.
            let anonymizer = CaptureAnonymizer(pseudonym: { _ in pseudonym }) { submission in
                Submission(correction: submission.correction.anonymized(as: pseudonym), receivedAt: submission.receivedAt, status: submission.status,
                           flags: submission.flags, quality: submission.quality, trainingExample: nil, events: [])
            }
            let later = try correction(user: user, text: "MARA: My number is \(phone), call after dark.")
            _ = try await store.store([later], outcomes: [], deadLetters: [], anonymizer: anonymizer)
            #expect(try await ScratchDatabase.rows(containing: phone, pool) == 0)
            #expect(try await ScratchDatabase.tables(containing: user, pool) == ["privacy_settings": 1])

            // identify: the real id again for what comes next; the past stays anonymized.
            _ = try await store.store([], outcomes: [], deadLetters: [], privacy: [request(.identify, user: user)])
            _ = try await store.store([try correction(user: user, text: "MARA: Back under my own name.")], outcomes: [], deadLetters: [], anonymizer: anonymizer)
            #expect(try await pool.withConnection {
                try $0.query("SELECT count(*) FROM feedback WHERE user_id = $1", [user]).first!.decode(0, as: Int.self)
            } == 1)
        }
    }
}
