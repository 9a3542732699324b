import Foundation
import MorpheusCore
import Postgres

/// What a reviewer can decide about a flagged correction.
public enum ReviewDecision: String, Sendable, CaseIterable {
    case approve, reject, escalate

    /// The state an item is in after this decision.
    public var resultingState: String {
        switch self {
        case .approve: "approved"
        case .reject: "rejected"
        case .escalate: "escalated"
        }
    }

    /// The states this decision may be taken from.
    var allowedFrom: [String] {
        switch self {
        case .approve, .reject: ["open", "escalated"]
        case .escalate: ["open"]
        }
    }
}

/// How a decision came out.
public enum ReviewOutcome: Sendable, Equatable {
    /// Taken now (from `previousState`).
    case decided(previousState: String)
    /// The item was already in the state this decision leads to: nothing changed (a repeated
    /// decision is idempotent).
    case alreadyDecided
    /// Another decision won first; the item is in `state`.
    case conflict(state: String)
    case notFound
}

/// Review decisions in PostgreSQL. Each decision is one transaction: the item's row is locked,
/// its state checked and changed, the decision audited, and on approval the correction's
/// training example and its `training/{modality}` event are written (exactly once: the state
/// check and the example's unique feedback id both guard it). Two reviewers deciding at once
/// are serialized by the row lock; the second sees the first's state.
public struct ReviewStore: Sendable {
    public let pool: PostgresPool

    public init(pool: PostgresPool) {
        self.pool = pool
    }

    /// The training example and event of an approved correction, made by the caller (who knows
    /// the transform, the pseudonym key and the topics).
    public typealias Approval = @Sendable (Correction, _ quality: Double) -> (example: SerializedExample, event: OutboxEvent)

    public func decide(_ decision: ReviewDecision, feedbackId: String, reviewer: String, reason: String?,
                       approval: @escaping Approval) async throws -> ReviewOutcome {
        try await pool.transaction { connection in
            guard let row = try connection.query(
                "SELECT state FROM review_queue WHERE feedback_id = $1::uuid FOR UPDATE", [feedbackId]
            ).first else { return .notFound }
            let state = try row.decode("state", as: String.self)
            if state == decision.resultingState { return .alreadyDecided }
            guard decision.allowedFrom.contains(state) else { return .conflict(state: state) }
            try connection.query("""
                UPDATE review_queue SET state = $2, reason = $3,
                    decision = CASE WHEN $2 IN ('approved', 'rejected') THEN $2 ELSE decision END,
                    decided_by = $4, decided_at = now()
                WHERE feedback_id = $1::uuid
                """, [feedbackId, decision.resultingState, reason, reviewer])
            try connection.query("""
                INSERT INTO review_decisions (feedback_id, decision, reviewer, reason, previous_state) VALUES ($1::uuid, $2, $3, $4, $5)
                """, [feedbackId, decision.rawValue, reviewer, reason, state])
            switch decision {
            case .approve:
                let correction = try Self.correction(feedbackId, connection)
                let record = try Self.record(correction.userId, connection)
                let quality = QualityScore.score(GateInput(correction), flags: [],
                                                 record: ContributorRecord(approvals: record.approvals + 1, rejections: record.rejections))
                let (example, event) = approval(correction, quality)
                // An opted-out user's stored feedback is never published as training data again.
                let optedOut = try !PrivacyStore.optedOut([correction.userId], connection).isEmpty
                let inserted = optedOut ? 0 : try connection.query("""
                    INSERT INTO training_examples (example_id, feedback_id, modality, body, created_at, formats)
                    VALUES ($1::uuid, $2::uuid, $3, $4::json, now(), $5) ON CONFLICT (feedback_id) DO NOTHING RETURNING example_id
                    """, [example.exampleId, feedbackId, correction.modality.rawValue, String(decoding: example.json, as: UTF8.self),
                          Int32(example.formats)]).count
                if inserted == 1 {
                    try connection.query("""
                        INSERT INTO outbox_batches (events, event_count, feedback_ids) VALUES ($1, 1, ARRAY[$2::uuid])
                        """, [PostgresBytes(OutboxFraming.encode([event])), feedbackId])
                }
                try connection.query("UPDATE feedback SET quality = $2 WHERE feedback_id = $1::uuid", [feedbackId, quality])
                try Self.count(correction.userId, approvals: 1, rejections: 0, connection)
            case .reject:
                let user = try connection.query("SELECT user_id FROM feedback WHERE feedback_id = $1::uuid", [feedbackId]).first?
                    .decode("user_id", as: String.self)
                if let user { try Self.count(user, approvals: 0, rejections: 1, connection) }
            case .escalate:
                break
            }
            return .decided(previousState: state)
        }
    }

