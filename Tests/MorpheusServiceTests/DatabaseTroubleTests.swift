import Dispatch
import Foundation
import MorpheusCore
import Postgres
import Testing
import TestSupport

/// The service's own trouble with its database is never answered as the editor's fault: the
/// batch is held and retried, given back to the broker, or left unacknowledged at shutdown.
@Suite("Database trouble is never the editor's fault")
struct DatabaseTroubleTests {
    let user = "trouble.user"

    /// Holds an ACCESS EXCLUSIVE lock on `feedback` in another session until `release` is
    /// signalled; returns once the lock is held.
    final class LockHolder: Sendable {
        let release = DispatchSemaphore(value: 0)
        let done: Task<Void, any Error>

        init(_ database: ScratchDatabase) async throws {
            let pool = PostgresPool(configuration: database.configuration, size: 1)
            let held = DispatchSemaphore(value: 0)
            let release = self.release
            done = Task {
                try await pool.withConnection { connection in
                    try connection.query("BEGIN")
                    try connection.query("LOCK TABLE feedback IN ACCESS EXCLUSIVE MODE")
                    held.signal()
                    release.wait()
                    try connection.query("COMMIT")
                }
                await pool.close()
            }
            try await waitUntil("the lock held") { held.wait(timeout: .now()) == .success }
        }

        func unlock() async throws {
            release.signal()
            try await done.value
        }
    }

    func count(_ database: ScratchDatabase, _ sql: String) async throws -> Int {
        let pool = PostgresPool(configuration: database.configuration, size: 1)
        defer { Task { await pool.close() } }
        return try await pool.withConnection { try $0.query(sql).first!.decode(0, as: Int.self) }
    }

