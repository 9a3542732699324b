import Foundation
import MQTT
import NIOConcurrencyHelpers
import Postgres
import TestSupport

/// Runs every phase: the echo ceiling, the service alone, the memory soak, two instances, and
/// the correctness check, and returns the report.
struct Benchmark {
    let plan: BenchPlan
    let host: String
    let port: Int
    let databaseURL: String
    let serviceBinary: URL
    let benchBinary: URL
    let factory: CorrectionFactory
    /// A server with PostgreSQL's stock settings, measured beside the tuned one.
    var stockDatabaseURL: String?
    /// Where callgrind dumps go.
    var output = URL(fileURLWithPath: "bench-results")

    private var echoPrefix: String { "bench-echo-\(factory.nonce)/v1" }
    private var servicePrefix: String { "bench-\(factory.nonce)/v1" }

    func run() async throws -> Report {
        var report = Report(plan: plan, nonce: factory.nonce)
        log("broker 127.0.0.1:\(port), run \(factory.nonce)")

        // The disk under PostgreSQL's WAL: probed alone first, watched during the latency runs.
        let walDirectory = try? Self.walDirectory(databaseURL)
        let outputDevice = DiskWatch.device(holding: output.path)
        let watch = (walDirectory.flatMap(DiskWatch.device(holding:)) ?? outputDevice).map { DiskWatch(device: $0) }
        report.disk = DiskReport(device: watch?.device, walDirectory: walDirectory)
        if plan.diskProbe > .zero {
            try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
            // On the WAL's disk: in the output folder when it is there, else beside the cluster
            // when this process may write there (root).
            let cluster = walDirectory.map { URL(fileURLWithPath: $0).deletingLastPathComponent().deletingLastPathComponent() }
            let probeFolder = outputDevice == watch?.device ? output
                : cluster.flatMap { access($0.path, W_OK) == 0 ? $0 : nil } ?? output
            log("disk: \(plan.diskProbe) of write + fdatasync, 400/s, in \(probeFolder.path)")
            report.disk.probe = try DiskProbe(directory: probeFolder, duration: plan.diskProbe).run()
            report.disk.probeDevice = DiskWatch.device(holding: probeFolder.path)
        }

        // 0. The work per correction, counted: instructions, WAL, statements, bytes.
        if let footprint = plan.footprint {
            report.footprints.append(try await FootprintMeter(
                label: "tuned", plan: footprint, host: host, port: port, adminURL: databaseURL, database: "morpheus_footprint",
                serviceBinary: serviceBinary, output: output).measure())
            if let stockDatabaseURL {
                var plain = footprint
                plain.callgrind = false
                report.footprints.append(try await FootprintMeter(
                    label: "stock", plan: plain, host: host, port: port, adminURL: stockDatabaseURL, database: "morpheus_footprint",
                    serviceBinary: serviceBinary, output: output).measure())
            }
            if footprint.callgrind {
                // The same workload with its texts in four other languages: what the Unicode
                // paths cost (its dump goes to a folder of its own).
                var multilingual = footprint
                multilingual.corpus = .multilingual
                report.footprints.append(try await FootprintMeter(
                    label: "multilingual", plan: multilingual, host: host, port: port, adminURL: databaseURL, database: "morpheus_footprint",
                    serviceBinary: serviceBinary, output: output.appendingPathComponent("multilingual")).measure())
            }
        }

        // 1. The ceiling: the same load against the do-nothing echo responder.
        var nextId = 0
        if !plan.skipCeiling { try await measureCeiling(into: &report, nextId: &nextId) }

        // 2. The service, one instance.
        // Its /metrics tells each latency run how many commits took long.
        let metricsPort = TestEnvironment.freePort()
        let first = try await startService("bench-1", environment: Self.metrics(on: metricsPort))
        let probe = ProcessProbe(pid: first.processIdentifier)
        let sampler = MemorySampler(probe: probe)
        let samplerTask = Task { await sampler.run() }
        var sets: [Int: LoadGenerator] = [:]
        // Latency first: at a fixed load the system is in its steady state for that load, not
        // still vacuuming and checkpointing after the maximum-load runs.
        let latencySet = try await connectionSet(&nextId, plan.latencyConnections, prefix: servicePrefix, checkStatus: true)
        sets[plan.latencyConnections] = latencySet
        report.serviceLatencyRuns = try await latencyRuns(latencySet, label: "service", watch: watch, database: databaseURL, metricsPort: metricsPort)
        for count in plan.connectionCounts {
            let generator: LoadGenerator
            if let existing = sets[count] {
                generator = existing
            } else {
                generator = try await connectionSet(&nextId, count, prefix: servicePrefix, checkStatus: true)
                sets[count] = generator
            }
            log("service: maximum throughput, \(count) connections")
            let cpuBefore = probe.cpuSeconds()
            let breakdownBefore = CPUBreakdown.sample()
            let result = try await generator.closedLoop(inFlight: plan.inFlight, warmup: plan.warmup, measure: plan.measure)
            let cpu = probe.cpuSeconds() - cpuBefore
            report.service[count] = result
            report.serviceCPUPer10k[count] = result.sent > 0 ? cpu / Double(result.sent) * 10_000 : 0
            report.cpuBreakdown[count] = (CPUBreakdown.sample() - breakdownBefore, result.sent)
            log("  \(Int(result.throughput)) receipts/s, p99 \(String(format: "%.1f", result.percentile(99))) ms")
        }
        // The ceiling again, right after: the machine's pace drifts over minutes (other tenants),
        // and the service is judged against the mean of the two, which brackets its runs.
        if !plan.skipCeiling {
            let echo = try await startEcho()
            report.ceilingAfter = try await echoThroughput(&nextId)
            try await echo.kill(SIGTERM)
        }
        let soakCount = plan.connectionCounts.max() ?? 16
        if plan.soak > .zero, let soakSet = sets[soakCount] {
            log("service: memory soak at maximum load, \(plan.soak)")
            sampler.startSeries()
            report.soak = try await soakSet.closedLoop(inFlight: plan.inFlight, warmup: .zero, measure: plan.soak)
            report.soakSeries = sampler.stopSeries()
        }
        report.peakRSS = probe.memory().peak

        // 3. Two instances on the same shared subscription.
        let second = try await startService("bench-2")
        if let generator = sets[soakCount] {
            log("service: two instances, maximum throughput, \(soakCount) connections")
            let cpuBefore = probe.cpuSeconds() + ProcessProbe(pid: second.processIdentifier).cpuSeconds()
            report.twoInstances = try await generator.closedLoop(inFlight: plan.inFlight, warmup: plan.warmup, measure: plan.measure)
            report.twoInstancesConnections = soakCount
            let cpu = probe.cpuSeconds() + ProcessProbe(pid: second.processIdentifier).cpuSeconds() - cpuBefore
            report.twoInstancesCPUPer10k = cpu / Double(max(1, report.twoInstances?.sent ?? 1)) * 10_000
        }

        // 4. Correctness: one row and one receipt per correction, nothing left in the outbox.
        report.correctness = try await checkStoredRows(expected: report.allServiceResults)
        for generator in sets.values { await generator.stop() }
        samplerTask.cancel()
        try await first.kill(SIGTERM, timeout: .seconds(30))
        try await second.kill(SIGTERM, timeout: .seconds(30))
        if plan.gateCostRounds > 0 { try await measureGateCost(into: &report, nextId: &nextId) }
        if stockDatabaseURL != nil { try await measureStock(into: &report, nextId: &nextId, watch: watch) }
        report.finishedAt = Date()
        return report
    }

