import ArgumentParser
import Foundation
import MorpheusCore
import MQTT
import Postgres
import TestSupport

/// `morpheus-bench`: measures the service against the broker's own round-trip ceiling.
@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "morpheus-bench",
        abstract: "Benchmark the feedback service end to end (see docs/performance.md).",
        subcommands: [RunCommand.self, FootprintCommand.self, EchoCommand.self, CorpusCommand.self, SeedCommand.self, StorageCommand.self],
        defaultSubcommand: RunCommand.self
    )
}

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run the whole benchmark and write its report.")

    @Option(help: "Broker host.") var brokerHost = "127.0.0.1"
    @Option(help: "Broker port.") var brokerPort = 18830
    @Option(help: "PostgreSQL URL of an existing database; the benchmark creates its own database beside it.")
    var databaseUrl: String
    @Option(help: "Name of the benchmark's database (dropped and created anew).") var benchDatabase = "morpheus_bench"
    @Option(help: "The service executable (default: morpheus-feedback beside this one).") var serviceBinary: String?
    @Option(help: "Publisher connection counts for the throughput runs.") var connections = "4,16"
    @Option(help: "Corrections unanswered at once across all connections in the throughput runs.") var inFlight = 1024
    @Option(help: "Offered loads (corrections/s) for the latency runs.") var loads = "100,1000,5000"
    @Option(help: "Publisher connections in the latency runs.") var latencyConnections = 4
    // Many users, as in production: 128 users at thousands per second would each be a `burst`.
    @Option(help: "Distinct users the corrections come from.") var users = 100_000
    @Option(help: "Seconds before a measurement window.") var warmupSeconds = 5
    @Option(help: "Seconds of each throughput window.") var measureSeconds = 20
    @Option(help: "Seconds of each latency window.") var latencySeconds = 15
    @Option(help: "Seconds of the memory soak at maximum load (0 skips it).") var soakSeconds = 300
    @Option(help: "Folder for result.json, result.md and latency.svg.") var output = "bench-results"
    @Flag(help: "Skip the echo ceiling (for quick iterations on the service).") var skipCeiling = false
    @Option(help: "Rounds of the gate-cost measurement (gate off, then on, each a latency window long; 0 skips it).") var gateCostRounds = 2
    @Option(help: "Offered load (corrections/s) of the gate-cost measurement.") var gateCostRate = 2000.0
    @Flag(help: "Short windows (5 s, soak 30 s): a smoke run, not a measurement.") var quick = false
    @Option(help: "Runs of each latency measurement (each run's percentiles are reported).") var latencyRepeats = 3
    @Option(help: "PostgreSQL URL of a server with stock settings, measured beside --database-url.") var stockDatabaseUrl: String?
    @Option(help: "Corrections counted for the work per correction (0 skips it).") var footprintCorrections = 5000
    @Flag(help: "Count the service's instructions with valgrind's callgrind (slow: about 90 s).") var callgrind = false
    @Option(help: "Seconds of the disk probe (8 KiB written and fdatasynced 400 times a second, nothing else running; 0 skips it).")
    var diskProbeSeconds = 20

    func run() async throws {
        var plan = BenchPlan(
            connectionCounts: connections.split(separator: ",").compactMap { Int($0) },
            inFlight: inFlight, loads: loads.split(separator: ",").compactMap { Double($0) },
            latencyConnections: latencyConnections, warmup: .seconds(warmupSeconds), measure: .seconds(measureSeconds),
            latencyWindow: .seconds(latencySeconds), soak: .seconds(soakSeconds), skipCeiling: skipCeiling,
            gateCostRounds: gateCostRounds, gateCostRate: gateCostRate, latencyRepeats: max(1, latencyRepeats),
            footprint: footprintCorrections > 0 ? FootprintPlan(corrections: footprintCorrections, callgrind: callgrind) : nil,
            diskProbe: .seconds(diskProbeSeconds)
        )
        if quick {
            plan.warmup = .seconds(2)
            plan.measure = .seconds(5)
            plan.latencyWindow = .seconds(5)
            plan.soak = .seconds(min(soakSeconds, 30))
            plan.diskProbe = .seconds(min(diskProbeSeconds, 5))
        }
        guard !plan.connectionCounts.isEmpty, !plan.loads.isEmpty else { throw ValidationError("--connections and --loads need numbers") }
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let service = serviceBinary.map { URL(fileURLWithPath: $0) }
            ?? executable.deletingLastPathComponent().appendingPathComponent("morpheus-feedback")
        guard FileManager.default.isExecutableFile(atPath: service.path) else {
            throw ValidationError("service executable not found: \(service.path) (build it with swift build -c release)")
        }
        let benchURL = try Self.databaseURL(databaseUrl, replacingNameWith: benchDatabase)
        try Self.recreateDatabase(adminURL: databaseUrl, name: benchDatabase)

        var stockURL: String?
        if let stockDatabaseUrl {
            stockURL = try Self.databaseURL(stockDatabaseUrl, replacingNameWith: benchDatabase)
            try Self.recreateDatabase(adminURL: stockDatabaseUrl, name: benchDatabase)
        }
        let bench = Benchmark(
            plan: plan, host: brokerHost, port: brokerPort, databaseURL: benchURL, serviceBinary: service,
            benchBinary: executable, factory: CorrectionFactory(userCount: users, nonce: Self.nonce()),
            stockDatabaseURL: stockURL, output: URL(fileURLWithPath: output)
        )
        let report = try await bench.run()
        let folder = URL(fileURLWithPath: output)
        try report.write(to: folder)
        print(report.markdown)
        print("Written: \(folder.path)/result.json, result.md, latency.svg")
        if !report.correct { throw ExitCode(1) }
    }

    /// Eight hex digits (the first group of the corrections' ids) beginning and ending with a
    /// letter. The run's tag is in every correction's text, followed by connection and sequence
    /// numbers: a nonce of digits only (one run in 43) made `31068646-24-0` ten digits or more
    /// in groups, a phone number to the quality gate, which rightly held 85 % of that run's
    /// corrections as `pii`. A letter at each end keeps its digits apart from those numbers.
    static func nonce() -> String {
        let letters = Array("abcdef"), digits = Array("0123456789abcdef")
        return String([letters.randomElement()!] + (0..<6).map { _ in digits.randomElement()! } + [letters.randomElement()!])
    }

    /// The same server and credentials, another database.
    static func databaseURL(_ url: String, replacingNameWith name: String) throws -> String {
        guard var components = URLComponents(string: url), components.scheme?.hasPrefix("postgres") == true else {
            throw ValidationError("--database-url must be a postgres:// URL")
        }
        components.path = "/" + name
        guard let result = components.string else { throw ValidationError("--database-url cannot be rewritten") }
        return result
    }

    static func recreateDatabase(adminURL: String, name: String) throws {
        let connection = try PostgresConnection(configuration: PostgresConfiguration(url: adminURL, applicationName: "morpheus-bench"))
        defer { connection.close() }
        let quoted = "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        try connection.execute(script: "DROP DATABASE IF EXISTS \(quoted) WITH (FORCE)")
        try connection.execute(script: "CREATE DATABASE \(quoted)")
    }
}

struct BenchPlan: Sendable {
    var connectionCounts: [Int]
    var inFlight: Int
    var loads: [Double]
    var latencyConnections: Int
    var warmup: Duration
    var measure: Duration
    var latencyWindow: Duration
    var soak: Duration
    var skipCeiling = false
    var gateCostRounds = 2
    var gateCostRate = 2000.0
    var latencyRepeats = 3
    var footprint: FootprintPlan?
    var diskProbe: Duration = .seconds(20)
}
