import Foundation
import MorpheusCore
import Postgres

/// One archive of corrections' content, as listed by ``RetentionStore/archives()``.
public struct FeedbackArchive: Sendable, Equatable {
    public var id: Int
    public var policy: String
    public var createdAt: Date
    public var rowCount: Int
    public var firstReceivedAt: Date?
    public var lastReceivedAt: Date?
    public var sha256: String
    /// Bytes the archive takes in PostgreSQL (compressed).
    public var storedBytes: Int
}

/// Applies a ``RetentionPolicy`` (`docs/privacy.md#retention`): moves old corrections' content
/// into compressed archives and deletes expired dead letters.
///
/// One instance at a time runs it (a session advisory lock, tried, never waited for); within a
/// run every archive is a transaction of its own, its rows taken `FOR UPDATE SKIP LOCKED`, so a
/// run never holds more than one archive's rows and never waits on the ingest. Pass the store a
/// pool of its own (one connection): a long run does not take connections from the ingest.
public struct RetentionStore: Sendable {
    public let pool: PostgresPool

    public init(pool: PostgresPool) {
        self.pool = pool
    }

    /// Takes the run's session lock if it is free (taking it again on the same session stacks).
    static func tryLock(_ connection: PostgresConnection) throws -> Bool {
        try connection.query("SELECT pg_try_advisory_lock(hashtextextended('morpheus/retention', 0)) AS locked").first!.decode("locked", as: Bool.self)
    }

    /// Runs the policy as of `now`. Returns `nil` when another instance holds the run.
    /// Cancellation stops it between archives.
    public func run(_ policy: RetentionPolicy, now: Date) async throws -> RetentionReport? {
        let cutoffs = policy.cutoffs(at: now)
        guard try await pool.withConnection(Self.tryLock) else { return nil }
        let outcome: Result<RetentionReport, any Error>
        do {
            var report = RetentionReport()
            for rule in [ArchiveRule.inDataset, .age] {
                guard let cutoff = rule == .inDataset ? cutoffs.inDataset : cutoffs.any else { continue }
                while !Task.isCancelled {
                    let chunk = try await pool.withConnection { connection in
                        // The lock is the session's: if the connection was replaced, another
                        // instance may own the run now.
                        guard try Self.tryLock(connection) else { throw PostgresError(.connectionClosed, message: "the retention lock was lost with its connection") }
                        return try connection.transaction { try Self.archive(rule, before: cutoff, limit: policy.archiveSize, $0) }
                    }
                    guard let chunk else { break }
                    report.archives += 1
                    if rule == .inDataset { report.archivedInDataset += chunk.rows } else { report.archivedByAge += chunk.rows }
                    report.hotContentBytes += chunk.hotBytes
                    report.archiveBytes += chunk.archiveBytes
                }
            }
            if let cutoff = cutoffs.deadLetters, !Task.isCancelled {
                report.deadLetters = try await pool.withConnection {
                    try $0.query("DELETE FROM dead_letters WHERE last_received_at < $1 RETURNING 1", [cutoff]).count
                }
            }
            outcome = .success(report)
        } catch {
            outcome = .failure(error)
        }
        // (A connection that broke took the lock with it.)
        _ = try? await pool.withConnection { try $0.query("SELECT pg_advisory_unlock_all()") }
        return try outcome.get()
    }

    /// What ``run(_:now:)`` would do as of `now`, without changing anything.
    public func plan(_ policy: RetentionPolicy, now: Date) async throws -> RetentionReport {
        let cutoffs = policy.cutoffs(at: now)
        return try await pool.withConnection { connection in
            var report = RetentionReport()
            report.dryRun = true
            // A correction the first rule takes is not counted again under the second.
            let inDataset = "(f.received_at < $1 AND EXISTS (SELECT 1 FROM dataset_examples d WHERE d.feedback_id = f.feedback_id))"
            if let row = try connection.query("""
                SELECT count(*) FILTER (WHERE \(inDataset)) AS in_dataset,
                       count(*) FILTER (WHERE NOT coalesce(\(inDataset), false) AND f.received_at < $2) AS by_age,
                       coalesce(sum(\(Self.hotBytes)), 0)::int8 AS bytes
                FROM feedback f LEFT JOIN training_examples t USING (feedback_id)
                WHERE \(Self.archivable) AND (\(inDataset) OR f.received_at < $2)
                """, [cutoffs.inDataset, cutoffs.any]).first {
                report.archivedInDataset = try row.decode("in_dataset", as: Int.self)
                report.archivedByAge = try row.decode("by_age", as: Int.self)
                report.hotContentBytes = try row.decode("bytes", as: Int.self)
                report.archives = [report.archivedInDataset, report.archivedByAge].reduce(0) { $0 + ($1 + policy.archiveSize - 1) / policy.archiveSize }
            }
            if let cutoff = cutoffs.deadLetters {
                report.deadLetters = try connection.query("SELECT count(*) AS n FROM dead_letters WHERE last_received_at < $1", [cutoff])
                    .first!.decode("n", as: Int.self)
            }
            return report
        }
    }

