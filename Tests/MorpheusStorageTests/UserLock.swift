import Postgres

/// Holds a user's advisory lock (the one batches and privacy requests take) on a connection of
/// its own, so a test can queue transactions behind it and release them in a known order.
struct UserLock {
    let user: String
    let holder: PostgresPool
    let observer: PostgresPool

    static func hold(_ user: String, on pool: PostgresPool) async throws -> UserLock {
        let lock = UserLock(user: user, holder: PostgresPool(configuration: pool.configuration, size: 1), observer: pool)
        try await lock.holder.withConnection { try $0.query("SELECT pg_advisory_lock(hashtextextended('morpheus/user/' || $1, 0))", [user]) }
        return lock
    }

    /// Transactions waiting for an advisory lock in this test's database (parallel tests lock
    /// in theirs).
    func waiting() async throws -> Int {
        try await observer.withConnection {
            try $0.query("""
                SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
                  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                """).first!.decode(0, as: Int.self)
        }
    }

    func release() async throws {
        try await holder.withConnection { try $0.query("SELECT pg_advisory_unlock(hashtextextended('morpheus/user/' || $1, 0))", [user]) }
        await holder.close()
    }
}
