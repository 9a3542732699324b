import Foundation
import MorpheusCore
import Postgres

/// A training example, serialized once: stored as jsonb and published as these bytes.
public struct SerializedExample: Sendable, Equatable {
    public var exampleId: String
    public var json: [UInt8]
    /// The formats it has (``DatasetRequest/Format/bit``), stored beside it for dataset builds.
    public var formats: Int16

    public init(exampleId: String, json: [UInt8], formats: Int16 = 0) {
        self.exampleId = exampleId
        self.json = json
        self.formats = formats
    }

    /// What ``TrainingTransform/serializedExample(for:quality:contributor:createdAt:)`` wrote.
    public init(_ written: (exampleId: String, json: [UInt8], formats: Int16)) {
        self.init(exampleId: written.exampleId, json: written.json, formats: written.formats)
    }
}

/// A validated correction with everything decided about it before it is stored.
public struct Submission: Sendable {
    public var correction: Correction
    public var receivedAt: Date
    /// `.accepted` or `.flagged`.
    public var status: Receipt.Status
    public var flags: [String]
    /// Why it went to expert review without a flag (``ReviewReason`` codes).
    public var reasons: [String]
    public var quality: Double
    /// The training example (accepted) to store.
    public var trainingExample: SerializedExample?
    /// Events to publish once committed.
    public var events: [OutboxEvent]
    /// ``HistoryRules/contentKey(_:)`` of the correction, computed once.
    public let contentKey: String?

    public init(correction: Correction, receivedAt: Date, status: Receipt.Status, flags: [String] = [], reasons: [String] = [],
                quality: Double, trainingExample: SerializedExample?, events: [OutboxEvent]) {
        self.correction = correction
        self.receivedAt = receivedAt
        self.status = status
        self.flags = flags
        self.reasons = reasons
        self.quality = quality
        self.trainingExample = trainingExample
        self.events = events
        contentKey = HistoryRules.contentKey(correction)
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
    /// The user had opted out when the batch committed: nothing of it was stored.
    case optedOut
}

/// What storing one batch came to.
public struct StoredBatch: Sendable {
    /// One result per submission, in order.
    public var corrections: [StoreResult]
    /// One result per outcome, in order.
    public var outcomes: [StoreResult]
    /// The events committed with the batch, to publish now; `nil` when there are none.
    public var outbox: OutboxBatch?
    /// Dead letters stored for the first time (a redelivered message is counted, not stored again).
    public var deadLettered = 0
    /// The submissions as stored: those the history rules held for review carry their flags.
    public var submissions: [Submission] = []
    /// One result per privacy request, in order.
    public var privacy: [PrivacyResult] = []
}

/// How the feedback of a user who asked to be anonymized is stored at capture: under the
/// keyed pseudonym, personal data scrubbed, the training example rebuilt (the ingest supplies
/// it, since it owns the pseudonymizer and the training transform).
public struct CaptureAnonymizer: Sendable {
    public var pseudonym: @Sendable (String) -> String
    public var submission: @Sendable (Submission) -> Submission

    public init(pseudonym: @escaping @Sendable (String) -> String, submission: @escaping @Sendable (Submission) -> Submission) {
        self.pseudonym = pseudonym
        self.submission = submission
    }
}

/// How the history rules judge a batch inside its transaction: the expert-review policy (what
/// to read from PostgreSQL) and how a submission they hold is turned into one held for review
/// with their flags (`burst`, `repeated_content`) and reasons added; the ingest supplies it,
/// since it owns topics and events.
public struct HistoryJudge: Sendable {
    public typealias Hold = @Sendable (Submission, _ flags: [String], _ reasons: [String]) -> Submission
    public var policy: ExpertReviewPolicy
    public var hold: Hold

    public init(policy: ExpertReviewPolicy = ExpertReviewPolicy(), hold: @escaping Hold) {
        self.policy = policy
        self.hold = hold
    }
}

/// Stores batches of corrections in one transaction each (group commit).
///
/// Uniqueness is enforced by the database (primary key on feedback_id, unique content key), so
/// concurrent instances and redeliveries can never store a correction twice. Derived rows
/// (training example or review item) and the batch's outbox row are written in the same
/// transaction. Each table gets one statement per batch (`INSERT … SELECT FROM unnest(…)` over
/// one binary array per column), whatever the batch size.
public struct FeedbackStore: Sendable {
    public let pool: PostgresPool
    /// Who claims outbox rows (the instance id), for operators reading the table.
    public let owner: String
    /// How long a claim on an outbox row keeps other instances from publishing it.
    public let outboxLease: Duration