    /// One item of the review queue, without any free text of the user.
    public struct Listing: Sendable, Equatable {
        public var feedbackId: String
        public var state: String
        public var flags: [String]
        /// Why it went to expert review without a flag (``ReviewReason`` codes).
        public var reasons: [String]
        public var modality: String
        public var correctionType: String
        public var model: String
        public var modelVersion: String
        public var quality: Double
        public var flaggedAt: Date
    }

    /// Items waiting for a decision (open or escalated), oldest first, filtered.
    public func pending(flag: String? = nil, modality: String? = nil, modelVersion: String? = nil,
                        olderThan age: Duration? = nil, limit: Int = 100) async throws -> [Listing] {
        try await pool.withConnection { connection in
            try connection.query("""
                SELECT r.feedback_id::text AS id, r.state, r.flags, r.reasons, f.modality, f.correction_type, f.model, f.model_version,
                       coalesce(f.quality, 0)::float8 AS quality, r.flagged_at
                FROM review_queue r JOIN feedback f USING (feedback_id)
                WHERE r.state IN ('open', 'escalated') AND ($1::text IS NULL OR $1 = ANY(r.flags) OR $1 = ANY(r.reasons))
                  AND ($2::text IS NULL OR f.modality = $2) AND ($3::text IS NULL OR f.model_version = $3)
                  AND ($4::float8 IS NULL OR r.flagged_at <= now() - make_interval(secs => $4))
                ORDER BY r.flagged_at, r.feedback_id LIMIT $5
                """, [flag, modality, modelVersion, age.map { Double($0.components.seconds) }, limit]).map { row in
                Listing(feedbackId: try row.decode("id", as: String.self), state: try row.decode("state", as: String.self),
                        flags: try row.decode("flags", as: [String].self), reasons: try row.decode("reasons", as: [String].self), modality: try row.decode("modality", as: String.self),
                        correctionType: try row.decode("correction_type", as: String.self), model: try row.decode("model", as: String.self),
                        modelVersion: try row.decode("model_version", as: String.self), quality: try row.decode("quality", as: Double.self),
                        flaggedAt: try row.decode("flagged_at", as: Date.self))
            }
        }
    }

    /// The queue at a glance.
    public struct Statistics: Sendable, Equatable {
        /// Items waiting, per flag or review reason (an item with two counts under both).
        public var waitingByFlag: [String: Int]
        public var waiting: Int
        public var oldestWaitingSince: Date?
        /// Decisions per reviewer and decision.
        public var decisions: [String: [String: Int]]
    }

    public func statistics() async throws -> Statistics {
        try await pool.withConnection { connection in
            var byFlag: [String: Int] = [:]
            for row in try connection.query("""
                SELECT flag, count(*) AS n FROM review_queue, unnest(flags || reasons) AS flag WHERE state IN ('open', 'escalated') GROUP BY flag
                """) { byFlag[try row.decode("flag", as: String.self)] = try row.decode("n", as: Int.self) }
            let summary = try connection.query("SELECT count(*) AS n, min(flagged_at) AS oldest FROM review_queue WHERE state IN ('open', 'escalated')").first
            var decisions: [String: [String: Int]] = [:]
            for row in try connection.query("SELECT reviewer, decision, count(*) AS n FROM review_decisions GROUP BY reviewer, decision") {
                decisions[try row.decode("reviewer", as: String.self), default: [:]][try row.decode("decision", as: String.self)] = try row.decode("n", as: Int.self)
            }
            return Statistics(waitingByFlag: byFlag, waiting: try summary?.decode("n", as: Int.self) ?? 0,
                              oldestWaitingSince: try summary?.decodeIfPresent("oldest", as: Date.self), decisions: decisions)
        }
    }

