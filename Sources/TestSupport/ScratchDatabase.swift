import Foundation
import Postgres

/// A database of its own for one test, created on the test server and dropped afterwards.
public struct ScratchDatabase: Sendable {
    public let name: String
    public let url: String
    public let configuration: PostgresConfiguration
    private let admin: PostgresPool

    public struct Unavailable: Error, CustomStringConvertible {
        public var description: String { "MORPHEUS_TEST_DATABASE_URL is not set (scripts/test.sh sets it)" }
    }

    public static func create() async throws -> ScratchDatabase {
        guard let base = TestEnvironment.databaseURL, var components = URLComponents(string: base) else { throw Unavailable() }
        let admin = PostgresPool(configuration: try PostgresConfiguration(url: base), size: 1)
        let name = "scratch_\(UUID().uuidString.prefix(8).lowercased())"
        try await admin.withConnection { try $0.query("CREATE DATABASE \(name)") }
        components.path = "/\(name)"
        let url = components.string!
        return ScratchDatabase(name: name, url: url, configuration: try PostgresConfiguration(url: url), admin: admin)
    }

    /// Runs statements about this database from outside it (on the test server's own
    /// database): settings, connection bans, terminating its sessions.
    public func administer(_ statements: String...) async throws {
        try await admin.withConnection { connection in
            for sql in statements { try connection.query(sql) }
        }
    }

    /// Refuses (or allows again) every connection to this database, ending the open ones: an
    /// outage as the service sees it, while the server stays up for other tests.
    public func setReachable(_ reachable: Bool) async throws {
        try await administer("ALTER DATABASE \(name) ALLOW_CONNECTIONS \(reachable)")
        if !reachable {
            try await administer("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '\(name)'")
        }
    }

    public func drop() async throws {
        try? await setReachable(true)
        let name = self.name
        try await admin.withConnection { try $0.query("DROP DATABASE \(name) WITH (FORCE)") }
        await admin.close()
    }
}

extension ScratchDatabase {
    /// Rows of any table in which `text` appears (as text, or inside a bytea column).
    public static func rows(containing text: String, _ pool: PostgresPool) async throws -> Int {
        try await tables(containing: text, pool).values.reduce(0, +)
    }

    /// Per table, the rows in which `text` appears (tables without any are left out).
    public static func tables(containing text: String, _ pool: PostgresPool) async throws -> [String: Int] {
        try await pool.withConnection { connection in
            var found: [String: Int] = [:]
            let tables = try connection.query("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'")
            for table in tables {
                let name = try table.decode("table_name", as: String.self)
                let quoted = "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
                var total = try connection.query("SELECT count(*) FROM \(quoted) t WHERE strpos(t::text, $1) > 0", [text]).first!.decode(0, as: Int.self)
                let byteColumns = try connection.query("""
                    SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 AND data_type = 'bytea'
                    """, [name]).map { try $0.decode("column_name", as: String.self) }
                for column in byteColumns {
                    let quotedColumn = "\"" + column.replacingOccurrences(of: "\"", with: "\"\"") + "\""
                    total += try connection.query("SELECT count(*) FROM \(quoted) WHERE position(convert_to($1, 'UTF8') in \(quotedColumn)) > 0", [text])
                        .first!.decode(0, as: Int.self)
                }
                if total > 0 { found[name] = total }
            }
            return found
        }
    }
}