    public init(pool: PostgresPool, owner: String = "morpheus", outboxLease: Duration = .seconds(30)) {
        self.pool = pool
        self.owner = owner
        self.outboxLease = outboxLease
    }

    /// Stores `submissions` (and `deadLetters`, each with the topic its event goes to) and
    /// returns one result per submission, in order. Throws when the transaction failed; then
    /// nothing of the batch was stored.
    public func store(_ submissions: [Submission], deadLetters: [(letter: DeadLetter, eventTopic: String)] = []) async throws -> [StoreResult] {
        try await store(submissions, outcomes: [], deadLetters: deadLetters).corrections
    }

    /// Applies the history rules to a batch inside its transaction, under the batch's per-user
    /// locks (``PrivacyStore/lock(users:_:)``): reads the users' recent
    /// and same-content corrections (and, when the expert-review policy asks, how many
    /// corrections they have and who saw the batch's generations), and judges the batch in
    /// `occurredAt` order against them and its own earlier members.
    static func applyHistory(_ submissions: [Submission], _ connection: PostgresConnection, judge: HistoryJudge) throws -> [Submission] {
        try Self.judge(submissions, connection.pipeline(historyStatements(submissions, policy: judge.policy), prepared: true), judge: judge)
    }

    /// The reads of the history rules, in the order ``judge(_:_:judge:)`` takes their rows:
    /// the users' recent and same-content corrections, then (when the expert-review policy
    /// asks) how many corrections they have, then who saw the batch's generations.
    static func historyStatements(_ submissions: [Submission], policy: ExpertReviewPolicy) -> [(sql: String, parameters: [any PostgresEncodable])] {
        let corrections = submissions.map(\.correction)
        let users = Array(Set(corrections.map(\.userId)))
        let ids = PostgresUUIDArray(corrections.map(\.feedbackId))
        let earliest = corrections.map(\.occurredAt).min()!.addingTimeInterval(-HistoryRules.burstWindow)
        let latest = corrections.map(\.occurredAt).max()!
        // The repeated-content rule looks at the user's own rows: (user, content) pairs.
        var pairUsers: [String] = [], pairContents: [String] = []
        for submission in submissions {
            guard let content = submission.contentKey else { continue }
            pairUsers.append(submission.correction.userId)
            pairContents.append(content)
        }
        // Two index scans, so that the read costs what the rules need, not the users' whole
        // history: the burst window's rows through (user_id, occurred_at), and the earlier rows
        // with the same content through (user_id, content_key). One scan with `occurred_at > $3
        // OR content_key = …` read every row of a user up to the batch (35 ms per batch with a
        // contributor of 20,000 corrections). The fence (OFFSET 0) keeps the time condition out
        // of the second scan: with it the generic plan probed (user_id, occurred_at) instead.
        var statements: [(sql: String, parameters: [any PostgresEncodable])] = [("""
            SELECT user_id, occurred_at, target_key, encode(content_key, 'hex') AS content_key FROM feedback
            WHERE user_id = ANY($1::text[]) AND occurred_at > $3 AND occurred_at <= $4 AND feedback_id <> ALL($2::uuid[])
            UNION ALL
            SELECT user_id, occurred_at, target_key, encode(content_key, 'hex') FROM (
                SELECT f.user_id, f.occurred_at, f.target_key, f.content_key, f.feedback_id
                FROM (SELECT DISTINCT * FROM unnest($5::text[], $6::text[]) AS u (user_id, content_key)) AS k
                JOIN feedback f ON f.user_id = k.user_id AND f.content_key = decode(k.content_key, 'hex') AND f.content_key IS NOT NULL
                OFFSET 0) c
            WHERE occurred_at <= $3 AND feedback_id <> ALL($2::uuid[])
            """, [users, ids, earliest, latest, pairUsers, pairContents])]
        if policy.firstCorrections > 0 {
            // Counted only up to the limit: an established contributor costs one index probe.
            statements.append(("""
                SELECT u AS user_id, (SELECT count(*) FROM (SELECT 1 FROM feedback WHERE user_id = u AND feedback_id <> ALL($2::uuid[]) LIMIT $3) s) AS n
                FROM unnest($1::text[]) AS u
                """, [users, ids, Int32(policy.firstCorrections)]))
        }
        if policy.audience > 0 {
            statements.append(("""
                SELECT g AS generation_id, s.user_id FROM unnest($1::text[]) AS g, LATERAL (
                    SELECT user_id FROM feedback WHERE generation_id = g AND feedback_id <> ALL($2::uuid[])
                    UNION SELECT user_id FROM outcomes WHERE generation_id = g LIMIT $3) s
                """, [Array(Set(corrections.map(\.generation.id))), ids, Int32(policy.audience)]))
        }
        return statements
    }

