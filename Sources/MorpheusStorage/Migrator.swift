import Foundation
import Logging
import Postgres

/// One versioned schema change, from `Migrations/NNNN_name.sql`.
public struct Migration: Sendable, Equatable {
    public let version: Int
    public let name: String
    public let sql: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }

    /// FNV-1a of the SQL text: detects an applied migration that was edited afterwards.
    public var checksum: String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in sql.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return String(hash, radix: 16)
    }
}

/// Why migrating failed.
public struct MigrationError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable { case unreadable, badFileName, duplicateVersion, editedAfterApply, unknownVersion }
    public let code: Code
    public let message: String
    public var description: String { "migration \(code.rawValue): \(message)" }
}

/// Applies the schema migrations in order, once, even when several instances start together.
///
/// All pending migrations run in one transaction under a transaction-scoped advisory lock: a
/// second instance waits for the first, then finds nothing left to do. Each applied version is
/// recorded in `schema_migrations` with a checksum of its SQL.
public struct Migrator: Sendable {
    /// Arbitrary but fixed: the advisory lock key all instances agree on.
    static let lockKey: Int = 0x4d6f_7270_6865_7573  // "Morpheus"

    public let migrations: [Migration]

    public init(migrations: [Migration]) throws {
        var seen = Set<Int>()
        for migration in migrations where !seen.insert(migration.version).inserted {
            throw MigrationError(code: .duplicateVersion, message: "version \(migration.version) appears twice")
        }
        self.migrations = migrations.sorted { $0.version < $1.version }
    }

    /// The migrations shipped with this module.
    public static func bundled() throws -> Migrator {
        guard let folder = Bundle.module.url(forResource: "Migrations", withExtension: nil) else {
            throw MigrationError(code: .unreadable, message: "the Migrations resource folder is missing")
        }
        return try Migrator(directory: folder)
    }

    /// Reads `NNNN_name.sql` files from a folder.
    public init(directory: URL) throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".sql") }
        let migrations = try names.map { file -> Migration in
            let stem = file.dropLast(4)
            guard let separator = stem.firstIndex(of: "_"), let version = Int(stem[..<separator]) else {
                throw MigrationError(code: .badFileName, message: "\(file) is not named NNNN_name.sql")
            }
            let sql = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
            return Migration(version: version, name: String(stem[stem.index(after: separator)...]), sql: sql)
        }
        try self.init(migrations: migrations)
    }

    /// Applies what is pending; returns the versions this call applied.
    @discardableResult
    public func apply(to pool: PostgresPool, logger: Logger) async throws -> [Int] {
        let migrations = self.migrations
        let applied = try await pool.transaction { connection -> [Int] in
            try connection.query("SELECT pg_advisory_xact_lock($1)", [Self.lockKey])
            try connection.query("""
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version     integer PRIMARY KEY,
                    name        text NOT NULL,
                    checksum    text NOT NULL,
                    applied_at  timestamptz NOT NULL DEFAULT now()
                )
                """)
            var done: [Int: String] = [:]
            for row in try connection.query("SELECT version, checksum FROM schema_migrations") {
                done[try row.decode("version", as: Int.self)] = try row.decode("checksum", as: String.self)
            }
            let known = Set(migrations.map(\.version))
            if let stranger = done.keys.sorted().first(where: { !known.contains($0) }) {
                throw MigrationError(code: .unknownVersion, message: "the database has version \(stranger), which this build does not know (a newer build ran?)")
            }
            var applied: [Int] = []
            for migration in migrations {
                if let checksum = done[migration.version] {
                    guard checksum == migration.checksum else {
                        throw MigrationError(code: .editedAfterApply, message: "\(migration.version)_\(migration.name) changed after it was applied")
                    }
                    continue
                }
                try connection.execute(script: migration.sql)
                try connection.query(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    [migration.version, migration.name, migration.checksum]
                )
                applied.append(migration.version)
            }
            return applied
        }
        for version in applied {
            logger.info("applied migration", metadata: ["version": "\(version)"])
        }
        return applied
    }
}