    /// One item with both sides of the correction, for a reviewer to read.
    public struct Detail: Sendable {
        public var listing: Listing
        public var correction: Correction
        public var userId: String
        public var history: [(decision: String, reviewer: String, reason: String?, at: Date)]
    }

    /// (A transaction: an archived correction's content is restored to be shown.)
    public func detail(_ feedbackId: String) async throws -> Detail? {
        try await pool.transaction { connection in
            guard let row = try connection.query("""
                SELECT r.feedback_id::text AS id, r.state, r.flags, r.reasons, f.modality, f.correction_type, f.model, f.model_version,
                       coalesce(f.quality, 0)::float8 AS quality, r.flagged_at, f.user_id
                FROM review_queue r JOIN feedback f USING (feedback_id) WHERE r.feedback_id = $1::uuid
                """, [feedbackId]).first else { return nil }
            let listing = Listing(feedbackId: try row.decode("id", as: String.self), state: try row.decode("state", as: String.self),
                                  flags: try row.decode("flags", as: [String].self), reasons: try row.decode("reasons", as: [String].self), modality: try row.decode("modality", as: String.self),
                                  correctionType: try row.decode("correction_type", as: String.self), model: try row.decode("model", as: String.self),
                                  modelVersion: try row.decode("model_version", as: String.self), quality: try row.decode("quality", as: Double.self),
                                  flaggedAt: try row.decode("flagged_at", as: Date.self))
            let history = try connection.query("""
                SELECT decision, reviewer, reason, decided_at FROM review_decisions WHERE feedback_id = $1::uuid ORDER BY decided_at, id
                """, [feedbackId]).map { row in
                (try row.decode("decision", as: String.self), try row.decode("reviewer", as: String.self),
                 try row.decodeIfPresent("reason", as: String.self), try row.decode("decided_at", as: Date.self))
            }
            return Detail(listing: listing, correction: try Self.correction(feedbackId, connection),
                          userId: try row.decode("user_id", as: String.self), history: history)
        }
    }

    /// A contributor at a glance: corrections by status, flags, and the reviewers' record.
    public struct Contributor: Sendable, Equatable {
        public var byStatus: [String: Int]
        public var flags: [String: Int]
        public var record: ContributorRecord
    }

    public func contributor(_ user: String) async throws -> Contributor {
        try await pool.withConnection { connection in
            var byStatus: [String: Int] = [:]
            for row in try connection.query("SELECT status, count(*) AS n FROM feedback WHERE user_id = $1 GROUP BY status", [user]) {
                byStatus[try row.decode("status", as: String.self)] = try row.decode("n", as: Int.self)
            }
            var flags: [String: Int] = [:]
            for row in try connection.query("SELECT flag, count(*) AS n FROM feedback, unnest(flags) AS flag WHERE user_id = $1 GROUP BY flag", [user]) {
                flags[try row.decode("flag", as: String.self)] = try row.decode("n", as: Int.self)
            }
            return Contributor(byStatus: byStatus, flags: flags, record: try Self.record(user, connection))
        }
    }

    /// Records changed after `since` (all when `nil`), with the latest change seen.
    public func records(changedAfter since: Date?) async throws -> (records: [String: ContributorRecord], latest: Date?) {
        try await pool.withConnection { connection in
            var records: [String: ContributorRecord] = [:]
            var latest = since
            for row in try connection.query("""
                SELECT user_id, approvals, rejections, updated_at FROM contributor_reputation
                WHERE $1::timestamptz IS NULL OR updated_at > $1 ORDER BY updated_at
                """, [since]) {
                records[try row.decode("user_id", as: String.self)] = ContributorRecord(
                    approvals: try row.decode("approvals", as: Int.self), rejections: try row.decode("rejections", as: Int.self))
                latest = try row.decode("updated_at", as: Date.self)
            }
            return (records, latest)
        }
    }