    /// Judges the batch in `occurredAt` order against the rows of ``historyStatements(_:policy:)``
    /// and its own earlier members.
    static func judge(_ submissions: [Submission], _ results: [PostgresRows], judge: HistoryJudge) throws -> [Submission] {
        let corrections = submissions.map(\.correction)
        let stored = try results[0].map { row in
            HistoryEntry(userId: try row.decode("user_id", as: String.self), occurredAt: try row.decode("occurred_at", as: Date.self),
                         target: try row.decodeIfPresent("target_key", as: String.self) ?? "",
                         content: try row.decodeIfPresent("content_key", as: String.self))
        }
        let policy = judge.policy
        var next = 1
        var counts: [String: Int] = [:]
        if policy.firstCorrections > 0 {
            for row in results[next] { counts[try row.decode("user_id", as: String.self)] = try row.decode("n", as: Int.self) }
            next += 1
        }
        var viewers: [String: Set<String>] = [:]
        if policy.audience > 0 {
            for row in results[next] {
                viewers[try row.decode("generation_id", as: String.self), default: []].insert(try row.decode("user_id", as: String.self))
            }
        }
        var history = InMemoryHistory(stored: stored, counts: counts, viewers: viewers)
        var judged = submissions
        for index in submissions.indices.sorted(by: { (corrections[$0].occurredAt, $0) < (corrections[$1].occurredAt, $1) }) {
            let flags = HistoryRules.flags(corrections[index], contentKey: submissions[index].contentKey, history: history)
            let reasons = policy.needsHistory ? policy.reasons(corrections[index], history: history) : []
            if !flags.isEmpty || !reasons.isEmpty {
                judged[index] = judge.hold(judged[index], flags.sorted().map(\.rawValue), reasons.sorted().map(\.rawValue))
            }
            history.record(HistoryEntry(corrections[index], contentKey: .some(submissions[index].contentKey)))
        }
        return judged
    }

