import Foundation
import Logging
import MQTT
import MorpheusStorage
import Postgres
import ServiceLifecycle

/// Assembles the running service from its configuration.
///
/// Services start together and stop in reverse order on SIGTERM/SIGINT: status (`offline`),
/// then the broker connection (clean DISCONNECT), then the database pool.
public struct FeedbackApplication: Sendable {
    public let configuration: ServiceConfiguration
    public let logger: Logger

    public init(configuration: ServiceConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    public func run() async throws {
        logger.info("starting morpheus-feedback \(morpheusVersion)", metadata: configuration.summary)
        let board = StatusBoard(instanceID: configuration.instanceID, version: morpheusVersion)
        let will = board.snapshot(state: .offline).encoded()
        let client = try MQTTClient(configuration: configuration.mqttConfiguration(lastWill: will))
        let pool = PostgresPool(configuration: try configuration.postgresConfiguration(), size: configuration.database.poolSize)
        let databaseReady = Readiness()

        let services: [any Service] = [
            DatabaseService(pool: pool, migrator: try Migrator.bundled(), instanceID: configuration.instanceID,
                            ready: databaseReady, logger: logger),
            BrokerService(client: client, logger: logger),
            StatusService(client: client, board: board, topic: configuration.statusTopic,
                          interval: .seconds(configuration.statusIntervalSeconds), databaseReady: databaseReady, logger: logger),
        ]
        let group = ServiceGroup(configuration: .init(
            services: services.map {
                .init(service: $0, successTerminationBehavior: .ignore, failureTerminationBehavior: .gracefullyShutdownGroup)
            },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        ))
        try await group.run()
        logger.info("stopped")
    }
}
