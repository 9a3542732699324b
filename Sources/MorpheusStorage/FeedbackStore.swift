import Foundation
import MorpheusCore
import Postgres

/// A validated correction with everything decided about it before it is stored.
public struct Submission: Sendable {
    public var correction: Correction
    public var receivedAt: Date
    /// `.accepted` or `.flagged`.
    public var status: Receipt.Status
    public var flags: [String]
    public var quality: Double
    /// The training example (accepted) to store and publish.
    public var trainingExample: JSONValue?
    /// Events to publish once committed: (topic, payload).
    public var events: [(topic: String, payload: JSONValue)]

    public init(correction: Correction, receivedAt: Date, status: Receipt.Status, flags: [String] = [], quality: Double,
                trainingExample: JSONValue?, events: [(topic: String, payload: JSONValue)]) {
        self.correction = correction
        self.receivedAt = receivedAt
        self.status = status
        self.flags = flags
        self.quality = quality
        self.trainingExample = trainingExample
        self.events = events
    }
}

/// What storing one submission came to.
public enum StoreResult: Sendable, Equatable {
    /// Newly stored; durable at `committedAt`.
    case stored(committedAt: Date)
    /// Already stored, under this id (the same one, or another id with identical content).
    case duplicate(originalFeedbackId: String, originalStatus: Receipt.Status, committedAt: Date)
    /// This feedbackId is stored with different content.
    case conflict
}

/// Stores batches of corrections in one transaction each (group commit).
///
/// Uniqueness is enforced by the database (primary key on feedback_id, unique content key), so
/// concurrent instances and redeliveries can never store a correction twice. Derived rows
/// (training example or review item) and their outbox events are written in the same
/// transaction.
public struct FeedbackStore: Sendable {
    public let pool: PostgresPool

    public init(pool: PostgresPool) {
        self.pool = pool
    }

    /// Stores `submissions` (and `deadLetters`, each with the topic its event goes to) and
    /// returns one result per submission, in order. Throws when the transaction failed; then
    /// nothing of the batch was stored.
    public func store(_ submissions: [Submission], deadLetters: [(letter: DeadLetter, eventTopic: String)] = []) async throws -> [StoreResult] {
        try await store(submissions, outcomes: [], deadLetters: deadLetters).corrections
    }

    /// Stores corrections, outcomes and dead letters of one batch in one transaction.
    public func store(
        _ submissions: [Submission], outcomes: [(outcome: Outcome, receivedAt: Date)],
        deadLetters: [(letter: DeadLetter, eventTopic: String)]
    ) async throws -> (corrections: [StoreResult], outcomes: [StoreResult]) {
        guard !submissions.isEmpty || !outcomes.isEmpty || !deadLetters.isEmpty else { return ([], []) }
        return try await pool.transaction { connection in
            if !deadLetters.isEmpty { try connection.pipeline(deadLetters.flatMap(Self.deadLetterRows)) }
            let outcomeResults = try Self.storeOutcomes(outcomes, connection)
            guard !submissions.isEmpty else { return ([], outcomeResults) }
            let inserted = try connection.pipeline(submissions.map(Self.insert), prepared: true)
            var results: [StoreResult?] = inserted.map { rows in
                (try? rows.first?.decode("committed_at", as: Date.self)).map { StoreResult.stored(committedAt: $0) }
            }
            let conflicts = results.indices.filter { results[$0] == nil }
            if !conflicts.isEmpty {
                let lookups = try connection.pipeline(conflicts.map { Self.lookup(submissions[$0].correction) }, prepared: true)
                for (position, rows) in zip(conflicts, lookups) {
                    results[position] = try Self.classify(submissions[position].correction, rows.first)
                }
            }
            var derived: [(sql: String, parameters: [any PostgresEncodable])] = []
            for (submission, result) in zip(submissions, results) {
                guard case .stored = result else { continue }
                derived += Self.derivedRows(submission)
            }
            if !derived.isEmpty { try connection.pipeline(derived, prepared: true) }
            return (results.map { $0 ?? .conflict }, outcomeResults)
        }
    }

    /// Outcomes are idempotent by outcome_id: a republish is a duplicate, a reused id with
    /// other content a conflict.
    static func storeOutcomes(_ outcomes: [(outcome: Outcome, receivedAt: Date)], _ connection: PostgresConnection) throws -> [StoreResult] {
        guard !outcomes.isEmpty else { return [] }
        let inserted = try connection.pipeline(outcomes.map { item in
            let o = item.outcome
            return ("""
                INSERT INTO outcomes (outcome_id, user_id, modality, generation_id, model, model_version, experiment_id,
                    experiment_arm, outcome, payload_hash, occurred_at, received_at)
                VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                ON CONFLICT (outcome_id) DO NOTHING
                RETURNING now() AS committed_at
                """, [o.outcomeId, o.userId, o.modality.rawValue, o.generation.id, o.generation.model, o.generation.modelVersion,
                      o.generation.experiment?.id, o.generation.experiment?.arm, o.outcome.rawValue, o.payloadHash,
                      o.occurredAt, item.receivedAt] as [any PostgresEncodable])
        })
        var results: [StoreResult] = []
        for (item, rows) in zip(outcomes, inserted) {
            if let committed = try rows.first?.decode("committed_at", as: Date.self) {
                results.append(.stored(committedAt: committed))
                continue
            }
            let existing = try connection.query("SELECT payload_hash, received_at FROM outcomes WHERE outcome_id = $1::uuid", [item.outcome.outcomeId]).first
            guard let existing, try existing.decode("payload_hash", as: String.self) == item.outcome.payloadHash else {
                results.append(.conflict)
                continue
            }
            results.append(.duplicate(originalFeedbackId: item.outcome.outcomeId, originalStatus: .accepted,
                                      committedAt: try existing.decode("received_at", as: Date.self)))
        }
        return results
    }