    /// Stores corrections, outcomes, dead letters and privacy requests of one batch in one
    /// transaction. The batch's users are locked first (advisory locks in key order); privacy
    /// requests are applied next, so a correction of a user who opted out in the same or an
    /// earlier commit is refused with nothing of it stored (not even as a dead letter), only
    /// counted. With `judge`, the history rules judge the rest inside the transaction (see
    /// ``applyHistory(_:_:judge:)``); without it only the verdict the submissions carry counts.
    public func store(
        _ submissions: [Submission], outcomes: [(outcome: Outcome, receivedAt: Date)],
        deadLetters: [(letter: DeadLetter, eventTopic: String)], judge: HistoryJudge? = nil, privacy: [PrivacyWork] = [],
        anonymizer: CaptureAnonymizer? = nil
    ) async throws -> StoredBatch {
        guard !submissions.isEmpty || !outcomes.isEmpty || !deadLetters.isEmpty || !privacy.isEmpty else {
            return StoredBatch(corrections: [], outcomes: [], outbox: nil)
        }
        // Parameters are built before the transaction, so the connection is held only for I/O;
        // rebuilt inside only when the history rules changed a verdict or a user opted out.
        let prebuiltRows = submissions.isEmpty ? nil : try Self.feedbackRows(submissions)
        let allSubmissions = submissions, allOutcomes = outcomes
        return try await pool.transaction { connection in
            let users = Set(allSubmissions.map(\.correction.userId)).union(allOutcomes.map(\.outcome.userId))
                .union(privacy.map(\.request.userId)).union(deadLetters.compactMap(\.letter.userId)).sorted()
            let privacyResults: [PrivacyResult]
            let optedOut: Set<String>, anonymized: Set<String>
            // The history rules' reads go out with the locks (in the same round trip, after
            // them); they are used when the batch holds no opted-out or anonymized user, whose
            // corrections change or leave the batch first.
            var prefetchedHistory: [PostgresRows]?
            if privacy.isEmpty {
                let history = judge.flatMap { allSubmissions.isEmpty ? nil : Self.historyStatements(allSubmissions, policy: $0.policy) } ?? []
                if users.isEmpty {
                    (optedOut, anonymized) = ([], [])
                } else {
                    let replies = try connection.pipeline(
                        [(PrivacyStore.lockSQL, [users]), (PrivacyStore.restrictionsSQL, [users])] + history, prepared: true)
                    (optedOut, anonymized) = try PrivacyStore.restrictions(from: replies[1])
                    if !history.isEmpty { prefetchedHistory = Array(replies[2...]) }
                }
                privacyResults = []
            } else {
                try PrivacyStore.lock(users: users, connection)
                privacyResults = try privacy.map { try PrivacyStore.apply($0, connection) }
                (optedOut, anonymized) = try PrivacyStore.restrictions(users, connection)
            }
            // Refused for an opt-out: counted, never stored.
            var refused: [String: Int] = [:]
            var submissions = allSubmissions, outcomes = allOutcomes, deadLetters = deadLetters
            var feedbackRows = prebuiltRows
            if !anonymized.isEmpty, let anonymizer {
                // Stored as the anonymize request stored the past: pseudonym, scrubbed text.
                submissions = submissions.map { anonymized.contains($0.correction.userId) ? anonymizer.submission($0) : $0 }
                outcomes = outcomes.map { item in
                    guard anonymized.contains(item.outcome.userId) else { return item }
                    var outcome = item.outcome
                    outcome.userId = anonymizer.pseudonym(outcome.userId)
                    return (outcome, item.receivedAt)
                }
                deadLetters = deadLetters.filter { $0.letter.userId.map { !anonymized.contains($0) } ?? true }
                feedbackRows = submissions.isEmpty ? nil : try Self.feedbackRows(submissions)
            }
            if !optedOut.isEmpty {
                for user in allSubmissions.map(\.correction.userId) + allOutcomes.map(\.outcome.userId) + deadLetters.compactMap(\.letter.userId)
                where optedOut.contains(user) { refused[user, default: 0] += 1 }
                submissions = zip(allSubmissions, submissions).filter { !optedOut.contains($0.0.correction.userId) }.map(\.1)
                outcomes = zip(allOutcomes, outcomes).filter { !optedOut.contains($0.0.outcome.userId) }.map(\.1)
                deadLetters = deadLetters.filter { $0.letter.userId.map { !optedOut.contains($0) } ?? true }
                feedbackRows = submissions.isEmpty ? nil : try Self.feedbackRows(submissions)
                try PrivacyStore.countRefused(refused, connection)
            }
            if let judge, !submissions.isEmpty {
                let judged = if let prefetchedHistory, optedOut.isEmpty, anonymized.isEmpty {
                    try Self.judge(submissions, prefetchedHistory, judge: judge)
                } else {
                    try Self.applyHistory(submissions, connection, judge: judge)
                }
                if zip(judged, submissions).contains(where: { $0.status != $1.status || $0.flags != $1.flags || $0.reasons != $1.reasons }) {
                    submissions = judged
                    feedbackRows = try Self.feedbackRows(judged)
                }
            }
            var events: [OutboxEvent] = []
            var deadLettered = 0
            if !deadLetters.isEmpty {
                let inserted = try connection.pipeline(deadLetters.map(Self.deadLetterRow), prepared: true)
                // Only a first arrival is news for operators; a redelivery is counted in the row.
                for (record, rows) in zip(deadLetters, inserted) where try rows.first?.decode("inserted", as: Bool.self) == true {
                    events.append(OutboxEvent(topic: record.eventTopic, json: record.letter.json))
                    deadLettered += 1
                }
            }
            let outcomeResults = try Self.storeOutcomes(outcomes, connection)
            var results: [StoreResult?] = []
            var outbox: OutboxBatch?
            if let feedbackRows {
                // One round trip for the rows, their examples and review items and the outbox
                // batch, built as if every correction will be stored (nearly always true): examples
                // join what the insert returned, review items check that this transaction
                // inserted their row (`xmin`), and the outbox batch is rewritten below if some
                // were duplicates.
                let optimistic = events + submissions.flatMap(\.events)
                let examples = try Self.exampleRows(submissions)
                var statements: [(sql: String, parameters: [any PostgresEncodable])] = examples.count > 0
                    ? [(Self.insertFeedbackAndExamples, feedbackRows + examples.columns)] : [(Self.insertFeedback, feedbackRows)]
                statements += submissions.filter { $0.status == .flagged }.map(Self.reviewRow)
                if !optimistic.isEmpty {
                    statements.append(try Self.outboxRow(optimistic, feedback: submissions.filter { !$0.events.isEmpty }.map(\.correction.feedbackId),
                                                         owner: owner, lease: outboxLease))
                }
                let replies = try connection.pipeline(statements, prepared: true)
                // committed_at is now(), the transaction's start: one value for the whole batch.
                let committedAt = try replies[0].first?.decode("committed_at", as: Date.self)
                var stored = Set<String>()
                for row in replies[0] { stored.insert(try row.decode("id", as: String.self)) }
                results = submissions.map { stored.remove($0.correction.feedbackId) != nil ? committedAt.map(StoreResult.stored) : nil }
                var outboxId = optimistic.isEmpty ? nil : try replies[statements.count - 1].first?.decode("id", as: Int.self)
                let conflicts = results.indices.filter { results[$0] == nil }
                if conflicts.isEmpty {
                    events = optimistic
                } else {
                    let storedSubmissions = zip(submissions, results).compactMap { submission, result -> Submission? in
                        guard case .stored = result else { return nil }
                        return submission
                    }
                    events += storedSubmissions.flatMap(\.events)
                    var repair = conflicts.map { Self.lookup(submissions[$0].correction) }
                    if let id = outboxId {
                        if events.isEmpty {
                            repair.append(("DELETE FROM outbox_batches WHERE id = $1", [id]))
                            outboxId = nil
                        } else {
                            let feedback = storedSubmissions.filter { !$0.events.isEmpty }.map(\.correction.feedbackId)
                            repair.append(("UPDATE outbox_batches SET events = $2, event_count = $3, feedback_ids = $4::text[]::uuid[] WHERE id = $1",
                                           [id, PostgresBytes(OutboxFraming.encode(events)), Int32(events.count), try PostgresTextArray(feedback)]))
                        }
                    }
                    let lookups = try connection.pipeline(repair, prepared: true)
                    for (position, rows) in zip(conflicts, lookups) {
                        results[position] = try Self.classify(submissions[position].correction, rows.first)
                    }
                }
                outbox = outboxId.map { OutboxBatch(id: $0, events: events) }
            } else if !events.isEmpty {
                let row = try Self.outboxRow(events, feedback: [], owner: owner, lease: outboxLease)
                let id = try connection.query(row.sql, row.parameters, prepared: true).first?.decode("id", as: Int.self)
                outbox = id.map { OutboxBatch(id: $0, events: events) }
            }
            // Results in the caller's order, the refused ones included.
            var storedResults = zip(submissions, results.map { $0 ?? .conflict }).makeIterator()
            var storedOutcomes = outcomeResults.makeIterator()
            var allResults: [StoreResult] = [], asStored: [Submission] = [], allOutcomeResults: [StoreResult] = []
            for submission in allSubmissions {
                if optedOut.contains(submission.correction.userId) {
                    allResults.append(.optedOut)
                    asStored.append(submission)
                } else if let (stored, result) = storedResults.next() {
                    allResults.append(result)
                    asStored.append(stored)
                }
            }
            for outcome in allOutcomes {
                allOutcomeResults.append(optedOut.contains(outcome.outcome.userId) ? .optedOut : storedOutcomes.next() ?? .conflict)
            }
            return StoredBatch(corrections: allResults, outcomes: allOutcomeResults, outbox: outbox,
                               deadLettered: deadLettered, submissions: asStored, privacy: privacyResults)
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
        }, prepared: true)
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

