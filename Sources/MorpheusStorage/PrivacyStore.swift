import Foundation
import MorpheusCore
import Postgres

/// A privacy request with who asked for it, as applied by ``PrivacyStore``.
public struct PrivacyWork: Sendable {
    public var request: PrivacyRequest
    /// `user` (over MQTT) or `operator:<name>` (the CLI).
    public var requestedBy: String
    public var reason: String?
    /// The user's keyed pseudonym: the audit log's subject.
    public var subject: String
    /// Where retraction events go (`training/{modality}`).
    public var topics: ContractTopics
    /// Builds a training example and its event from a (scrubbed) correction: `anonymize`
    /// rebuilds the user's examples with it.
    public var rebuild: ReviewStore.Approval?

    public init(request: PrivacyRequest, requestedBy: String, reason: String? = nil, subject: String,
                topics: ContractTopics = ContractTopics(prefix: "morpheus/v1"), rebuild: ReviewStore.Approval? = nil) {
        self.request = request
        self.requestedBy = requestedBy
        self.reason = reason
        self.subject = subject
        self.topics = topics
        self.rebuild = rebuild
    }
}

/// What applying a privacy request came to.
public enum PrivacyResult: Sendable, Equatable {
    /// Applied now, or earlier under the same id (a replay gets the first answer's counts).
    case applied(counts: [String: Int], settings: PrivacySettings, appliedAt: Date)
    /// The request id is stored with a different request.
    case conflict
}

/// Privacy settings and requests in PostgreSQL (`docs/privacy.md`).
///
/// Requests and correction batches take the same per-user advisory lock inside their
/// transactions, so for any user they are applied one after the other in commit order, across
/// instances: a correction whose batch commits after an opt-out is refused.
public struct PrivacyStore: Sendable {
    public let pool: PostgresPool

    public init(pool: PostgresPool) {
        self.pool = pool
    }

    /// Applies one request in a transaction of its own (the CLI's path; the service applies
    /// requests inside its batch transactions with the same code).
    public func apply(_ work: PrivacyWork) async throws -> PrivacyResult {
        try await pool.transaction { connection in
            try Self.lock(users: [work.request.userId], connection)
            return try Self.apply(work, connection)
        }
    }

    /// The user's current settings (defaults for a user never seen).
    public func settings(of user: String) async throws -> PrivacySettings {
        try await pool.withConnection { try Self.settings(of: user, $0) }
    }

    /// Transaction-scoped advisory locks on users, in key order (no deadlock between batches).
    static func lock(users: [String], _ connection: PostgresConnection) throws {
        guard !users.isEmpty else { return }
        try connection.query(lockSQL, [users], prepared: true)
    }

    static let lockSQL = """
        SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT hashtextextended('morpheus/user/' || u, 0) AS k FROM unnest($1::text[]) AS u) keys ORDER BY k
        """

    static let restrictionsSQL = "SELECT user_id, opted_out, anonymized FROM privacy_settings WHERE (opted_out OR anonymized) AND user_id = ANY($1::text[])"

    /// Which of `users` have opted out (run after their locks).
    static func optedOut(_ users: [String], _ connection: PostgresConnection) throws -> Set<String> {
        try restrictions(users, connection).optedOut
    }

    /// Which of `users` have opted out, and which asked to be anonymized (run after their locks).
    static func restrictions(_ users: [String], _ connection: PostgresConnection) throws -> (optedOut: Set<String>, anonymized: Set<String>) {
        guard !users.isEmpty else { return ([], []) }
        return try restrictions(from: connection.query(restrictionsSQL, [users], prepared: true))
    }

    static func restrictions(from rows: PostgresRows) throws -> (optedOut: Set<String>, anonymized: Set<String>) {
        var optedOut = Set<String>(), anonymized = Set<String>()
        for row in rows {
            let user = try row.decode("user_id", as: String.self)
            if try row.decode("opted_out", as: Bool.self) { optedOut.insert(user) }
            if try row.decode("anonymized", as: Bool.self) { anonymized.insert(user) }
        }
        return (optedOut, anonymized)
    }

    /// Counts refused messages per user; nothing else of them is kept.
    static func countRefused(_ counts: [String: Int], _ connection: PostgresConnection) throws {
        guard !counts.isEmpty else { return }
        let users = Array(counts.keys)
        try connection.query("""
            UPDATE privacy_settings s SET refused = s.refused + r.n FROM unnest($1::text[], $2::text[]::int8[]) AS r (user_id, n) WHERE s.user_id = r.user_id
            """, [users, users.map { String(counts[$0]!) }])
    }

