import Foundation
import MorpheusCore
import Postgres
import Testing
import TestSupport

/// The broker restarting under load: the service must subscribe again after every CONNACK
/// (Mosquitto restores persistent sessions without their shared subscriptions), and the editors'
/// republish-until-receipt covers what was published while no subscription existed.
@Suite("Broker restarts under load")
struct BrokerRestartTests {
    @Test("1,500 corrections from three persistent editors at 150/s, the broker restarted at 3 s (SIGTERM) and killed at 6.5 s: every one stored once and answered")
    func restartsUnderLoad() async throws {
        try await PrivateBroker.with(restartsUnderLoad)
    }

    private func restartsUnderLoad(_ broker: PrivateBroker) async throws {
        let database = try await ScratchDatabase.create()
        let instance = Instance()
        let status = try watchStatus(instance, brokerPort: broker.port)
        let service = try startService(instance, databaseURL: database.url, brokerPort: broker.port)
        try await waitUntil("service online", timeout: .seconds(30)) { status.lines.contains { $0.contains("\"online\"") } }

        let users = ["ed-a", "ed-b", "ed-c"]
        var editors: [Editor] = []
        for _ in users { editors.append(try await Editor(prefix: instance.prefix, port: broker.port, persistent: true)) }
        let total = 1500
        let corrections = (0..<total).map { Editor.correction(index: $0, user: users[$0 % 3]) }
        func send(_ index: Int) throws { try editors[index % 3].publish(corrections[index], user: users[index % 3]) }

        let start = ContinuousClock.now
        var restarted = false, killed = false
        for index in 0..<total {
            try send(index)
            // 150/s
            try await Task.sleep(until: start + .milliseconds(index * 1000 / 150))
            let elapsed = ContinuousClock.now - start
            if !restarted, elapsed >= .seconds(3) {
                restarted = true
                try await broker.stop()
                try await broker.start()
            }
            if !killed, elapsed >= .milliseconds(6500) {
                killed = true
                try await broker.kill()
                try await broker.start()
            }
        }
        #expect(restarted && killed)

        func answered(_ index: Int) -> Bool { !editors[index % 3].statuses(corrections[index].id).isEmpty }
        var interval = Duration.seconds(2)
        var nextRepublish = ContinuousClock.now + interval
        try await waitUntil("every correction answered", timeout: .seconds(150)) {
            let missing = (0..<total).filter { !answered($0) }
            if missing.isEmpty { return true }
            if ContinuousClock.now >= nextRepublish {
                for index in missing { try send(index) }
                interval = min(interval * 2, .seconds(8))
                nextRepublish = ContinuousClock.now + interval
            }
            return false
        }
        let pool = PostgresPool(configuration: database.configuration, size: 1)
        let stored = try await pool.withConnection { try $0.query("SELECT count(*) FROM feedback").first!.decode(0, as: Int.self) }
        #expect(stored == total)
        let statuses = Set((0..<total).flatMap { editors[$0 % 3].statuses(corrections[$0].id) })
        #expect(statuses.isSubset(of: ["accepted", "duplicate"]))

        try await service.kill(SIGTERM, timeout: .seconds(15))
        for editor in editors { await editor.shutdown() }
        try await status.kill(SIGTERM)
        await pool.close()
        try await database.drop()
    }
}