    static let insertFeedback = """
        INSERT INTO feedback (feedback_id, user_id, modality, correction_type, comic_id, scene_id, panel_id, character_id,
            generation_id, model, model_version, experiment_id, experiment_arm, prompt, original, corrected,
            payload_hash, content_hash, status, flags, quality, occurred_at, edit_duration_ms, client_app, client_version, received_at,
            target_key, content_key)
        SELECT id::uuid, user_id, modality, correction_type, comic_id, scene_id, panel_id, character_id,
            generation_id, model, model_version, experiment_id, experiment_arm, prompt, original::jsonb, corrected::jsonb,
            decode(payload_hash, 'hex'), decode(content_hash, 'hex'), status, flags::text[], quality::real, occurred_at::timestamptz,
            edit_duration_ms::integer, client_app, client_version, received_at::timestamptz, target_key, decode(content_key, 'hex')
        FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
            $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[],
            $19::text[], $20::text[], $21::text[], $22::text[], $23::text[], $24::text[], $25::text[], $26::text[], $27::text[], $28::text[])
            AS row (id, user_id, modality, correction_type, comic_id, scene_id, panel_id, character_id,
                generation_id, model, model_version, experiment_id, experiment_arm, prompt, original, corrected,
                payload_hash, content_hash, status, flags, quality, occurred_at, edit_duration_ms, client_app, client_version, received_at,
                target_key, content_key)
        ON CONFLICT DO NOTHING
        RETURNING feedback_id::text AS id, committed_at
        """