    @Test("a lock or statement timeout while storing is retried: the correction is accepted once the lock is gone, and the status says why it waited",
          arguments: [("lock_timeout", "300ms", "55P03"), ("statement_timeout", "200ms", "57014")])
    func timeoutsAreRetried(setting: String, value: String, sqlState: String) async throws {
        let instance = Instance()
        let watcher = try watch(["\(instance.prefix)/replies/#"])
        try await waitSubscribed(watcher, topic: "\(instance.prefix)/replies/\(user)/marker")
        let service = try await ServiceUnderTest.start(instance)
        let (database, status) = (service.database, service.status)
        // A common DBA setting; the service's sessions pick it up when they reconnect.
        try await database.administer("ALTER DATABASE \(database.name) SET \(setting) = '\(value)'",
                                      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '\(database.name)'")

        let lock = try await LockHolder(database)
        let id = UUID().uuidString.lowercased()
        let payload = Samples.text.setting("/userId", to: .string(user)).setting("/feedbackId", to: .string(id))
            .setting("/occurredAt", to: .string(RFC3339.format(Date()))).serializedString
        try await mosquittoPublish("\(instance.prefix)/corrections/text/\(user)", payload: payload,
                                   responseTopic: "\(instance.prefix)/replies/\(user)/r", correlationData: "c")
        try await waitUntil("the status to report the database unavailable with \(sqlState)", timeout: .seconds(20)) {
            status.lines.contains { $0.contains("\"database\":\"unavailable\"") && $0.contains(sqlState) }
        }
        #expect(!watcher.lines.contains { $0.contains(id) }, "nothing is answered while the row cannot be stored")
        try await lock.unlock()

        try await waitUntil("the receipt", timeout: .seconds(20)) { watcher.lines.contains { $0.contains(id) } }
        let receipts = watcher.lines.compactMap(Observed.init).filter { $0.json["feedbackId"] as? String == id }
        #expect(receipts.map { $0.json["status"] as? String } == ["accepted"])
        try await waitUntil("the status to report the database available again") {
            let last = status.lines.compactMap { try? ServiceStatus.decode(Array($0.utf8)) }.last
            return last?.database == .available && (last?.counters.retries ?? 0) > 0
        }
        #expect(try await count(database, "SELECT count(*) FROM feedback") == 1)

        try await service.stop()
        try await watcher.kill(SIGTERM)
    }

    @Test("SIGTERM while chunks wait for a pool connection answers nothing `rejected`; the next run stores every correction once")
    func shutdownWhileWaitingForConnection() async throws {
        let database = try await ScratchDatabase.create()
        let instance = Instance()
        let status = try watchStatus(instance)
        // One connection: while the first chunk waits on a lock, the others wait for the pool.
        let environment = ["MORPHEUS_DATABASE_POOL_SIZE": "1"]
        let first = try startService(instance, databaseURL: database.url, environment: environment)
        try await waitUntil("service online", timeout: .seconds(30)) { status.lines.contains { $0.contains("\"online\"") } }
        try await first.kill(SIGTERM, timeout: .seconds(15))

        // A backlog in the session, so that it arrives as large batches split into chunks.
        let editor = try await Editor(prefix: instance.prefix)
        let total = 256
        let corrections = (0..<total).map { Editor.correction(index: $0, user: user) }
        for correction in corrections { try editor.publish(correction, user: user) }

        let lock = try await LockHolder(database)
        let second = try startService(instance, databaseURL: database.url, environment: environment)
        try await waitUntil("a chunk blocked on the lock", timeout: .seconds(30)) {
            try await count(database, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'") > 0
        }
        // It cannot finish while the first chunk's statement waits on the lock.
        second.signal(SIGTERM)
        try await waitUntil("the service to start draining") { second.lines.contains { $0.contains("draining") } }
        try await lock.unlock()
        _ = try await second.waitForExit(timeout: .seconds(20))
        let rejected = corrections.filter { editor.statuses($0.id).contains("rejected") }
        #expect(rejected.isEmpty, "\(rejected.count) answered rejected because of a shutdown")

        // What the second run did not acknowledge comes again.
        let third = try startService(instance, databaseURL: database.url)
        try await waitUntil("every correction answered", timeout: .seconds(60)) { editor.answered.count == total }
        #expect(try await count(database, "SELECT count(*) FROM feedback") == total)
        #expect(corrections.allSatisfy { Set(editor.statuses($0.id)).isSubset(of: ["accepted", "duplicate"]) })

        try await third.kill(SIGTERM, timeout: .seconds(15))
        await editor.shutdown()
        try await status.kill(SIGTERM)
        try await database.drop()
    }

    @Test("a 60 s database outage, twice the keep-alive: the instance stays `online` (database `unavailable`), gives held batches back to the broker, and stores everything once when the database returns")
    func longOutage() async throws {
        // The default keep-alive of 30 s: the broker would drop a silent connection after 45 s.
        let service = try await ServiceUnderTest.start(environment: ["MORPHEUS_BROKER_KEEP_ALIVE_SECONDS": "30"])
        let (database, instance) = (service.database, service.instance)
        let editor = try await Editor(prefix: instance.prefix)
        func statuses() -> [ServiceStatus] { service.statuses }

        let before = (0..<20).map { Editor.correction(index: $0, user: user) }
        for correction in before { try editor.publish(correction, user: user) }
        try await waitUntil("the first corrections answered") { editor.answered.count == before.count }

        try await database.setReachable(false)
        let outageStarted = ContinuousClock.now
        let during = (20..<70).map { Editor.correction(index: $0, user: user) }
        for correction in during { try editor.publish(correction, user: user) }
        try await waitUntil("the status to show the outage", timeout: .seconds(15)) { statuses().last?.database == .unavailable }
        // The outage lasts 60 s, longer than the broker's 1.5 × keep-alive; the instance must
        // look alive all along.
        while ContinuousClock.now - outageStarted < .seconds(60) {
            #expect(statuses().allSatisfy { $0.state == .online }, "an instance waiting for its database is not offline")
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(editor.answered.count == before.count, "nothing is answered while nothing can be stored")
        try await database.setReachable(true)

        // No republishing: what was held is delivered again by the broker.
        try await waitUntil("every correction answered", timeout: .seconds(60)) { editor.answered.count == 70 }
        #expect(during.allSatisfy { editor.statuses($0.id).first == "accepted" })
        #expect(try await count(database, "SELECT count(*) FROM feedback") == 70)
        try await waitUntil("the database reported available again") { statuses().last?.database == .available }
        #expect(statuses().allSatisfy { $0.state == .online })
        #expect((statuses().last?.counters.released ?? 0) > 0, "held batches were given back, not held past the keep-alive")
        #expect((statuses().last?.counters.retries ?? 0) > 0)

        await editor.shutdown()
        try await service.stop()
    }
}
