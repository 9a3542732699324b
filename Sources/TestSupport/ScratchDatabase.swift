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

    public func drop() async throws {
        let name = self.name
        try await admin.withConnection { try $0.query("DROP DATABASE \(name) WITH (FORCE)") }
        await admin.close()
    }
}