    /// The archives, oldest first.
    public func archives() async throws -> [FeedbackArchive] {
        try await pool.withConnection { connection in
            try connection.query("""
                SELECT id, policy, created_at, row_count, first_received_at, last_received_at, sha256, pg_column_size(content) AS bytes
                FROM feedback_archives ORDER BY id
                """).map { row in
                FeedbackArchive(id: try row.decode("id"), policy: try row.decode("policy"), createdAt: try row.decode("created_at"),
                                rowCount: try row.decode("row_count"), firstReceivedAt: try row.decodeIfPresent("first_received_at"),
                                lastReceivedAt: try row.decodeIfPresent("last_received_at"), sha256: try row.decode("sha256"),
                                storedBytes: try row.decode("bytes"))
            }
        }
    }

    /// Puts an archive's content back into the hot tables (e.g. to build a dataset from it
    /// again) and removes the archive. Returns how many corrections came back.
    public func restore(archive id: Int) async throws -> Int {
        try await pool.transaction { connection in
            let ids = try connection.query("SELECT feedback_id::text AS id FROM feedback WHERE archive_id = $1", [id]).map { try $0.decode("id", as: String.self) }
            return try Self.restore(feedback: ids, connection)
        }
    }

    enum ArchiveRule: String { case inDataset = "in_dataset", age }

    /// Content a correction holds in the hot tables, as stored (compressed or not).
    static let hotBytes = "coalesce(pg_column_size(f.prompt), 0) + coalesce(pg_column_size(f.original), 0) + coalesce(pg_column_size(f.corrected), 0) + coalesce(pg_column_size(t.body), 0)"

    /// Not archived yet, and not waiting for a reviewer (who needs to read it).
    static let archivable = """
        f.archive_id IS NULL AND NOT EXISTS (SELECT 1 FROM review_queue r WHERE r.feedback_id = f.feedback_id AND r.decision IS NULL)
        """

    /// Archives up to `limit` corrections that `rule` takes before `cutoff`, in one statement;
    /// `nil` when there are none left.
    static func archive(_ rule: ArchiveRule, before cutoff: Date, limit: Int, _ connection: PostgresConnection) throws -> (rows: Int, hotBytes: Int, archiveBytes: Int)? {
        let condition = rule == .inDataset ? "AND EXISTS (SELECT 1 FROM dataset_examples d WHERE d.feedback_id = f.feedback_id)" : ""
        guard let row = try connection.query("""
            WITH victims AS (
                SELECT f.feedback_id FROM feedback f
                WHERE f.received_at < $1 AND \(archivable) \(condition)
                ORDER BY f.received_at LIMIT $2 FOR UPDATE OF f SKIP LOCKED
            ), lines AS (
                SELECT f.feedback_id, f.received_at, \(hotBytes) AS bytes,
                       json_build_object('feedbackId', f.feedback_id, 'prompt', f.prompt, 'original', f.original,
                                         'corrected', f.corrected, 'example', t.body)::text AS line
                FROM victims v JOIN feedback f USING (feedback_id) LEFT JOIN training_examples t USING (feedback_id)
            ), content AS (
                SELECT count(*) AS n, min(received_at) AS first, max(received_at) AS last, sum(bytes) AS bytes,
                       string_agg(line, E'\\n' ORDER BY feedback_id) AS text
                FROM lines
            ), archive AS (
                INSERT INTO feedback_archives (policy, row_count, first_received_at, last_received_at, sha256, content)
                SELECT $3, n, first, last, encode(sha256(convert_to(text, 'UTF8')), 'hex'), text FROM content WHERE n > 0
                RETURNING id
            ), hot AS (
                UPDATE feedback f SET prompt = NULL, original = NULL, corrected = NULL, archive_id = archive.id
                FROM archive, victims v WHERE f.feedback_id = v.feedback_id
            ), examples AS (
                UPDATE training_examples t SET body = NULL FROM archive, victims v WHERE t.feedback_id = v.feedback_id
            )
            SELECT archive.id, content.n, content.bytes::int8 AS bytes FROM archive, content
            """, [cutoff, Int32(limit), rule.rawValue]).first else { return nil }
        let id = try row.decode("id", as: Int.self)
        let stored = try connection.query("SELECT pg_column_size(content) AS bytes FROM feedback_archives WHERE id = $1", [id])
            .first!.decode("bytes", as: Int.self)
        return (try row.decode("n", as: Int.self), try row.decode("bytes", as: Int.self), stored)
    }

