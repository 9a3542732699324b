import Foundation
import Logging
import Metrics
import Prometheus
import MQTT
import MorpheusCore
import MorpheusStorage
import Postgres
import ServiceLifecycle

/// Assembles the running service from its configuration.
///
/// Services start together and stop in reverse order on SIGTERM/SIGINT: status (`offline`),
/// then the broker connections (clean DISCONNECT), then the database pool. Two connections per
/// instance: the consuming one, paused while a batch is being committed, and one that publishes
/// receipts, events and the status (with the last will), whose keep-alive never stops.
public struct FeedbackApplication: Sendable {
    public let configuration: ServiceConfiguration
    public let logger: Logger

    public init(configuration: ServiceConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    public func run() async throws {
        logger.info("starting morpheus-feedback \(morpheusVersion)", metadata: configuration.summary)
        // Metrics: a Prometheus registry behind swift-metrics, bootstrapped once per process.
        let registry = PrometheusCollectorRegistry()
        if configuration.metricsPort > 0 { MetricsSystem.bootstrap(ServiceMetrics.prometheusFactory(registry: registry)) }
        let metrics = ServiceMetrics()
        let board = StatusBoard(instanceID: configuration.instanceID, version: morpheusVersion, metrics: metrics)
        let will = board.snapshot(state: .offline).encoded()
        let client = try MQTTClient(configuration: configuration.mqttConfiguration())
        let publisher = try MQTTClient(configuration: configuration.publisherConfiguration(lastWill: will))
        let pool = PostgresPool(configuration: try configuration.postgresConfiguration(), size: configuration.database.poolSize) { waited in
            let (seconds, attoseconds) = waited.components
            metrics.poolWait.recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        }
        // Housekeeping's own connection (retention, young tables' statistics): a long run never
        // takes one from the ingest.
        let housekeepingPool = PostgresPool(configuration: try configuration.postgresConfiguration(), size: 1)
        let databaseReady = Readiness()
        let store = FeedbackStore(pool: pool, owner: configuration.instanceID, outboxLease: .seconds(configuration.outboxLeaseSeconds))
        let status = StatusPublisher(client: publisher, board: board, topic: configuration.statusTopic)
        let outbox = OutboxQueue()
        let consuming = Readiness()
        let reputations = Reputations()
        try configuration.checkPseudonymSecret()
        if configuration.pseudonymSecret == ServiceConfiguration.developmentSecret {
            logger.warning("running with the public development pseudonym secret (privacy.allowDevelopmentSecret): pseudonyms protect nothing")
        }

        var services: [any Service] = [
            DatabaseService(pool: pool, migrator: try Migrator.bundled(), instanceID: configuration.instanceID,
                            ready: databaseReady, logger: logger),
            BrokerService(client: client, logger: logger),
            BrokerService(client: publisher, logger: logger),
            StatusService(publisher: status, interval: .seconds(configuration.statusIntervalSeconds),
                          databaseReady: databaseReady, pool: pool, logger: logger),
            PeriodicService(name: "contributor records refresh", interval: .seconds(configuration.reputationRefreshSeconds),
                            databaseReady: databaseReady, logger: logger) { [reviews = ReviewStore(pool: pool)] in
                try await reputations.refresh(from: reviews)
            },
            // A plan made while a table was empty must not outlive the table's first minutes.
            PeriodicService(name: "young tables' statistics", interval: .seconds(1), databaseReady: databaseReady,
                            logger: logger) { [statistics = PlannerStatistics(pool: housekeepingPool)] in
                let analyzed = try await statistics.refresh()
                if !analyzed.isEmpty { logger.info("young tables analyzed", metadata: ["tables": "\(analyzed.joined(separator: ","))"]) }
            },
            OutboxPublisher(client: publisher, store: store, queue: outbox, databaseReady: databaseReady, board: board, logger: logger),
            // Last in, first out: at shutdown ingest drains before anything else stops.
            IngestService(
                client: client, publisher: publisher, store: store, topics: ContractTopics(prefix: configuration.topicPrefix),
                shareGroup: configuration.shareGroup, databaseReady: databaseReady, board: board,
                transform: TrainingTransform(instructions: configuration.systemInstructions),
                pseudonymizer: Pseudonymizer(secret: Array(configuration.pseudonymSecret.utf8)), outbox: outbox,
                status: status, reputations: reputations, logger: logger, gate: configuration.gateEnabled ? QualityGate(expertReview: configuration.expertReview) : nil,
                consuming: consuming
            ),
        ]
        if configuration.metricsPort > 0 {
            let brokerConnected: @Sendable () -> Bool = { if case .connected = client.connectionState { true } else { false } }
            let databaseUsable: @Sendable () -> Bool = { databaseReady.isReady && board.databaseState == .available }
            // First in, last out: the endpoints answer (not ready) while the rest stops.
            services.insert(ObservabilityService(host: configuration.metricsHost, port: configuration.metricsPort, registry: registry, readiness: {
                ["database": databaseUsable(), "broker": brokerConnected() && consuming.isReady]
            }, logger: logger), at: 0)
            services.insert(PeriodicService(name: "metrics gauges", interval: .seconds(configuration.statusIntervalSeconds), databaseReady: databaseReady,
                                            logger: logger) {
                await metrics.sampleGauges(brokerConnected: brokerConnected(), databaseUsable: databaseUsable(), pool: pool)
            }, at: 1)
        }
        if configuration.retentionEnabled {
            // Before the ingest: started earlier, stopped later (nothing depends on its order).
            services.insert(PeriodicService(name: "retention", interval: .seconds(configuration.retentionIntervalSeconds), databaseReady: databaseReady,
                                            logger: logger) { [policy = configuration.retention, retention = RetentionStore(pool: housekeepingPool)] in
                guard let report = try await retention.run(policy, now: Date()), report.archived > 0 || report.deadLetters > 0 else { return }
                logger.info("retention", metadata: ["archived": "\(report.archived)", "archives": "\(report.archives)", "deadLetters": "\(report.deadLetters)"])
            }, at: 1)
        }
        let group = ServiceGroup(configuration: .init(
            services: services.map {
                .init(service: $0, successTerminationBehavior: .ignore, failureTerminationBehavior: .gracefullyShutdownGroup)
            },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        ))
        try await group.run()
        await housekeepingPool.close()
        logger.info("stopped")
    }
}
