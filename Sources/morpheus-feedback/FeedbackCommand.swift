import ArgumentParser
import Logging
import MorpheusService

/// `morpheus-feedback`: the service. Flags override environment variables, which override the
/// configuration file, which overrides the built-in defaults.
@main
struct FeedbackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "morpheus-feedback",
        abstract: "Captures corrections over MQTT, validates and stores them, and publishes training data.",
        discussion: "Every option can also be set in the configuration file or as MORPHEUS_* environment variables; see docs/configuration.md."
    )

    @Option(help: "JSON configuration file.")
    var config: String = "config/morpheus.json"

    @Option(help: "Stable instance id (MQTT client id and status topic).")
    var instanceId: String?

    @Option(help: "Broker host.")
    var brokerHost: String?

    @Option(help: "Broker port.")
    var brokerPort: Int?

    @Option(help: "PostgreSQL URL (postgres://user:password@host:port/database).")
    var databaseUrl: String?

    @Option(help: "Topic prefix of the wire contract.")
    var topicPrefix: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String?

    func run() async throws {
        var overrides: [String: String] = [:]
        overrides["instance.id"] = instanceId
        overrides["broker.host"] = brokerHost
        overrides["broker.port"] = brokerPort.map(String.init)
        overrides["database.url"] = databaseUrl
        overrides["topics.prefix"] = topicPrefix
        overrides["log.level"] = logLevel
        // The default file is optional; a file named explicitly must exist.
        let explicitFile = CommandLine.arguments.contains("--config")
        let settings = try await ServiceConfiguration.load(file: config, fileRequired: explicitFile, overrides: overrides)
        let level = settings.logLevel
        if settings.logJSON {
            LoggingSystem.bootstrap { JSONLogHandler(label: $0, level: level) }
        } else {
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        }
        let logger = Logger(label: "morpheus-feedback")
        try await FeedbackApplication(configuration: settings, logger: logger).run()
    }
}