    /// The 28 column arrays of `insertFeedback`.
    static func feedbackRows(_ submissions: [Submission]) throws -> [any PostgresEncodable] {
        var columns = [PostgresTextArray](repeating: PostgresTextArray(), count: 28)
        for submission in submissions {
            let c = submission.correction
            let hashes = c.hashedDocuments
            let values: [String?] = [
                c.feedbackId, c.userId, c.modality.rawValue, c.correctionType.rawValue,
                c.target.comicId, c.target.sceneId, c.target.panelId, c.target.characterId,
                c.generation.id, c.generation.model, c.generation.modelVersion,
                c.generation.experiment?.id, c.generation.experiment?.arm, c.generation.prompt,
            ]
            for (column, value) in values.enumerated() { try columns[column].append(value) }
            // (jsonb columns: the canonical bytes the hashes were taken over are the same documents.)
            try columns[14].append(bytes: hashes.original)
            try columns[15].append(bytes: hashes.corrected)
            let rest: [String?] = [
                hashes.payload, hashes.content, submission.status.rawValue, arrayLiteral(submission.flags),
                "\(submission.quality)", PostgresTimestamp.format(c.occurredAt), c.editDurationMs.map(String.init),
                c.client?.app, c.client?.version, PostgresTimestamp.format(submission.receivedAt),
                HistoryRules.targetKey(c.target), submission.contentKey,
            ]
            for (offset, value) in rest.enumerated() { try columns[16 + offset].append(value) }
        }
        return columns
    }

    /// A text[] literal for one row's flags.
    static func arrayLiteral(_ items: [String]) -> String {
        "{" + items.map { item in
            "\"" + item.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }.joined(separator: ",") + "}"
    }

    /// The feedback rows and, in the same statement, the training examples of those that were
    /// inserted (joined with what the insert returned: a duplicate gets none; `exampleRows`
    /// sends one example per id, the first copy's, which is the copy the insert keeps).
    static let insertFeedbackAndExamples = """
        WITH f AS (\(insertFeedback)),
        e AS (
            INSERT INTO training_examples (example_id, feedback_id, modality, body, created_at, formats)
            SELECT row.example_id::uuid, f.id::uuid, row.modality, row.body::json, row.created_at::timestamptz, row.formats::int2
            FROM unnest($29::text[], $30::text[], $31::text[], $32::text[], $33::text[], $34::text[])
                AS row (example_id, feedback_id, modality, body, created_at, formats)
            JOIN f ON f.id = row.feedback_id)
        SELECT id, committed_at FROM f
        """

    /// The six column arrays of the examples of `submissions`, one per feedback id: the first
    /// copy's (the one the feedback insert keeps), none when that copy has no example.
    static func exampleRows(_ submissions: [Submission]) throws -> (columns: [any PostgresEncodable], count: Int) {
        var columns = [PostgresTextArray](repeating: PostgresTextArray(), count: 6)
        var seen = Set<String>()
        var count = 0
        for submission in submissions where seen.insert(submission.correction.feedbackId).inserted {
            guard let example = submission.trainingExample else { continue }
            try columns[0].append(example.exampleId)
            try columns[1].append(submission.correction.feedbackId)
            try columns[2].append(submission.correction.modality.rawValue)
            try columns[3].append(bytes: example.json)
            try columns[4].append(PostgresTimestamp.format(submission.receivedAt))
            try columns[5].append(String(example.formats))
            count += 1
        }
        return (columns, count)
    }