    /// The reviewers' record of a contributor.
    public func record(of user: String) async throws -> ContributorRecord {
        try await pool.withConnection { try Self.record(user, $0) }
    }

    static func record(_ user: String, _ connection: PostgresConnection) throws -> ContributorRecord {
        guard let row = try connection.query("SELECT approvals, rejections FROM contributor_reputation WHERE user_id = $1", [user]).first else {
            return ContributorRecord()
        }
        return ContributorRecord(approvals: try row.decode("approvals", as: Int.self), rejections: try row.decode("rejections", as: Int.self))
    }

    static func count(_ user: String, approvals: Int, rejections: Int, _ connection: PostgresConnection) throws {
        try connection.query("""
            INSERT INTO contributor_reputation (user_id, approvals, rejections) VALUES ($1, $2, $3)
            ON CONFLICT (user_id) DO UPDATE SET approvals = contributor_reputation.approvals + $2,
                rejections = contributor_reputation.rejections + $3, updated_at = now()
            """, [user, approvals, rejections])
    }

    /// The stored correction, rebuilt from its row and validated again (as of its own time).
    /// `restoringArchived`: false when the caller restored the content already.
    static func correction(_ feedbackId: String, restoringArchived: Bool = true, _ connection: PostgresConnection) throws -> Correction {
        // An archived correction's content comes back first (a decision changed long after).
        if restoringArchived { try RetentionStore.restore(feedback: [feedbackId], connection) }
        guard let row = try connection.query("""
            SELECT feedback_id::text AS id, user_id, modality, correction_type, comic_id, scene_id, panel_id, character_id,
                   generation_id, model, model_version, experiment_id, experiment_arm, prompt, original::text AS original,
                   corrected::text AS corrected, occurred_at, edit_duration_ms, client_app, client_version
            FROM feedback WHERE feedback_id = $1::uuid
            """, [feedbackId]).first else { throw PostgresError(.decoding, message: "feedback \(feedbackId) is gone") }
        func text(_ column: String) throws -> JSONValue? { try row.decodeIfPresent(column, as: String.self).map(JSONValue.string) }
        func json(_ column: String) throws -> JSONValue {
            var parser = JSONParser(bytes: Array(try row.decode(column, as: String.self).utf8))
            return try parser.parse()
        }
        let occurredAt = try row.decode("occurred_at", as: Date.self)
        let experiment: JSONValue? = try text("experiment_id").map { id in .object([("id", id), ("arm", try text("experiment_arm") ?? .null)]) }
        let client: JSONValue? = try text("client_app").map { app in .object([("app", app), ("version", try text("client_version") ?? .null)]) }
        let document = JSONValue.object([
            "schema": .string(Correction.schemaName), "feedbackId": try text("id"), "userId": try text("user_id"),
            "modality": try text("modality"), "correctionType": try text("correction_type"),
            "occurredAt": .string(RFC3339.format(occurredAt)),
            "target": JSONValue.object(["comicId": try text("comic_id"), "sceneId": try text("scene_id"), "panelId": try text("panel_id"),
                                        "characterId": try text("character_id")]),
            "generation": JSONValue.object(["id": try text("generation_id"), "model": try text("model"), "modelVersion": try text("model_version"),
                                            "prompt": try text("prompt"), "experiment": experiment]),
            "original": try json("original"), "corrected": try json("corrected"),
            "editDurationMs": try row.decodeIfPresent("edit_duration_ms", as: Int.self).map { .number(Double($0)) },
            "client": client,
        ])
        var validator = CorrectionValidator()
        validator.maxAge = .greatestFiniteMagnitude
        let modality = try row.decode("modality", as: String.self), user = try row.decode("user_id", as: String.self)
        switch validator.validate(document.serialized(), topicModality: modality, topicUserId: user, now: occurredAt.addingTimeInterval(1)) {
        case .valid(let correction): return correction
        case .invalid(let issues): throw PostgresError(.decoding, message: "stored feedback \(feedbackId) no longer validates: \(issues.first.map(String.init(describing:)) ?? "")")
        }
    }
}
