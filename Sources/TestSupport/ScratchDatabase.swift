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