    /// A held correction's review item, if this transaction inserted the correction (a
    /// duplicate's first copy keeps its own).
    static func reviewRow(_ submission: Submission) -> (sql: String, parameters: [any PostgresEncodable]) {
        ("""
            INSERT INTO review_queue (feedback_id, flags, reasons, flagged_at) SELECT $1::uuid, $2::text[], $3::text[], $4::timestamptz
            WHERE EXISTS (SELECT 1 FROM feedback WHERE feedback_id = $1::uuid AND xmin = pg_current_xact_id()::xid)
            ON CONFLICT DO NOTHING
            """, [submission.correction.feedbackId, submission.flags, submission.reasons, submission.receivedAt])
    }

    /// A committed batch's events, leased to this instance, which publishes them from memory
    /// right after the commit.
    static func outboxRow(_ events: [OutboxEvent], feedback: [String], owner: String, lease: Duration) throws -> (sql: String, parameters: [any PostgresEncodable]) {
        ("""
            INSERT INTO outbox_batches (events, event_count, feedback_ids, claimed_by, claimed_until)
            VALUES ($1, $2, $3::text[]::uuid[], $4, now() + make_interval(secs => $5)) RETURNING id
            """, [PostgresBytes(OutboxFraming.encode(events)), Int32(events.count), try PostgresTextArray(feedback), owner, lease.seconds])
    }

    /// The stored row this correction collided with: its own id first, else the content key.
    static func lookup(_ c: Correction) -> (sql: String, parameters: [any PostgresEncodable]) {
        ("""
            SELECT feedback_id::text AS id, status, encode(payload_hash, 'hex') AS payload_hash, committed_at FROM feedback
            WHERE feedback_id = $1::uuid OR (user_id = $2 AND generation_id = $3 AND content_hash = decode($4, 'hex'))
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

    static func deadLetterRow(_ record: (letter: DeadLetter, eventTopic: String)) -> (sql: String, parameters: [any PostgresEncodable]) {
        let letter = record.letter
        return ("""
            INSERT INTO dead_letters (topic, reason, received_at, last_received_at, payload_sha256, payload_prefix)
            VALUES ($1, $2, $3, $3, $4, $5)
            ON CONFLICT (payload_sha256, md5(topic)) DO UPDATE
                SET occurrences = dead_letters.occurrences + 1, last_received_at = EXCLUDED.last_received_at
            RETURNING (xmax = 0) AS inserted
            """, [letter.topic, letter.reason, letter.receivedAt, letter.payloadSha256, PostgresBytes(letter.payloadPrefix)])
    }

    /// Claims up to `limit` unpublished batches whose lease ran out (their publisher died, or
    /// fell behind), oldest first, for this owner for one lease. Rows another instance is
    /// claiming at the same moment are skipped, so each batch has one publisher at a time.
    public func claimBatches(limit: Int) async throws -> [OutboxBatch] {
        try await pool.withConnection { [owner, outboxLease] connection in
            try connection.query("""
                UPDATE outbox_batches SET claimed_by = $1, claimed_until = now() + make_interval(secs => $2)
                WHERE id IN (SELECT id FROM outbox_batches WHERE claimed_until <= now() ORDER BY claimed_until, id
                             LIMIT $3 FOR UPDATE SKIP LOCKED)
                RETURNING id, events
                """, [owner, outboxLease.seconds, limit], prepared: true).map { row in
                let bytes = try row.decode("events", as: PostgresBytes.self).bytes
                let events: [OutboxEvent]
                do { events = try OutboxFraming.decode(bytes) } catch { throw PostgresError(.decoding, message: "outbox batch \(try row.decode("id", as: Int.self)) is not framed") }
                return OutboxBatch(id: try row.decode("id", as: Int.self), events: events)
            }.sorted { $0.id < $1.id }
        }
    }

    /// Forgets batches whose every event the broker acknowledged.
    ///
    /// Without waiting for the WAL flush (`synchronous_commit = off`): a delete lost in a crash
    /// only means those events are published once more, and not waiting keeps this cleanup off
    /// the disk's queue where the corrections' own commits wait.
    public func batchesPublished(_ ids: [Int]) async throws {
        guard !ids.isEmpty else { return }
        try await pool.transaction { connection in
            try connection.query("SET LOCAL synchronous_commit = off")
            try connection.query("DELETE FROM outbox_batches WHERE id = ANY($1)", [ids], prepared: true)
        }
    }
}

extension Duration {
    /// Whole and fractional seconds, for `make_interval(secs => …)`.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