    static func settings(of user: String, _ connection: PostgresConnection) throws -> PrivacySettings {
        guard let row = try connection.query(
            "SELECT opted_out, anonymized, refused, updated_at FROM privacy_settings WHERE user_id = $1", [user]
        ).first else { return PrivacySettings() }
        return PrivacySettings(optedOut: try row.decode("opted_out", as: Bool.self), anonymized: try row.decode("anonymized", as: Bool.self),
                               refused: try row.decode("refused", as: Int.self), updatedAt: try row.decode("updated_at", as: Date.self))
    }

    /// Applies a request under its user's lock, inside the caller's transaction.
    static func apply(_ work: PrivacyWork, _ connection: PostgresConnection) throws -> PrivacyResult {
        let request = work.request
        if let row = try connection.query(
            "SELECT payload_hash, counts::text AS counts, applied_at FROM privacy_requests WHERE request_id = $1::uuid", [request.requestId]
        ).first {
            // A replay: the first answer again, nothing applied twice.
            guard try row.decode("payload_hash", as: String.self) == request.payloadHash else { return .conflict }
            return .applied(counts: try Self.counts(row.decode("counts", as: String.self)), settings: try settings(of: request.userId, connection),
                            appliedAt: try row.decode("applied_at", as: Date.self))
        }
        var counts: [String: Int] = [:]
        switch request.action {
        case .optOut:
            // refused restarts with each opt-out.
            counts["settings"] = try connection.query("""
                INSERT INTO privacy_settings (user_id, opted_out, refused) VALUES ($1, true, 0)
                ON CONFLICT (user_id) DO UPDATE SET opted_out = true, refused = 0, updated_at = now() WHERE NOT privacy_settings.opted_out
                RETURNING 1
                """, [request.userId]).count
            // Stored corrections stay (erase removes them) but leave every dataset built from now on.
            counts["storedCorrections"] = try connection.query("SELECT count(*) AS n FROM feedback WHERE user_id = $1", [request.userId])
                .first?.decode("n", as: Int.self) ?? 0
        case .optIn:
            counts["settings"] = try connection.query("""
                UPDATE privacy_settings SET opted_out = false, updated_at = now() WHERE user_id = $1 AND opted_out RETURNING 1
                """, [request.userId]).count
        case .status:
            break
        case .erase:
            counts = try erase(request.userId, topics: work.topics, connection)
        case .anonymize:
            counts = try anonymize(request.userId, as: work.subject, rebuild: work.rebuild, connection)
        case .identify:
            counts["settings"] = try connection.query("""
                UPDATE privacy_settings SET anonymized = false, updated_at = now() WHERE user_id = $1 AND anonymized RETURNING 1
                """, [request.userId]).count
        }
        let applied = try connection.query("""
            INSERT INTO privacy_requests (request_id, subject, action, requested_by, reason, payload_hash, counts)
            VALUES ($1::uuid, $2, $3, $4, $5, $6, $7::jsonb) RETURNING applied_at
            """, [request.requestId, work.subject, request.action.rawValue, work.requestedBy, work.reason, request.payloadHash,
                  JSONValue.object(counts.sorted { $0.key < $1.key }.map { ($0.key, .number(Double($0.value))) }).serializedString])
            .first?.decode("applied_at", as: Date.self) ?? Date()
        return .applied(counts: counts, settings: try settings(of: request.userId, connection), appliedAt: applied)
    }

    static func counts(_ json: String) throws -> [String: Int] {
        var parser = JSONParser(bytes: Array(json.utf8))
        guard case .object(let members) = try parser.parse() else { return [:] }
        var counts: [String: Int] = [:]
        for (key, value) in members {
            if case .number(let number) = value { counts[key] = Int(number) }
        }
        return counts
    }

