import Foundation
import MorpheusService
import MorpheusCore
import Postgres
import Testing
import TestSupport

/// Drives the real `morpheus-feedback` executable and watches it with Eclipse's own
/// `mosquitto_sub`, so the service is not only tested against our own client.
@Suite("Service process end to end")
struct ServiceLifecycleTests {
    func statuses(_ watcher: ChildProcess) -> [ServiceStatus] {
        watcher.lines.compactMap { try? ServiceStatus.decode(Array($0.utf8)) }
    }

    @Test("the service migrates, publishes a retained `online`, and on SIGTERM `draining` then `offline`, exiting 0 within 10 s")
    func onlineThenCleanShutdown() async throws {
        let database = try await ScratchDatabase.create()
        let instance = Instance()
        let watcher = try watchStatus(instance)
        let service = try startService(instance, databaseURL: database.url)

        try await waitUntil("status online", timeout: .seconds(30)) { statuses(watcher).contains { $0.state == .online } }
        let online = try #require(statuses(watcher).first { $0.state == .online })
        #expect(online.instanceId == instance.id)
        #expect(online.schema == "morpheus.status/1")
        #expect(online.version == "0.1.0")
        #expect(online.counters == ServiceStatus.Counters())

        // A late subscriber gets the retained status at once.
        let late = try watchStatus(instance)
        try await waitUntil("retained status") { statuses(late).contains { $0.state == .online } }
        // The periodic refresh advances updatedAt.
        try await waitUntil("a refreshed status", timeout: .seconds(10)) {
            Set(statuses(watcher).map(\.updatedAt)).count >= 2
        }

        let pool = PostgresPool(configuration: database.configuration, size: 1)
        let recorded = try await pool.withConnection { [id = instance.id] connection in
            try connection.query("SELECT count(*) FROM service_instances WHERE instance_id = $1 AND stopped_at IS NULL", [id])
                .first!.decode(0, as: Int.self)
        }
        #expect(recorded == 1)

        try await service.kill(SIGTERM, timeout: .seconds(10))
        #expect(service.exitStatus == 0)
        try await waitUntil("status offline") { statuses(watcher).last?.state == .offline }
        // SIGTERM announces the drain first, then the final offline.
        let states = statuses(watcher).map(\.state)
        let draining = try #require(states.lastIndex(of: .draining))
        #expect(states[draining...].allSatisfy { $0 != .online })
        let stopped = try await pool.withConnection { [id = instance.id] connection in
            try connection.query("SELECT stopped_at IS NOT NULL FROM service_instances WHERE instance_id = $1", [id]).first!.decode(0, as: Bool.self)
        }
        #expect(stopped)

        try await watcher.kill(SIGTERM)
        try await late.kill(SIGTERM)
        await pool.close()
        try await database.drop()
        try await clearRetained(instance)
    }

    @Test("a SIGKILLed service is reported `offline` by its last will")
    func lastWillOnCrash() async throws {
        let database = try await ScratchDatabase.create()
        let instance = Instance()
        let watcher = try watchStatus(instance)
        let service = try startService(instance, databaseURL: database.url)
        try await waitUntil("status online", timeout: .seconds(30)) { statuses(watcher).contains { $0.state == .online } }
        try await service.kill(SIGKILL)
        try await waitUntil("last will", timeout: .seconds(15)) { statuses(watcher).last?.state == .offline }
        #expect(statuses(watcher).last?.instanceId == instance.id)
        try await watcher.kill(SIGTERM)
        try await database.drop()
        try await clearRetained(instance)
    }

    @Test("without a reachable database the service keeps retrying, never claims `online`, and still stops cleanly")
    func unreachableDatabase() async throws {
        let instance = Instance()
        let watcher = try watchStatus(instance)
        let url = "postgres://morpheus:x@127.0.0.1:\(TestEnvironment.freePort())/morpheus"
        let service = try startService(instance, databaseURL: url)
        try await service.waitForLine("a retry", timeout: .seconds(20)) { $0.contains("database unreachable") }
        #expect(!contains(statuses(watcher), .online))
        #expect(!service.lines.contains { $0.contains("x@") }, "the password leaked into the log")
        try await service.kill(SIGTERM, timeout: .seconds(10))
        #expect(service.exitStatus == 0)
        try await watcher.kill(SIGTERM)
        try await clearRetained(instance)
    }

    @Test("the service refuses to start with the public development pseudonym secret unless told it is a throw-away setup")
    func developmentSecretRefused() async throws {
        let instance = Instance()
        let url = "postgres://morpheus:x@127.0.0.1:\(TestEnvironment.freePort())/morpheus"
        let refused = try startService(instance, databaseURL: url, environment: ["MORPHEUS_PRIVACY_PSEUDONYM_SECRET": ServiceConfiguration.developmentSecret])
        let status = try await refused.waitForExit(timeout: .seconds(20))
        #expect(status != 0)
        #expect(refused.lines.contains { $0.contains("privacy.pseudonymSecret") && $0.contains("public development secret") }, "\(refused.lines)")
        let allowed = try startService(instance, databaseURL: url, environment: [
            "MORPHEUS_PRIVACY_PSEUDONYM_SECRET": ServiceConfiguration.developmentSecret, "MORPHEUS_PRIVACY_ALLOW_DEVELOPMENT_SECRET": "true",
        ])
        // Running: it got as far as retrying the (unreachable) database, after the warning.
        try await allowed.waitForLine("a retry", timeout: .seconds(20)) { $0.contains("database unreachable") }
        #expect(allowed.lines.contains { $0.contains("public development pseudonym secret") })
        try await allowed.kill(SIGTERM, timeout: .seconds(10))
        #expect(allowed.exitStatus == 0)
        try await clearRetained(instance)
    }

    private func contains(_ statuses: [ServiceStatus], _ state: ServiceStatus.State) -> Bool {
        statuses.contains { $0.state == state }
    }

    /// Removes the retained status so the broker does not keep test leftovers.
    func clearRetained(_ instance: Instance) async throws {
        let publisher = try ChildProcess(URL(fileURLWithPath: "/usr/bin/mosquitto_pub"), arguments: [
            "-h", "127.0.0.1", "-p", "\(TestEnvironment.brokerPort)", "-t", instance.statusTopic, "-r", "-n",
        ])
        #expect(try await publisher.waitForExit() == 0)
    }
}