    /// The archives that hold any of `feedback`, locked (in id order: no deadlock with another
    /// restore or erasure), and how many of `feedback` are archived.
    static func archives(of feedback: [String], _ connection: PostgresConnection) throws -> (ids: [Int], archived: Int) {
        guard !feedback.isEmpty else { return ([], 0) }
        let rows = try connection.query("""
            SELECT archive_id FROM feedback WHERE feedback_id = ANY($1::uuid[]) AND archive_id IS NOT NULL
            """, [PostgresUUIDArray(feedback)]).map { try $0.decode("archive_id", as: Int.self) }
        let ids = Set(rows).sorted()
        if !ids.isEmpty {
            try connection.query("SELECT id FROM feedback_archives WHERE id = ANY($1::int8[]) ORDER BY id FOR UPDATE", [ids.map(String.init)])
        }
        return (ids, rows.count)
    }

    /// Writes `feedback`'s archived content back into the hot tables and takes their lines out
    /// of the archives (inside the caller's transaction). Anonymization runs it before rewriting
    /// a user's corrections, a reviewer's decision before reading one. Returns how many came back.
    @discardableResult
    static func restore(feedback: [String], _ connection: PostgresConnection) throws -> Int {
        let archives = try archives(of: feedback, connection)
        guard !archives.ids.isEmpty else { return 0 }
        let restored = try connection.query("""
            WITH lines AS (
                SELECT l.line::json AS j FROM feedback_archives a, unnest(string_to_array(a.content, E'\\n')) AS l (line)
                WHERE a.id = ANY($2::int8[])
            ), mine AS (
                SELECT (j ->> 'feedbackId')::uuid AS feedback_id, j FROM lines WHERE (j ->> 'feedbackId')::uuid = ANY($1::uuid[])
            ), examples AS (
                UPDATE training_examples t SET body = m.j -> 'example' FROM mine m WHERE t.feedback_id = m.feedback_id
            )
            UPDATE feedback f SET prompt = m.j ->> 'prompt', original = (m.j -> 'original')::jsonb, corrected = (m.j -> 'corrected')::jsonb,
                archive_id = NULL
            FROM mine m WHERE f.feedback_id = m.feedback_id RETURNING 1
            """, [PostgresUUIDArray(feedback), archives.ids.map(String.init)]).count
        try removeLines(of: feedback, from: archives.ids, connection)
        return restored
    }

    /// Takes `feedback`'s lines out of `archives`; the manifests follow, an archive left empty
    /// is deleted. Erasure runs it after deleting the user's rows (nothing of a correction
    /// outlives it in an archive), `restore` after writing the content back.
    static func removeLines(of feedback: [String], from archives: [Int], _ connection: PostgresConnection) throws {
        guard !archives.isEmpty else { return }
        try connection.query("""
            UPDATE feedback_archives a SET content = k.text, row_count = k.n, sha256 = encode(sha256(convert_to(k.text, 'UTF8')), 'hex')
            FROM (
                SELECT a.id, count(l.line) AS n, coalesce(string_agg(l.line, E'\\n' ORDER BY (l.line::json ->> 'feedbackId')::uuid), '') AS text
                FROM feedback_archives a LEFT JOIN LATERAL (
                    SELECT line FROM unnest(string_to_array(a.content, E'\\n')) AS u (line)
                    WHERE (line::json ->> 'feedbackId')::uuid <> ALL($1::uuid[])
                ) l ON true
                WHERE a.id = ANY($2::int8[]) GROUP BY a.id
            ) k WHERE a.id = k.id
            """, [PostgresUUIDArray(feedback), archives.map(String.init)])
        try connection.query("DELETE FROM feedback_archives WHERE id = ANY($1::int8[]) AND row_count = 0", [archives.map(String.init)])
    }
}
