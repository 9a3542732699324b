import ArgumentParser

/// `morpheus`: the operator and developer command line. Each subcommand is thin; the work is
/// in the libraries.
@main
struct MorpheusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "morpheus",
        abstract: "Talk to a running Morpheus feedback service over MQTT.",
        subcommands: [PublishCommand.self, StatusCommand.self, GateCommand.self, ReviewCommand.self, ContributorsCommand.self, PrivacyCommand.self, DatasetCommand.self, RetentionCommand.self, ReportCommand.self]
    )
}

/// Where the broker is and which topic prefix the service uses.
struct BrokerOptions: ParsableArguments {
    @Option(help: "Broker host.")
    var host: String = "127.0.0.1"

    @Option(help: "Broker port.")
    var port: Int = 18830

    @Option(help: "Topic prefix of the wire contract.")
    var prefix: String = "morpheus/v1"

    @Option(help: "Broker user name.")
    var username: String?

    @Option(help: "Broker password (prefer MORPHEUS_BROKER_PASSWORD).")
    var password: String?
}
