import Foundation
import Logging
import MQTT
import MorpheusCore
import MorpheusStorage
import Postgres
import ServiceLifecycle

/// The service's version, reported on its status topic.
public let morpheusVersion = "0.1.0"

/// Owns the PostgreSQL pool: applies migrations (retrying while the server is unreachable),
/// records the instance, and closes the pool last at shutdown.
struct DatabaseService: Service {
    let pool: PostgresPool
    let migrator: Migrator
    let instanceID: String
    let ready: Readiness
    let logger: Logger

    func run() async throws {
        do {
            try await migrateAndRegister()
        } catch is CancellationError {
            // Shut down while still waiting for the database: nothing to undo.
            await pool.close()
            return
        }
        do {
            try await pool.openAll()
        } catch {
            logger.warning("not every database connection opened; the rest open when first needed", metadata: ["error": "\(error)"])
        }
        ready.markReady()
        logger.info("database ready")
        try? await gracefulShutdown()
        _ = try? await pool.withConnection { [instanceID] connection in
            try connection.query("UPDATE service_instances SET stopped_at = now() WHERE instance_id = $1", [instanceID])
        }
        await pool.close()
    }

    private func migrateAndRegister() async throws {
        try await cancelWhenGracefulShutdown {
            var attempt = 0
            while true {
                do {
                    try await migrator.apply(to: pool, logger: logger)
                    try await pool.withConnection { [instanceID] connection in
                        try connection.query(
                            """
                            INSERT INTO service_instances (instance_id, version, started_at) VALUES ($1, $2, now())
                            ON CONFLICT (instance_id) DO UPDATE SET version = EXCLUDED.version, started_at = now(), stopped_at = NULL
                            """,
                            [instanceID, morpheusVersion]
                        )
                    }
                    return
                } catch let error as PostgresError where error.isConnectionFailure {
                    let delay = MQTTClientConfiguration.Backoff(initial: .milliseconds(500), maximum: .seconds(10)).delay(attempt: attempt)
                    attempt += 1
                    logger.warning("database unreachable; retrying", metadata: ["error": "\(error)", "retryIn": "\(delay)"])
                    try await Task.sleep(for: delay)
                }
            }
        }
    }
}

/// Owns the MQTT connection: starts it, logs its state changes, disconnects cleanly last.
struct BrokerService: Service {
    let client: MQTTClient
    let logger: Logger

    func run() async throws {
        client.start()
        let states = client.connectionStates()
        let logger = logger
        let watcher = Task {
            // The first element is the state before start(); only changes are news.
            for await state in states.dropFirst() {
                switch state {
                case .connected(let sessionPresent):
                    logger.info("broker connected", metadata: ["sessionPresent": "\(sessionPresent)"])
                case .disconnected(let reason) where reason == "disconnected":
                    logger.info("broker disconnected")
                case .disconnected(let reason):
                    logger.warning("broker connection lost", metadata: ["reason": "\(reason)"])
                case .connecting, .stopped:
                    logger.debug("broker \(state)")
                }
            }
        }
        try? await gracefulShutdown()
        await client.shutdown()
        watcher.cancel()
    }
}

/// Publishes this instance's retained status message.
struct StatusPublisher: Sendable {
    let client: MQTTClient
    let board: StatusBoard
    let topic: String

    private func message(_ requested: ServiceStatus.State) -> MQTTOutgoingMessage {
        // Once draining, the instance never reads as `online` again, whatever ticks late.
        let state = board.settle(requested)
        return MQTTOutgoingMessage(
            topic: topic, payload: board.snapshot(state: state).encoded(), qos: .atLeastOnce, retain: true,
            properties: MQTTPublishProperties(contentType: "application/json", payloadIsUTF8: true)
        )
    }

    /// Publishes and waits for the broker's acknowledgement.
    func publish(_ state: ServiceStatus.State) async throws { try await client.publish(message(state)) }

    /// Queues without waiting (for synchronous contexts such as shutdown handlers).
    func enqueue(_ state: ServiceStatus.State) throws { try client.enqueue(message(state)) }
}

/// Publishes the retained status: `online` once database and broker are up, again every
/// interval and whenever the database state changes, and `offline` at shutdown (the last will
/// covers a crash). Each interval it also checks the database, so an idle instance reports an
/// outage (or its end) too.
struct StatusService: Service {
    let publisher: StatusPublisher
    let interval: Duration
    let databaseReady: Readiness
    let pool: PostgresPool
    let logger: Logger

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            try await databaseReady.wait()
            try await publisher.client.waitUntilConnected(timeout: .seconds(3600 * 24 * 365))
            logger.info("online", metadata: ["status": "\(publisher.topic)"])
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    // The database state changed: say so now, not at the next tick.
                    for await _ in publisher.board.changes { try await publisher.publish(.online) }
                }
                group.addTask {
                    while true {
                        try await publisher.publish(.online)
                        try await Task.sleep(for: interval)
                        await probeDatabase()
                    }
                }
                try await group.next()
            }
        }
        do {
            try await withTimeout(.seconds(5)) { try await publisher.publish(.offline) }
            logger.info("offline")
        } catch {
            logger.warning("could not publish offline status; the last will covers it", metadata: ["error": "\(error)"])
        }
    }

    private func probeDatabase() async {
        do {
            _ = try await withTimeout(.seconds(5)) { try await pool.withConnection { try $0.query("SELECT 1").count } }
            publisher.board.databaseAvailable()
        } catch is CancellationError where Task.isCancelled {
        } catch {
            publisher.board.databaseFailed("\(error)", retried: false)
        }
    }
}

/// A job the instance repeats every `interval` once the database is ready (clean-ups,
/// refreshes). Any instance may run it: the jobs are idempotent. A failed run is logged and
/// tried again at the next interval.
struct PeriodicService: Service {
    let name: String
    let interval: Duration
    let databaseReady: Readiness
    let logger: Logger
    let work: @Sendable () async throws -> Void

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            try await databaseReady.wait()
            while true {
                do {
                    try await work()
                } catch {
                    logger.warning("\(name) failed; trying again later", metadata: ["error": "\(error)"])
                }
                try await Task.sleep(for: interval)
            }
        }
    }
}

/// Runs `body`, failing with `CancellationError` if it takes longer than `limit`.
func withTimeout<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            throw CancellationError()
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}