    /// Deletes everything stored of `user` (`docs/privacy.md`): corrections with their training
    /// examples, review items and decisions; outcomes; the reviewers' record; dead letters of
    /// the user's topics; unpublished outbox events about the user's corrections. Publishes a
    /// `morpheus.training-retraction/1` per modality for the examples trainers may hold. An
    /// opt-out stays (the row keeps only the choice). Returns the counts for the erasure log.
    static func erase(_ user: String, topics: ContractTopics, _ connection: PostgresConnection) throws -> [String: Int] {
        var counts: [String: Int] = [:]
        let feedback = try connection.query("SELECT feedback_id::text AS id FROM feedback WHERE user_id = $1", [user])
            .map { try $0.decode("id", as: String.self) }
        // The archives holding the user's content; their lines go once the rows are gone.
        let archives = try RetentionStore.archives(of: feedback, connection)
        counts["archivedCorrections"] = archives.archived
        var examplesByModality: [String: [String]] = [:]
        for row in try connection.query("""
            SELECT t.example_id::text AS example_id, t.modality FROM training_examples t JOIN feedback f USING (feedback_id)
            WHERE f.user_id = $1 ORDER BY t.example_id
            """, [user]) {
            examplesByModality[try row.decode("modality", as: String.self), default: []].append(try row.decode("example_id", as: String.self))
        }
        func count(_ sql: String) throws -> Int { try connection.query(sql, [user]).first?.decode(0, as: Int.self) ?? 0 }
        counts["trainingExamples"] = examplesByModality.values.reduce(0) { $0 + $1.count }
        counts["reviewItems"] = try count("SELECT count(*) FROM review_queue r JOIN feedback f USING (feedback_id) WHERE f.user_id = $1")
        counts["reviewDecisions"] = try count("SELECT count(*) FROM review_decisions d JOIN feedback f USING (feedback_id) WHERE f.user_id = $1")
        // Versions built with the user's examples hold them in their files: marked for rebuild.
        counts["datasetVersions"] = try connection.query("""
            UPDATE training_datasets SET status = 'needs_rebuild'
            WHERE id IN (SELECT dataset_id FROM dataset_examples WHERE feedback_id = ANY($1::uuid[])) RETURNING 1
            """, [PostgresUUIDArray(feedback)]).count
        try connection.query("DELETE FROM dataset_examples WHERE feedback_id = ANY($1::uuid[])", [PostgresUUIDArray(feedback)])
        // Training examples, review items and their decisions go with their correction (ON DELETE CASCADE).
        counts["corrections"] = try connection.query("DELETE FROM feedback WHERE user_id = $1 RETURNING 1", [user]).count
        try RetentionStore.removeLines(of: feedback, from: archives.ids, connection)
        counts["outcomes"] = try connection.query("DELETE FROM outcomes WHERE user_id = $1 RETURNING 1", [user]).count
        counts["reputation"] = try connection.query("DELETE FROM contributor_reputation WHERE user_id = $1 RETURNING 1", [user]).count
        // Topics end in /{userId} (user ids have no '/').
        counts["deadLetters"] = try connection.query("""
            DELETE FROM dead_letters WHERE right(topic, length($1) + 1) = '/' || $1 RETURNING 1
            """, [user]).count
        counts["outboxEvents"] = try dropUnpublished(feedback: Set(feedback), user: user, onlyWithText: false, connection)
        try connection.query("DELETE FROM privacy_settings WHERE user_id = $1 AND NOT opted_out", [user])
        // Trainers that hold copies drop them.
        var retractions: [OutboxEvent] = []
        for (modality, ids) in examplesByModality.sorted(by: { $0.key < $1.key }) {
            retractions.append(OutboxEvent(topic: "\(topics.prefix)/training/\(modality)", json: .object([
                ("schema", .string("morpheus.training-retraction/1")), ("modality", .string(modality)), ("exampleIds", .array(ids.map(JSONValue.string))),
                ("reason", .string("erasure")), ("retractedAt", .string(RFC3339.format(Date()))),
            ])))
        }
        if !retractions.isEmpty {
            try connection.query("INSERT INTO outbox_batches (events, event_count, feedback_ids) VALUES ($1, $2, '{}')",
                                 [PostgresBytes(OutboxFraming.encode(retractions)), Int32(retractions.count)])
        }
        counts["retractionEvents"] = retractions.count
        return counts
    }

    /// Removes the events about `feedback`, and dead-letter events of `user`'s topics, from
    /// outbox rows not yet published; returns how many. `onlyWithText`: only those that carry
    /// the user's text (training examples and dead letters; review items carry none).
    static func dropUnpublished(feedback: Set<String>, user: String, onlyWithText: Bool, _ connection: PostgresConnection) throws -> Int {
        var dropped = 0
        let suffix = "/" + user
        for row in try connection.query("""
            SELECT id, events FROM outbox_batches
            WHERE feedback_ids && $1::uuid[] OR position(convert_to($2, 'UTF8') in events) > 0 FOR UPDATE
            """, [PostgresUUIDArray(feedback), suffix]) {
            let id = try row.decode("id", as: Int.self)
            let events = try OutboxFraming.decode(try row.decode("events", as: PostgresBytes.self).bytes)
            let kept = events.filter { event in
                var parser = JSONParser(bytes: event.payload)
                let document = try? parser.parse()
                if case .string(let about)? = document?["feedbackId"], feedback.contains(about) {
                    if case .string(let schema)? = document?["schema"], onlyWithText, schema == ReviewItem.schemaName { return true }
                    return false
                }
                if case .string(DeadLetter.schemaName)? = document?["schema"], case .string(let topic)? = document?["topic"], topic.hasSuffix(suffix) {
                    return false
                }
                return true
            }
            guard kept.count < events.count else { continue }
            dropped += events.count - kept.count
            if kept.isEmpty {
                try connection.query("DELETE FROM outbox_batches WHERE id = $1", [id])
            } else {
                try connection.query("""
                    UPDATE outbox_batches SET events = $2, event_count = $3,
                        feedback_ids = ARRAY(SELECT unnest(feedback_ids) EXCEPT SELECT unnest($4::uuid[])) WHERE id = $1
                    """, [id, PostgresBytes(OutboxFraming.encode(kept)), Int32(kept.count), PostgresUUIDArray(feedback)])
            }
        }
        return dropped
    }

