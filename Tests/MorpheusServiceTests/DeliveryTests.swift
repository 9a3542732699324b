import Foundation
import MorpheusCore
import Postgres
import Testing
import TestSupport

/// The delivery guarantee end to end: nothing acknowledged is lost, nothing is stored twice.
@Suite("Delivery guarantee end to end")
struct DeliveryTests {
    let users = (0..<20).map { "user-\($0)" }

    func storedCount(_ pool: PostgresPool) async throws -> Int {
        try await pool.withConnection { try $0.query("SELECT count(*) FROM feedback").first!.decode(0, as: Int.self) }
    }

    func waitOnline(_ status: ChildProcess, after count: Int = 0) async throws {
        try await waitUntil("service online", timeout: .seconds(30)) {
            status.lines.dropFirst(count).contains { $0.contains("\"online\"") }
        }
    }

    @Test("1,000 corrections published while the service is stopped are all answered after it starts")
    func backlogWhileStopped() async throws {
        let database = try await ScratchDatabase.create()
        let instance = Instance()
        let status = try watchStatus(instance)
        // A first run creates the persistent session and its shared subscription.
        let first = try startService(instance, databaseURL: database.url)
        try await waitOnline(status)
        try await first.kill(SIGTERM)
        let seen = status.lines.count

        let editor = try await Editor(prefix: instance.prefix)
        let corrections = (0..<1000).map { Editor.correction(index: $0, user: users[$0 % users.count]) }
        for (index, correction) in corrections.enumerated() {
            try editor.publish(correction, user: users[index % users.count])
        }

        let second = try startService(instance, databaseURL: database.url)
        try await waitOnline(status, after: seen)
        try await waitUntil("1,000 receipts", timeout: .seconds(60)) { editor.answered.count >= 1000 }
        #expect(corrections.allSatisfy { editor.statuses($0.id) == ["accepted"] })
        let pool = PostgresPool(configuration: database.configuration, size: 1)
        #expect(try await storedCount(pool) == 1000)

        try await second.kill(SIGTERM)
        await editor.shutdown()
        try await status.kill(SIGTERM)
        await pool.close()
        try await database.drop()
    }

    @Test("a SIGKILLed service loses nothing: with editors republishing, every correction is stored exactly once")
    func crashDuringStream() async throws {
        let database = try await ScratchDatabase.create()
        let instance = Instance()
        let status = try watchStatus(instance)
        var service = try startService(instance, databaseURL: database.url)
        try await waitOnline(status)

        let editor = try await Editor(prefix: instance.prefix)
        let total = 2000
        let corrections = (0..<total).map { Editor.correction(index: $0, user: users[$0 % users.count]) }
        let pool = PostgresPool(configuration: database.configuration, size: 1)
        for (index, correction) in corrections.enumerated() {
            try editor.publish(correction, user: users[index % users.count])
            if index == total / 2 {
                // Kill mid-stream, as soon as some of it is stored.
                try await waitUntil("part of the stream stored", timeout: .seconds(30)) { try await storedCount(pool) > 0 }
                try await service.kill(SIGKILL)
                let seen = status.lines.count
                service = try startService(instance, databaseURL: database.url)
                try await waitOnline(status, after: seen)
            }
        }

        // Editors republish whatever has no receipt yet, with backoff as the contract asks
        // (without it a slow service drowns in copies), until everything is answered.
        var interval = Duration.seconds(2)
        var nextRepublish = ContinuousClock.now + interval
        try await waitUntil("every correction answered", timeout: .seconds(240)) {
            let answered = editor.answered
            let missing = corrections.indices.filter { !answered.contains(corrections[$0].id) }
            if missing.isEmpty { return true }
            if ContinuousClock.now >= nextRepublish {
                for index in missing { try editor.publish(corrections[index], user: users[index % users.count]) }
                interval = min(interval * 2, .seconds(16))
                nextRepublish = ContinuousClock.now + interval
            }
            return false
        }
        #expect(try await storedCount(pool) == total)
        let statuses = Set(corrections.flatMap { editor.statuses($0.id) })
        #expect(statuses.isSubset(of: ["accepted", "duplicate"]))

        try await service.kill(SIGTERM)
        await editor.shutdown()
        try await status.kill(SIGTERM)
        await pool.close()
        try await database.drop()
    }

    @Test("a PostgreSQL restart during a stream loses nothing: batches are held and retried")
    func databaseRestartDuringStream() async throws {
        // A cluster of its own: restarting the shared one would disturb parallel tests.
        let (directory, port) = try await startPrivatePostgres()
        let url = try await runScript("postgres.sh", ["url", directory, "\(port)"]).trimmingCharacters(in: .whitespacesAndNewlines)
        let instance = Instance()
        let status = try watchStatus(instance)
        let service = try startService(instance, databaseURL: url)
        try await waitOnline(status)

        let editor = try await Editor(prefix: instance.prefix)
        let total = 1000
        let corrections = (0..<total).map { Editor.correction(index: $0, user: users[$0 % users.count]) }
        for (index, correction) in corrections.enumerated() {
            try editor.publish(correction, user: users[index % users.count])
            if index == total / 3 {
                try await runScript("postgres.sh", ["restart", directory, "\(port)"])
            }
        }
        try await waitUntil("every correction answered", timeout: .seconds(90)) { editor.answered.count >= total }
        let pool = PostgresPool(configuration: try PostgresConfiguration(url: url), size: 1)
        #expect(try await storedCount(pool) == total)
        let accepted = try await pool.withConnection {
            try $0.query("SELECT count(*) FROM feedback WHERE status = 'accepted'").first!.decode(0, as: Int.self)
        }
        #expect(accepted == total)
        // A commit whose outcome the restart cut off is retried and found stored: `duplicate`.
        let first = corrections.map { editor.statuses($0.id).first ?? "none" }
        #expect(first.allSatisfy { $0 == "accepted" || $0 == "duplicate" }, "\(Dictionary(grouping: first, by: { $0 }).mapValues(\.count))")

        try await service.kill(SIGTERM, timeout: .seconds(10))
        #expect(service.exitStatus == 0)
        await editor.shutdown()
        try await status.kill(SIGTERM)
        await pool.close()
        try await runScript("postgres.sh", ["stop", directory, "\(port)"])
        try? FileManager.default.removeItem(atPath: directory)
    }
}
