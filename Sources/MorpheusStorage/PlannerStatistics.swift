import Postgres

/// Statistics for the tables the ingest reads, taken while those tables are young.
///
/// The ingest's statements are prepared once per connection, and from its sixth run on
/// PostgreSQL reuses a generic plan until the table's statistics change. Planned while a table
/// is new and nearly empty, that plan is a sequential scan, and it stays one while the table
/// grows: on a fresh database the batch's history read scanned the whole of `feedback` twice,
/// 40–50 ms per batch at 20,000 rows, until autovacuum's first ANALYZE — up to a minute or
/// more later (`autovacuum_naptime`) — invalidated it (docs/performance.md, "Plans made on an
/// empty table"). Analyzing a young table each time it has doubled makes PostgreSQL plan again
/// on every connection, with sizes near the truth; past ``settledRows`` the plans are index
/// probes and autovacuum's own thresholds take over.
///
/// Only tables this role may analyze (their owner's or the database owner's, or as superuser)
/// are considered; `SKIP_LOCKED` leaves a table to an autovacuum already working on it.
public struct PlannerStatistics: Sendable {
    /// The tables the ingest's reads probe by key.
    public static let tables = ["feedback", "outcomes", "privacy_settings", "contributor_reputation", "training_examples"]
    /// Rows from which a table's plans no longer depend on its size: from here on autovacuum's
    /// analyze threshold (10 % of the table) is left to do the rest.
    public static let settledRows = 100_000
    /// Rows changed since the last statistics before a young table is analyzed again (or at
    /// least as many as it had then: each time it has doubled).
    public static let minimumChange = 1_000

    public let pool: PostgresPool

    public init(pool: PostgresPool) {
        self.pool = pool
    }

    /// The young tables that have doubled since their last statistics: analyzed now, names
    /// returned. Cheap when there is nothing to do (one catalog read).
    @discardableResult
    public func refresh() async throws -> [String] {
        try await pool.withConnection { connection in
            let due = try connection.query("""
                SELECT c.relname::text AS name FROM pg_class c JOIN pg_stat_user_tables s ON s.relid = c.oid
                WHERE s.schemaname = current_schema() AND s.relname = ANY($1::text[])
                  AND c.reltuples < $2 AND s.n_mod_since_analyze >= greatest($3, c.reltuples)
                  AND (pg_has_role(c.relowner, 'MEMBER')
                       OR pg_has_role((SELECT datdba FROM pg_database WHERE datname = current_database()), 'MEMBER'))
                ORDER BY 1
                """, [Self.tables, Int64(Self.settledRows), Int64(Self.minimumChange)]).map { try $0.decode("name", as: String.self) }
            for table in due {
                // Names from `tables`, matched against the catalog: nothing from outside.
                try connection.execute(script: "ANALYZE (SKIP_LOCKED) \"\(table)\"")
            }
            return due
        }
    }
}