    static func insert(_ submission: Submission) -> (sql: String, parameters: [any PostgresEncodable]) {
        let c = submission.correction
        return ("""
            INSERT INTO feedback (feedback_id, user_id, modality, correction_type, comic_id, scene_id, panel_id, character_id,
                generation_id, model, model_version, experiment_id, experiment_arm, prompt, original, corrected,
                payload_hash, content_hash, status, flags, quality, occurred_at, edit_duration_ms, client_app, client_version, received_at)
            VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26)
            ON CONFLICT DO NOTHING
            RETURNING committed_at
            """, [
                c.feedbackId, c.userId, c.modality.rawValue, c.correctionType.rawValue, c.target.comicId, c.target.sceneId,
                c.target.panelId, c.target.characterId, c.generation.id, c.generation.model, c.generation.modelVersion,
                c.generation.experiment?.id, c.generation.experiment?.arm, c.generation.prompt,
                PostgresJSONB(c.originalJSON.serialized()), PostgresJSONB(c.correctedJSON.serialized()),
                c.payloadHash, c.contentHash, submission.status.rawValue, submission.flags, submission.quality,
                c.occurredAt, c.editDurationMs.map(Int32.init), c.client?.app, c.client?.version, submission.receivedAt,
            ])
    }

    /// The stored row this correction collided with: its own id first, else the content key.
    static func lookup(_ c: Correction) -> (sql: String, parameters: [any PostgresEncodable]) {
        ("""
            SELECT feedback_id::text AS id, status, payload_hash, committed_at FROM feedback
            WHERE feedback_id = $1::uuid OR (user_id = $2 AND generation_id = $3 AND content_hash = $4)
            ORDER BY (feedback_id = $1::uuid) DESC LIMIT 1
            """, [c.feedbackId, c.userId, c.generation.id, c.contentHash])
    }

    static func classify(_ c: Correction, _ row: PostgresRow?) throws -> StoreResult {
        // Nothing found means the conflicting row was deleted meanwhile (erasure): a conflict
        // the editor resolves by sending again.
        guard let row else { return .conflict }
        let id = try row.decode("id", as: String.self)
        let status = Receipt.Status(rawValue: try row.decode("status", as: String.self)) ?? .accepted
        if id == c.feedbackId, try row.decode("payload_hash", as: String.self) != c.payloadHash { return .conflict }
        return .duplicate(originalFeedbackId: id, originalStatus: status, committedAt: try row.decode("committed_at", as: Date.self))
    }

    static func deadLetterRows(_ record: (letter: DeadLetter, eventTopic: String)) -> [(sql: String, parameters: [any PostgresEncodable])] {
        let letter = record.letter
        return [
            ("INSERT INTO dead_letters (topic, reason, received_at, payload_sha256, payload_prefix) VALUES ($1, $2, $3, $4, $5)",
             [letter.topic, letter.reason, letter.receivedAt, letter.payloadSha256, PostgresBytes(letter.payloadPrefix)]),
            ("INSERT INTO outbox (topic, payload) VALUES ($1, $2)", [record.eventTopic, PostgresBytes(letter.json.serialized())]),
        ]
    }

    /// Publishable events, oldest first.
    public func pendingEvents(limit: Int) async throws -> [(id: Int, topic: String, payload: [UInt8])] {
        try await pool.withConnection { connection in
            try connection.query("SELECT id, topic, payload FROM outbox ORDER BY id LIMIT $1", [limit], prepared: true).map {
                (try $0.decode("id", as: Int.self), try $0.decode("topic", as: String.self), try $0.decode("payload", as: PostgresBytes.self).bytes)
            }
        }
    }

    /// Forgets events the broker acknowledged.
    public func eventsPublished(_ ids: [Int]) async throws {
        guard !ids.isEmpty else { return }
        try await pool.withConnection { connection in
            try connection.query("DELETE FROM outbox WHERE id = ANY($1)", [ids], prepared: true)
        }
    }

    static func derivedRows(_ submission: Submission) -> [(sql: String, parameters: [any PostgresEncodable])] {
        let c = submission.correction
        var rows: [(sql: String, parameters: [any PostgresEncodable])] = []
        if let example = submission.trainingExample, case .string(let exampleId)? = example["exampleId"] {
            rows.append(("""
                INSERT INTO training_examples (example_id, feedback_id, modality, body, created_at)
                VALUES ($1::uuid, $2::uuid, $3, $4, $5)
                """, [exampleId, c.feedbackId, c.modality.rawValue, PostgresJSONB(example.serialized()), submission.receivedAt]))
        }
        if submission.status == .flagged {
            rows.append(("INSERT INTO review_queue (feedback_id, flags, flagged_at) VALUES ($1::uuid, $2, $3)",
                         [c.feedbackId, submission.flags, submission.receivedAt]))
        }
        for event in submission.events {
            rows.append(("INSERT INTO outbox (topic, payload, feedback_id) VALUES ($1, $2, $3::uuid)",
                         [event.topic, PostgresBytes(event.payload.serialized()), c.feedbackId]))
        }
        return rows
    }
}