    /// Every offered load `plan.latencyRepeats` times, each run kept on its own, with what the
    /// disk (`watch`), PostgreSQL's autovacuum (on `database`) and the service's commits (its
    /// `/metrics` on `metricsPort`) did meanwhile.
    private func latencyRuns(_ generator: LoadGenerator, label: String, watch: DiskWatch?, database: String,
                             metricsPort: Int) async throws -> [Double: [PhaseResult]] {
        var runs: [Double: [PhaseResult]] = [:]
        for load in plan.loads {
            for repeatIndex in 0..<plan.latencyRepeats {
                log("\(label): latency at \(Int(load))/s, run \(repeatIndex + 1) of \(plan.latencyRepeats)")
                let maintenanceBefore = try? Maintenance.snapshot(database)
                watch?.start()
                let warmup: Duration = .seconds(5)
                // The commits counted from the window's opening (after the warm-up).
                let commitsAtOpening = Task { () -> CommitDurations? in
                    try? await Task.sleep(for: warmup)
                    return CommitDurations.read(port: metricsPort)
                }
                var result = try await generator.openLoop(rate: load, warmup: warmup, measure: plan.latencyWindow)
                watch?.stop()
                if let opening = await commitsAtOpening.value, let closing = CommitDurations.read(port: metricsPort) {
                    result.commits = closing - opening
                }
                let window = result.windowStart...(result.windowStart + UInt64(plan.latencyWindow.nanoseconds))
                if let watch {
                    result.diskStalls = watch.stalls(in: window).map { (offset: Double(Int64($0.start) - Int64(result.windowStart)) / 1e9, ms: $0.milliseconds) }
                }
                if let maintenanceBefore, let after = try? Maintenance.snapshot(database) {
                    // Wall-clock time of the window's start, for the autovacuum timestamps.
                    let opened = Date().addingTimeInterval(-Double(monotonicNanos() - result.windowStart) / 1e9)
                    result.maintenance = after.since(maintenanceBefore).map { ($0.what, $0.finished.timeIntervalSince(opened)) }
                }
                runs[load, default: []].append(result)
                var line = "  p50 \(String(format: "%.2f", result.percentile(50))) ms, p99 \(String(format: "%.2f", result.percentile(99))) ms"
                if let stalls = result.diskStalls { line += ", disk stalls ≥ 10 ms: \(stalls.count)" }
                if let maintenance = result.maintenance {
                    line += ", autovacuum: " + (maintenance.isEmpty ? "none" : maintenance.map(\.what).joined(separator: ", "))
                }
                if let commits = result.commits { line += ", commits over 10 ms: \(Int(commits.over10ms)) of \(Int(commits.total))" }
                log(line)
            }
        }
        return runs
    }

