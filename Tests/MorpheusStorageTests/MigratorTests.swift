import Foundation
import Logging
import MorpheusStorage
import Postgres
import Testing
import TestSupport

let logger = Logger(label: "migrator-tests")

@Suite("Migrations")
struct MigratorTests {
    @Test("the bundled migrations apply once; a second run is a no-op")
    func bundledAreIdempotent() async throws {
        let database = try await ScratchDatabase.create()
        let pool = PostgresPool(configuration: database.configuration, size: 1)
        let migrator = try Migrator.bundled()
        #expect(!migrator.migrations.isEmpty)
        let first = try await migrator.apply(to: pool, logger: logger)
        #expect(first == migrator.migrations.map(\.version))
        let second = try await migrator.apply(to: pool, logger: logger)
        #expect(second.isEmpty)
        let recorded = try await pool.withConnection { connection in
            try connection.query("SELECT version FROM schema_migrations ORDER BY version").map { try $0.decode(0, as: Int.self) }
        }
        #expect(recorded == first)
        await pool.close()
        try await database.drop()
    }

    @Test("0003 moves events still pending in the per-event outbox into batches, byte for byte")
    func outboxBatchesMigration() async throws {
        let database = try await ScratchDatabase.create()
        let pool = PostgresPool(configuration: database.configuration, size: 1)
        let bundled = try Migrator.bundled()
        try await Migrator(migrations: bundled.migrations.filter { $0.version <= 2 }).apply(to: pool, logger: logger)
        let payload = Array(#"{"schema":"morpheus.training-example/1","text":"Grüße"}"#.utf8)
        try await pool.withConnection { connection in
            try connection.query("INSERT INTO outbox (topic, payload) VALUES ($1, $2)", ["morpheus/v1/training/text", PostgresBytes(payload)])
            try connection.query("INSERT INTO outbox (topic, payload) VALUES ($1, $2)", ["morpheus/v1/deadletter", PostgresBytes([])])
        }
        #expect(try await bundled.apply(to: pool, logger: logger).contains(3))
        let pending = try await FeedbackStore(pool: pool).claimBatches(limit: 10)
        #expect(pending.map(\.events) == [
            [OutboxEvent(topic: "morpheus/v1/training/text", payload: payload)],
            [OutboxEvent(topic: "morpheus/v1/deadletter", payload: [])],
        ])
        await pool.close()
        try await database.drop()
    }

    @Test("two instances starting at once apply each migration exactly once")
    func concurrentStarts() async throws {
        let database = try await ScratchDatabase.create()
        let migrator = try Migrator(migrations: [
            Migration(version: 1, name: "a", sql: "CREATE TABLE a (id int); SELECT pg_sleep(0.2);"),
            Migration(version: 2, name: "b", sql: "CREATE TABLE b (id int);"),
        ])
        let pools = [PostgresPool(configuration: database.configuration, size: 1), PostgresPool(configuration: database.configuration, size: 1)]
        let results = try await withThrowingTaskGroup(of: [Int].self) { group in
            for pool in pools { group.addTask { try await migrator.apply(to: pool, logger: logger) } }
            return try await group.reduce(into: [[Int]]()) { $0.append($1) }
        }
        #expect(results.flatMap { $0 }.sorted() == [1, 2])
        #expect(results.contains([]))
        for pool in pools { await pool.close() }
        try await database.drop()
    }

    @Test("a failing migration leaves nothing behind")
    func failureRollsBackEverything() async throws {
        let database = try await ScratchDatabase.create()
        let pool = PostgresPool(configuration: database.configuration, size: 1)
        let migrator = try Migrator(migrations: [
            Migration(version: 1, name: "good", sql: "CREATE TABLE good (id int);"),
            Migration(version: 2, name: "bad", sql: "CREATE TABLE broken (id nosuchtype);"),
        ])
        await #expect(throws: PostgresError.self) { try await migrator.apply(to: pool, logger: logger) }
        let tables = try await pool.withConnection { connection in
            try connection.query("SELECT count(*) FROM pg_tables WHERE tablename IN ('good', 'schema_migrations')").first!.decode(0, as: Int.self)
        }
        #expect(tables == 0)
        await pool.close()
        try await database.drop()
    }

    @Test("an applied migration edited afterwards, or an unknown applied version, stops start-up")
    func driftIsRefused() async throws {
        let database = try await ScratchDatabase.create()
        let pool = PostgresPool(configuration: database.configuration, size: 1)
        try await Migrator(migrations: [Migration(version: 1, name: "a", sql: "CREATE TABLE a (id int);")]).apply(to: pool, logger: logger)
        do {
            try await Migrator(migrations: [Migration(version: 1, name: "a", sql: "CREATE TABLE a (id bigint);")]).apply(to: pool, logger: logger)
            Issue.record("an edited migration was accepted")
        } catch let error as MigrationError {
            #expect(error.code == .editedAfterApply)
        }
        do {
            try await Migrator(migrations: []).apply(to: pool, logger: logger)
            Issue.record("an unknown applied version was accepted")
        } catch let error as MigrationError {
            #expect(error.code == .unknownVersion)
        }
        await pool.close()
        try await database.drop()
    }

    @Test("migration files must be named NNNN_name.sql and versions must be unique")
    func fileRules() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.unique("migrations"))
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try "SELECT 1;".write(to: folder.appendingPathComponent("0002_second.sql"), atomically: true, encoding: .utf8)
        try "SELECT 1;".write(to: folder.appendingPathComponent("0001_first.sql"), atomically: true, encoding: .utf8)
        let migrator = try Migrator(directory: folder)
        #expect(migrator.migrations.map(\.version) == [1, 2])
        #expect(migrator.migrations.map(\.name) == ["first", "second"])
        try "SELECT 1;".write(to: folder.appendingPathComponent("third.sql"), atomically: true, encoding: .utf8)
        #expect(throws: MigrationError.self) { try Migrator(directory: folder) }
        #expect(throws: MigrationError.self) {
            try Migrator(migrations: [Migration(version: 1, name: "a", sql: ""), Migration(version: 1, name: "b", sql: "")])
        }
    }
}
