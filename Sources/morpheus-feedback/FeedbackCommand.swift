import ArgumentParser
import Foundation
import CMalloc
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
        Self.boundMallocCache()
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

    /// glibc raises its mmap threshold to the largest block freed so far (up to 32 MiB) and
    /// keeps twice that free at the top of each heap before trimming; with a batch's large
    /// buffers freed on a few arenas, the process then holds megabytes it does not use. Fixed
    /// thresholds return them (docs/operations.md, "Memory"). Either variable set in the
    /// environment wins: glibc read it at start.
    static func boundMallocCache() {
        let environment = ProcessInfo.processInfo.environment
        guard environment["MALLOC_MMAP_THRESHOLD_"] == nil, environment["MALLOC_TRIM_THRESHOLD_"] == nil else { return }
        _ = mallopt(M_MMAP_THRESHOLD, 128 << 10)
        _ = mallopt(M_TRIM_THRESHOLD, 128 << 10)
    }
}