    /// PostgreSQL's WAL directory (its data directory's `pg_wal`); needs a role that may read
    /// `data_directory` (a superuser or `pg_read_all_settings`).
    static func walDirectory(_ url: String) throws -> String? {
        let connection = try PostgresConnection(configuration: PostgresConfiguration(url: url, applicationName: "morpheus-bench"))
        defer { connection.close() }
        return try connection.query("SHOW data_directory").first.map { try $0.decode(0, as: String.self) + "/pg_wal" }
    }

    /// The same latency runs and the first throughput run against PostgreSQL's stock settings.
    private func measureStock(into report: inout Report, nextId: inout Int, watch: DiskWatch?) async throws {
        guard let stockDatabaseURL else { return }
        let prefix = "bench-\(factory.nonce)-stock/v1"
        let launcher = ServiceLauncher(host: host, port: port, databaseURL: stockDatabaseURL, serviceBinary: serviceBinary)
        let metricsPort = TestEnvironment.freePort()
        let service = try await launcher.start(name: "bench-stock-\(factory.nonce)", prefix: prefix,
                                               environment: Self.metrics(on: metricsPort))
        let latencySet = try await connectionSet(&nextId, plan.latencyConnections, prefix: prefix, checkStatus: true)
        report.stockLatencyRuns = try await latencyRuns(latencySet, label: "stock PostgreSQL", watch: watch, database: stockDatabaseURL,
                                                       metricsPort: metricsPort)
        await latencySet.stop()
        if let count = plan.connectionCounts.first {
            let generator = try await connectionSet(&nextId, count, prefix: prefix, checkStatus: true)
            log("stock PostgreSQL: maximum throughput, \(count) connections")
            report.stockThroughput[count] = try await generator.closedLoop(inFlight: plan.inFlight, warmup: plan.warmup, measure: plan.measure)
            await generator.stop()
        }
        try await service.kill(SIGTERM, timeout: .seconds(30))
    }

    /// Service CPU per correction at one offered load with the gate off and on, alternating
    /// (off, on, off, on, …), each instance on a topic prefix of its own.
    private func measureGateCost(into report: inout Report, nextId: inout Int) async throws {
        var off: [Double] = [], on: [Double] = []
        for round in 0..<plan.gateCostRounds {
            for enabled in [false, true] {
                let prefix = "bench-\(factory.nonce)-gate\(round)\(enabled ? "on" : "off")/v1"
                let service = try await startService("bench-gate\(round)\(enabled ? "on" : "off")", prefix: prefix,
                                                     environment: ["MORPHEUS_GATE_ENABLED": "\(enabled)"])
                let generator = try await connectionSet(&nextId, plan.latencyConnections, prefix: prefix, checkStatus: true)
                log("gate \(enabled ? "on" : "off"): \(Int(plan.gateCostRate))/s, round \(round + 1)")
                let probe = ProcessProbe(pid: service.processIdentifier)
                let before = probe.cpuSeconds()
                let result = try await generator.openLoop(rate: plan.gateCostRate, warmup: .seconds(2), measure: plan.latencyWindow)
                let cpu = (probe.cpuSeconds() - before) / Double(max(1, result.sent)) * 10_000
                (enabled ? { on.append(cpu) } : { off.append(cpu) })()
                log("  \(String(format: "%.2f", cpu)) CPU s per 10k (\(result.received) of \(result.sent) answered)")
                await generator.stop()
                try await service.kill(SIGTERM, timeout: .seconds(30))
            }
        }
        report.gateCost = (plan.gateCostRate, off, on)
    }