    /// Rewrites everything stored of `user` under `pseudonym` with personal data scrubbed from
    /// their free text (`docs/privacy.md`), rebuilds their training examples from the scrubbed
    /// text (published again under the same exampleId), and marks the user anonymized so that
    /// future feedback is stored the same way at capture.
    static func anonymize(_ user: String, as pseudonym: String, rebuild: ReviewStore.Approval?, _ connection: PostgresConnection) throws -> [String: Int] {
        var counts: [String: Int] = [:]
        try connection.query("""
            INSERT INTO privacy_settings (user_id, anonymized) VALUES ($1, true)
            ON CONFLICT (user_id) DO UPDATE SET anonymized = true, updated_at = now()
            """, [user])
        let ids = try connection.query("SELECT feedback_id::text AS id FROM feedback WHERE user_id = $1 ORDER BY feedback_id", [user])
            .map { try $0.decode("id", as: String.self) }
        // Archived content is scrubbed too: back into the hot rows, rewritten there (a later
        // retention run archives it again).
        counts["archivedCorrections"] = try RetentionStore.restore(feedback: ids, connection)
        var rebuilt: [OutboxEvent] = []
        for id in ids {
            let clean = try ReviewStore.correction(id, restoringArchived: false, connection).anonymized(as: pseudonym)
            let quality = try connection.query("""
                UPDATE feedback SET user_id = $2, corrected = $3::jsonb, content_key = decode($4, 'hex') WHERE feedback_id = $1::uuid
                RETURNING coalesce(quality, 0)::float8 AS quality
                """, [id, pseudonym, clean.correctedJSON.serializedString, HistoryRules.contentKey(clean)]).first?.decode("quality", as: Double.self) ?? 0
            guard let rebuild, try connection.query("SELECT 1 FROM training_examples WHERE feedback_id = $1::uuid", [id]).count == 1 else { continue }
            let (example, event) = rebuild(clean, quality)
            try connection.query("UPDATE training_examples SET body = $2::json, formats = $3 WHERE feedback_id = $1::uuid",
                                 [id, String(decoding: example.json, as: UTF8.self), Int32(example.formats)])
            rebuilt.append(event)
        }
        counts["corrections"] = ids.count
        counts["trainingExamples"] = rebuilt.count
        counts["outcomes"] = try connection.query("UPDATE outcomes SET user_id = $2 WHERE user_id = $1 RETURNING 1", [user, pseudonym]).count
        counts["reputation"] = try connection.query("""
            WITH old AS (DELETE FROM contributor_reputation WHERE user_id = $1 RETURNING approvals, rejections)
            INSERT INTO contributor_reputation (user_id, approvals, rejections) SELECT $2, approvals, rejections FROM old
            ON CONFLICT (user_id) DO UPDATE SET approvals = contributor_reputation.approvals + EXCLUDED.approvals,
                rejections = contributor_reputation.rejections + EXCLUDED.rejections, updated_at = now()
            RETURNING 1
            """, [user, pseudonym]).count
        // What could not be answered keeps the raw payload: it goes.
        counts["deadLetters"] = try connection.query("DELETE FROM dead_letters WHERE right(topic, length($1) + 1) = '/' || $1 RETURNING 1", [user]).count
        counts["outboxEvents"] = try dropUnpublished(feedback: Set(ids), user: user, onlyWithText: true, connection)
        if !rebuilt.isEmpty {
            try connection.query("INSERT INTO outbox_batches (events, event_count, feedback_ids) VALUES ($1, $2, $3::uuid[])",
                                 [PostgresBytes(OutboxFraming.encode(rebuilt)), Int32(rebuilt.count), PostgresUUIDArray(ids)])
        }
        return counts
    }
}