    /// The do-nothing echo responder driven exactly like the service: the broker's round-trip ceiling.
    private func measureCeiling(into report: inout Report, nextId: inout Int) async throws {
        let echo = try await startEcho()
        report.ceiling = try await echoThroughput(&nextId)
        let echoLatency = try await connectionSet(&nextId, plan.latencyConnections, prefix: echoPrefix, checkStatus: false)
        for load in plan.loads {
            log("echo: latency at \(Int(load))/s")
            report.ceilingLatency[load] = try await echoLatency.openLoop(rate: load, warmup: .seconds(2), measure: plan.latencyWindow)
        }
        await echoLatency.stop()
        try await echo.kill(SIGTERM)
    }

    /// The do-nothing responder the ceiling is measured against.
    private func startEcho() async throws -> ChildProcess {
        let echo = try ChildProcess(benchBinary, arguments: ["echo", "--host", host, "--port", "\(port)", "--prefix", echoPrefix,
                                                            "--client-id", "bench-echo-\(factory.nonce)"])
        try await echo.waitForLine("echo responder ready", timeout: .seconds(20)) { $0 == "ready" }
        return echo
    }

    /// The echo's maximum throughput at every connection count.
    private func echoThroughput(_ nextId: inout Int) async throws -> [Int: PhaseResult] {
        var results: [Int: PhaseResult] = [:]
        for count in plan.connectionCounts {
            let generator = try await connectionSet(&nextId, count, prefix: echoPrefix, checkStatus: false)
            log("echo: maximum throughput, \(count) connections")
            let result = try await generator.closedLoop(inFlight: plan.inFlight, warmup: plan.warmup, measure: plan.measure)
            results[count] = result
            log("  \(Int(result.throughput)) round trips/s")
            await generator.stop()
        }
        return results
    }

    /// Starts `count` publisher connections with ids from `nextId` on.
    private func connectionSet(_ nextId: inout Int, _ count: Int, prefix: String, checkStatus: Bool) async throws -> LoadGenerator {
        var connections: [PublisherConnection] = []
        for index in 0..<count {
            let connection = try PublisherConnection(index: index, of: count, id: nextId, host: host, port: port, prefix: prefix,
                                                     factory: factory, checkStatus: checkStatus)
            nextId += 1
            try await connection.start()
            connections.append(connection)
        }
        return LoadGenerator(connections: connections)
    }

    /// The environment that opens a service's `/metrics` on 127.0.0.1:`port` (its commit
    /// durations are read from there).
    private static func metrics(on port: Int) -> [String: String] {
        ["MORPHEUS_METRICS_PORT": "\(port)", "MORPHEUS_METRICS_HOST": "127.0.0.1"]
    }

    private func startService(_ name: String, prefix: String? = nil, environment: [String: String] = [:]) async throws -> ChildProcess {
        try await launcher.start(name: "\(name)-\(factory.nonce)", prefix: prefix ?? servicePrefix, environment: environment)
    }

    private var launcher: ServiceLauncher {
        ServiceLauncher(host: host, port: port, databaseURL: databaseURL, serviceBinary: serviceBinary)
    }

    private func checkStoredRows(expected results: [PhaseResult]) async throws -> Correctness {
        var totals = PhaseResult()
        for result in results { totals.merge(result) }
        let connection = try PostgresConnection(configuration: PostgresConfiguration(url: databaseURL, applicationName: "morpheus-bench"))
        defer { connection.close() }
        // The outbox drains asynchronously; give it a bounded moment.
        try await waitUntil("outbox drained", timeout: .seconds(60)) {
            try connection.query("SELECT count(*) AS n FROM outbox_batches").first?.decode("n", as: Int.self) == 0
        }
        let row = try connection.query("""
            SELECT (SELECT count(*) FROM feedback) AS feedback, (SELECT count(DISTINCT feedback_id) FROM feedback) AS ids,
                   (SELECT count(*) FROM training_examples) AS examples, (SELECT count(*) FROM outbox_batches) AS outbox
            """).first
        return Correctness(
            sent: totals.sent, receipts: totals.received, duplicateReceipts: totals.duplicates, notAccepted: totals.notAccepted,
            rows: try row?.decode("feedback", as: Int.self) ?? -1, distinctIds: try row?.decode("ids", as: Int.self) ?? -1,
            trainingExamples: try row?.decode("examples", as: Int.self) ?? -1, outboxLeft: try row?.decode("outbox", as: Int.self) ?? -1
        )
    }
}

/// Starts service instances and waits for their retained status to say `online`.
struct ServiceLauncher: Sendable {
    let host: String
    let port: Int
    let databaseURL: String
    let serviceBinary: URL

    /// `wrapper` runs the service under another program (valgrind), its arguments first.
    func start(name instance: String, prefix: String, environment: [String: String] = [:],
               wrapper: (executable: URL, arguments: [String])? = nil) async throws -> ChildProcess {
        let arguments = [
            "--instance-id", instance, "--topic-prefix", prefix, "--database-url", databaseURL,
            "--broker-host", host, "--broker-port", "\(port)", "--log-level", "warning",
        ]
        let merged = environment.merging(["MORPHEUS_BROKER_SESSION_EXPIRY_SECONDS": "120"]) { $1 }
        let process = if let wrapper {
            try ChildProcess(wrapper.executable, arguments: wrapper.arguments + [serviceBinary.path] + arguments, environment: merged)
        } else {
            try ChildProcess(serviceBinary, arguments: arguments, environment: merged)
        }
        try await waitOnline(instance: instance, process: process, prefix: prefix, timeout: wrapper == nil ? .seconds(60) : .seconds(300))
        log("service \(instance) online (pid \(process.processIdentifier))")
        return process
    }

    /// Waits for the instance's retained status to say `online`.
    private func waitOnline(instance: String, process: ChildProcess, prefix: String, timeout: Duration) async throws {
        let client = try MQTTClient(configuration: MQTTClientConfiguration(host: host, port: port, clientID: "bench-watch-\(instance)"))
        client.start()
        defer { Task { await client.shutdown() } }
        try await client.waitUntilConnected(timeout: .seconds(10))
        let online = NIOLockedValueBox(false)
        let consumer = Task {
            for await batch in client.batches {
                if batch.messages.contains(where: { String(decoding: $0.payload, as: UTF8.self).contains("\"state\":\"online\"") }) {
                    online.withLockedValue { $0 = true }
                }
                batch.acknowledge()
            }
        }
        defer { consumer.cancel() }
        try await client.subscribe("\(prefix)/status/\(instance)")
        try await waitUntil("\(instance) online", timeout: timeout) {
            if !process.isRunning { throw ServiceExited(output: process.lines) }
            return online.withLockedValue { $0 }
        }
    }
}

struct ServiceExited: Error, CustomStringConvertible {
    let output: [String]
    var description: String { "the service exited:\n" + output.suffix(20).joined(separator: "\n") }
}

extension LoadGenerator {
    func stop() async {
        for connection in connections { await connection.stop() }
    }
}

/// Samples the service's resident memory once a second; a series can be recorded for the soak.
final class MemorySampler: Sendable {
    private let probe: ProcessProbe
    private let state = NIOLockedValueBox<(recording: Bool, started: UInt64, series: [(seconds: Double, rss: Double)])>((false, 0, []))

    init(probe: ProcessProbe) {
        self.probe = probe
    }

    func run() async {
        while !Task.isCancelled {
            let rss = probe.memory().rss
            let now = monotonicNanos()
            state.withLockedValue {
                if $0.recording { $0.series.append((Double(now - $0.started) / 1e9, rss)) }
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    func startSeries() {
        state.withLockedValue { $0 = (true, monotonicNanos(), []) }
    }

    func stopSeries() -> [(seconds: Double, rss: Double)] {
        state.withLockedValue {
            $0.recording = false
            return $0.series
        }
    }
}

func log(_ message: String) {
    FileHandle.standardError.write(Data("[bench \(Date().formatted(.iso8601.time(includingFractionalSeconds: false)))] \(message)\n".utf8))
}
