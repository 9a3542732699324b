import ArgumentParser
import Foundation
import MorpheusCore
import Postgres
import TestSupport

/// The work one correction costs, counted rather than timed, so that it holds on a shared
/// machine: instructions of the service process (callgrind), and PostgreSQL's WAL bytes,
/// statements, rows and stored bytes per correction.
///
/// The workload is fixed: a fresh database, the same corrections every run (fixed ids and
/// content, the benchmark's mix of modalities), published on one connection in lockstep
/// windows (the next window leaves when every receipt of the last is in), after a warm-up
/// that is not counted. Counting starts after a `CHECKPOINT`, so the full-page images of the
/// first change to each page are counted the same way every run.
struct FootprintPlan: Sendable {
    var corrections = 5000
    var window = 50
    var warmup = 500
    var callgrind = false
    /// English for the fixed workload; multilingual to see what texts outside ASCII cost.
    var corpus = CorrectionFactory.Corpus.english
}

struct Footprint: Sendable {
    struct Statement: Sendable {
        var query: String
        var calls: Int
        var rows: Int
        var walBytes: Int
    }

    struct Function: Sendable {
        var name: String
        var instructions: Int
    }

    var label: String
    var corrections = 0
    var window = 0
    var sent = 0
    var receipts = 0
    var notAccepted = 0
    var walBytes = 0
    var statements: [Statement] = []
    var statementsTracked = false
    /// Bytes (heap + indexes + TOAST) the measured part added, by table.
    var storage: [(table: String, bytes: Int)] = []
    /// Instructions of the service process over the measured part.
    var instructions: Int?
    var exclusiveTop: [Function] = []
    var inclusiveTop: [Function] = []
    var byObject: [Function] = []
    var callgrindFile: String?

    var per: Double { Double(max(1, corrections)) }
    var instructionsPerCorrection: Double? { instructions.map { Double($0) / per } }
    var walBytesPerCorrection: Double { Double(walBytes) / per }
    var statementsPerCorrection: Double { Double(statements.reduce(0) { $0 + $1.calls }) / per }
    var rowsPerCorrection: Double { Double(statements.reduce(0) { $0 + $1.rows }) / per }
    var storageBytesPerCorrection: Double { Double(storage.reduce(0) { $0 + $1.bytes }) / per }
    var complete: Bool { receipts == sent && notAccepted == 0 && sent == corrections }
}

/// Runs the fixed workload against a service instance of its own on a database of its own.
struct FootprintMeter {
    let label: String
    let plan: FootprintPlan
    let host: String
    let port: Int
    /// An existing database of the server; the meter creates `database` beside it.
    let adminURL: String
    let database: String
    let serviceBinary: URL
    let output: URL

    /// Fixed ids and content, so every run sends the same bytes.
    private var factory: CorrectionFactory {
        CorrectionFactory(userCount: 100_000, nonce: "f0071000", uniqueInstructions: false, corpus: plan.corpus)
    }

    func measure() async throws -> Footprint {
        try RunCommand.recreateDatabase(adminURL: adminURL, name: database)
        let url = try RunCommand.databaseURL(adminURL, replacingNameWith: database)
        let prefix = "footprint-\(label)/v1"
        var wrapper: (executable: URL, arguments: [String])?
        var binary = serviceBinary
        if plan.callgrind {
            // Valgrind 3.19 cannot read Swift's DWARF 5: a copy without debug information (the
            // symbol table stays, so functions keep their names), beside the original so its
            // resource bundles are found.
            binary = serviceBinary.deletingLastPathComponent().appendingPathComponent("morpheus-feedback-nodebug")
            try run("strip", ["--strip-debug", "-o", binary.path, serviceBinary.path])
            try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
            for old in (try? FileManager.default.contentsOfDirectory(atPath: output.path)) ?? [] where old.hasPrefix("callgrind.out") {
                try? FileManager.default.removeItem(at: output.appendingPathComponent(old))
            }
            wrapper = (try which("valgrind"), ["--tool=callgrind", "--callgrind-out-file=\(output.path)/callgrind.out"])
        }
        let launcher = ServiceLauncher(host: host, port: port, databaseURL: url, serviceBinary: binary)
        let service = try await launcher.start(name: "footprint-\(label)", prefix: prefix, wrapper: wrapper)
        defer { service.signal(SIGKILL) }
        let connection = try PostgresConnection(configuration: PostgresConfiguration(url: url, applicationName: "morpheus-bench"))
        defer { connection.close() }
        let tracked = (try? connection.execute(script: "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset()")) != nil
        let editor = try PublisherConnection(index: 0, of: 1, id: 0, host: host, port: port, prefix: prefix,
                                             factory: factory, checkStatus: true)
        try await editor.start()
        defer { Task { await editor.stop() } }

        var result = Footprint(label: label, corrections: plan.corrections, window: plan.window, statementsTracked: tracked)
        log("footprint (\(label)): warm-up, \(plan.warmup) corrections")
        editor.begin(mode: .openLoop, window: 0...UInt64.max)
        try await lockstep(editor, count: plan.warmup)
        _ = editor.finish()
        try await drained(connection)

        try connection.execute(script: "CHECKPOINT")
        let sizesBefore = try tableSizes(connection)
        let lsn = try connection.query("SELECT /* morpheus-bench */ pg_current_wal_lsn()::text AS lsn").first?.decode("lsn", as: String.self) ?? "0/0"
        if tracked { try connection.execute(script: "SELECT pg_stat_statements_reset()") }
        if plan.callgrind { try run("callgrind_control", ["--zero", "\(service.processIdentifier)"]) }

        log("footprint (\(label)): \(plan.corrections) corrections in windows of \(plan.window)\(plan.callgrind ? " under callgrind" : "")")
        editor.begin(mode: .openLoop, window: 0...UInt64.max)
        try await lockstep(editor, count: plan.corrections)
        let phase = editor.finish()
        log("footprint (\(label)): publish → receipt p50 \(String(format: "%.2f", phase.percentile(50))) ms, p99 \(String(format: "%.2f", phase.percentile(99))) ms")
        try await drained(connection)

        if plan.callgrind {
            try run("callgrind_control", ["--dump", "\(service.processIdentifier)"])
            try readCallgrind(into: &result)
        }
        result.walBytes = try connection.query("SELECT /* morpheus-bench */ pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::bigint AS bytes", [lsn])
            .first?.decode("bytes", as: Int.self) ?? 0
        if tracked {
            // This connection's own statements are not the service's.
            result.statements = try connection.query("""
                SELECT regexp_replace(query, '\\s+', ' ', 'g') AS query, calls, rows, wal_bytes::bigint AS wal
                FROM pg_stat_statements
                WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                  AND userid IS NOT NULL AND query NOT LIKE '%pg_stat_statements%' AND query NOT LIKE '%morpheus-bench%'
                ORDER BY calls DESC, wal DESC
                """).map {
                Footprint.Statement(query: try $0.decode("query", as: String.self), calls: try $0.decode("calls", as: Int.self),
                                    rows: try $0.decode("rows", as: Int.self), walBytes: try $0.decode("wal", as: Int.self))
            }
        }
        let sizesAfter = try tableSizes(connection)
        result.storage = sizesAfter.map { ($0.key, $0.value - (sizesBefore[$0.key] ?? 0)) }.filter { $0.1 != 0 }.sorted { $0.1 > $1.1 }
        result.sent = phase.sent
        result.receipts = phase.received
        result.notAccepted = phase.notAccepted
        try await service.kill(SIGTERM, timeout: .seconds(120))
        return result
    }

    /// Publishes `count` corrections, `plan.window` at a time, each window after the last is answered.
    private func lockstep(_ editor: PublisherConnection, count: Int) async throws {
        var left = count
        while left > 0 {
            let now = min(plan.window, left)
            editor.publish(now)
            left -= now
            try await waitUntil("receipts of a window", timeout: .seconds(300)) { editor.outstanding == 0 }
        }
    }

    /// The events have left: what the outbox publisher does is part of a correction's cost.
    private func drained(_ connection: PostgresConnection) async throws {
        try await waitUntil("outbox drained", timeout: .seconds(300)) {
            try connection.query("SELECT /* morpheus-bench */ count(*) AS n FROM outbox_batches").first?.decode("n", as: Int.self) == 0
        }
    }

    private func tableSizes(_ connection: PostgresConnection) throws -> [String: Int] {
        var sizes: [String: Int] = [:]
        for row in try connection.query("""
            SELECT /* morpheus-bench */ c.relname AS name, pg_total_relation_size(c.oid)::bigint AS bytes FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'
            """) {
            sizes[try row.decode("name", as: String.self)] = try row.decode("bytes", as: Int.self)
        }
        return sizes
    }

    /// Totals and the heaviest functions of the newest dump (names demangled).
    private func readCallgrind(into result: inout Footprint) throws {
        let dumps = try FileManager.default.contentsOfDirectory(atPath: output.path).filter { $0.hasPrefix("callgrind.out.") }
        guard let newest = dumps.max(by: { (Int($0.split(separator: ".").last ?? "") ?? 0) < (Int($1.split(separator: ".").last ?? "") ?? 0) })
        else { throw FootprintFailure("callgrind wrote no dump in \(output.path)") }
        let file = output.appendingPathComponent(newest).path
        result.callgrindFile = file
        let text = try String(contentsOfFile: file, encoding: .utf8)
        guard let totals = text.split(separator: "\n").first(where: { $0.hasPrefix("totals:") || $0.hasPrefix("summary:") }),
              let count = Int(totals.split(separator: " ").last ?? "") else { throw FootprintFailure("no totals in \(file)") }
        result.instructions = count
        let exclusive = try annotate(file, inclusive: false)
        // Thread entry frames show a whole thread's count even as "exclusive": not a cost.
        let entries = ["clone ", "start_thread ", "NSThreadStart", "Thread.main()", "ClientCore.run()", "partial apply for closure #2 in ClientCore.start()"]
        let costs = exclusive.filter { function in !entries.contains { function.name.contains($0) } }
        result.exclusiveTop = Array(costs.prefix(25))
        // Inclusive: the project's own functions, not the runtime and executor frames around them.
        let plumbing = ["withTaskCancellationHandler", "withChecked", "withUnsafe", "partial apply", "thunk", "Thread", "closure #"]
        result.inclusiveTop = Array(try annotate(file, inclusive: true).filter { function in
            !function.name.contains("'") && !plumbing.contains { function.name.contains($0) }
                && function.name.range(of: #"^(specialized )?(static )?[A-Z][A-Za-z]+\."#, options: .regularExpression) != nil
                && !function.name.hasPrefix("Swift.") && !function.name.hasPrefix("NS")
        }.prefix(30))
        var objects: [String: Int] = [:]
        for function in costs {
            let object = function.name.range(of: " [", options: .backwards).map { String(function.name[$0.upperBound...].dropLast()) } ?? "?"
            objects[URL(fileURLWithPath: object).lastPathComponent, default: 0] += function.instructions
        }
        result.byObject = objects.map { Footprint.Function(name: $0.key, instructions: $0.value) }.sorted { $0.instructions > $1.instructions }
    }

    private func annotate(_ file: String, inclusive: Bool) throws -> [Footprint.Function] {
        let listing = try capture("callgrind_annotate", ["--threshold=100", "--inclusive=\(inclusive ? "yes" : "no")", file])
        let demangled = (try? capture("swift", ["demangle", "--simplified"], input: listing)) ?? listing
        var functions: [Footprint.Function] = []
        for line in demangled.split(separator: "\n") {
            // "  1,234,567 (12.34%)  file:function [object]"
            let trimmed = line.drop { $0 == " " }
            guard let space = trimmed.firstIndex(of: " "), let count = Int(trimmed[..<space].replacingOccurrences(of: ",", with: "")),
                  let close = trimmed.firstIndex(of: ")") else { continue }
            var name = Substring(trimmed[trimmed.index(after: close)...].drop { $0 == " " })
            if name.hasPrefix("???:") { name = name.dropFirst(4) }
            if name.hasPrefix("PROGRAM TOTALS") { continue }
            // The object's folder says nothing the name does not.
            if let open = name.range(of: " [", options: .backwards), let slash = name[open.upperBound...].lastIndex(of: "/") {
                name = name[..<open.upperBound] + name[name.index(after: slash)...]
            }
            // A source file's path before the function name likewise.
            if let colon = name.firstIndex(of: ":"), name[..<colon].contains("/") { name = name[name.index(after: colon)...] }
            functions.append(Footprint.Function(name: String(name), instructions: count))
        }
        return functions
    }
}

struct FootprintFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

private func which(_ name: String) throws -> URL {
    for folder in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
        let candidate = URL(fileURLWithPath: String(folder)).appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
    }
    throw FootprintFailure("\(name) is not installed")
}

private func run(_ name: String, _ arguments: [String]) throws {
    _ = try capture(name, arguments)
}

/// Runs a program to completion and returns its standard output.
private func capture(_ name: String, _ arguments: [String], input: String? = nil) throws -> String {
    let process = Process()
    process.executableURL = try which(name)
    process.arguments = arguments
    let out = Pipe()
    process.standardOutput = out
    process.standardError = FileHandle.nullDevice
    let stdin = Pipe()
    if input != nil { process.standardInput = stdin }
    try process.run()
    if let input {
        // Written from another thread: the child's output pipe must be drained meanwhile.
        let writer = stdin.fileHandleForWriting
        let bytes = Data(input.utf8)
        Thread { writer.write(bytes); try? writer.close() }.start()
    }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw FootprintFailure("\(name) \(arguments.joined(separator: " ")) exited \(process.terminationStatus)") }
    return String(decoding: data, as: UTF8.self)
}

/// The figures of the code before the speed work (commit a277fb5), measured with the same
/// workload (`morpheus-bench footprint`): the targets are set against them.
enum FootprintBaseline {
    static let commit = "a277fb5"
    static let instructionsPerCorrection: Double? = 1_311_772
    static let walBytesPerCorrection: Double? = 5_073
}

extension Footprint {
    var markdown: String {
        var lines: [String] = []
        lines.append("### Work per correction (\(label)): \(corrections) corrections in lockstep windows of \(window)")
        lines.append("")
        lines.append("| per correction | measured |")
        lines.append("|---|---:|")
        if let ipc = instructionsPerCorrection { lines.append("| service instructions (callgrind) | \(grouped(Int(ipc.rounded()))) |") }
        lines.append("| WAL bytes | \(grouped(Int(walBytesPerCorrection.rounded()))) |")
        if statementsTracked {
            lines.append("| statements | \(String(format: "%.2f", statementsPerCorrection)) |")
            lines.append("| rows written or read by them | \(String(format: "%.2f", rowsPerCorrection)) |")
        }
        lines.append("| bytes stored (heap + indexes + TOAST) | \(grouped(Int(storageBytesPerCorrection.rounded()))) |")
        lines.append("")
        if statementsTracked, !statements.isEmpty {
            lines.append("| statement | calls per correction | rows per correction | WAL bytes per correction |")
            lines.append("|---|---:|---:|---:|")
            for statement in statements.prefix(15) {
                let query = statement.query.count > 90 ? String(statement.query.prefix(87)) + "…" : statement.query
                lines.append("| `\(query.replacingOccurrences(of: "|", with: "\\|"))` | \(String(format: "%.3f", Double(statement.calls) / per)) | "
                    + "\(String(format: "%.3f", Double(statement.rows) / per)) | \(grouped(Int((Double(statement.walBytes) / per).rounded()))) |")
            }
            lines.append("")
        }
        if !storage.isEmpty {
            lines.append("Stored bytes per correction by table: "
                + storage.map { "\($0.table) \(grouped(Int((Double($0.bytes) / per).rounded())))" }.joined(separator: ", ") + ".")
            lines.append("")
        }
        if let instructions {
            lines.append("Service instructions by object: " + byObject.prefix(8).map {
                "\($0.name) \(String(format: "%.1f", Double($0.instructions) / Double(max(1, instructions)) * 100)) %"
            }.joined(separator: ", ") + ".")
            lines.append("")
            lines.append("| exclusive instructions per correction | function |")
            lines.append("|---:|---|")
            for function in exclusiveTop.prefix(20) {
                lines.append("| \(grouped(Int((Double(function.instructions) / per).rounded()))) | `\(shorten(function.name))` |")
            }
            lines.append("")
            lines.append("| inclusive instructions per correction | function |")
            lines.append("|---:|---|")
            for function in inclusiveTop.prefix(20) {
                lines.append("| \(grouped(Int((Double(function.instructions) / per).rounded()))) | `\(shorten(function.name))` |")
            }
            lines.append("")
        }
        if !complete { lines.append("**Incomplete**: \(receipts) receipts for \(sent) corrections, \(notAccepted) not accepted.\n") }
        return lines.joined(separator: "\n")
    }

    var json: JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            ("label", .string(label)), ("corrections", .number(Double(corrections))), ("window", .number(Double(window))),
            ("receipts", .number(Double(receipts))), ("walBytesPerCorrection", .number(walBytesPerCorrection.rounded())),
            ("storageBytesPerCorrection", .number(storageBytesPerCorrection.rounded())),
            ("storageBytesByTable", .object(storage.map { ($0.table, .number(Double($0.bytes))) })),
        ]
        if let ipc = instructionsPerCorrection { members.append(("instructionsPerCorrection", .number(ipc.rounded()))) }
        if statementsTracked {
            members.append(("statementsPerCorrection", .number((statementsPerCorrection * 1000).rounded() / 1000)))
            members.append(("rowsPerCorrection", .number((rowsPerCorrection * 1000).rounded() / 1000)))
            members.append(("statements", .array(statements.map {
                .object([("query", .string($0.query)), ("calls", .number(Double($0.calls))), ("rows", .number(Double($0.rows))),
                         ("walBytes", .number(Double($0.walBytes)))])
            })))
        }
        if !exclusiveTop.isEmpty {
            members.append(("exclusiveTop", .array(exclusiveTop.map { .object([("function", .string($0.name)), ("instructions", .number(Double($0.instructions)))]) })))
            members.append(("byObject", .array(byObject.map { .object([("object", .string($0.name)), ("instructions", .number(Double($0.instructions)))]) })))
        }
        return .object(members)
    }
}

private func shorten(_ name: String) -> String {
    let clean = name.replacingOccurrences(of: "`", with: "'").replacingOccurrences(of: "|", with: "\\|")
    return clean.count > 140 ? String(clean.prefix(137)) + "…" : clean
}

func grouped(_ value: Int) -> String {
    let digits = String(abs(value))
    var out = ""
    for (offset, character) in digits.enumerated() {
        if offset > 0 && (digits.count - offset) % 3 == 0 { out += "," }
        out.append(character)
    }
    return (value < 0 ? "-" : "") + out
}

/// `morpheus-bench footprint`: the work per correction alone (docs/performance.md).
struct FootprintCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "footprint",
                                                    abstract: "Count the work per correction: service instructions (callgrind), WAL, statements, rows, bytes.")

    @Option(help: "Broker host.") var brokerHost = "127.0.0.1"
    @Option(help: "Broker port.") var brokerPort = 18830
    @Option(help: "PostgreSQL URL of an existing database; the meter creates its own database beside it.") var databaseUrl: String
    @Option(help: "Name of the meter's database (dropped and created anew).") var benchDatabase = "morpheus_footprint"
    @Option(help: "The service executable (default: morpheus-feedback beside this one).") var serviceBinary: String?
    @Option(help: "Corrections counted.") var corrections = 5000
    @Option(help: "Corrections per lockstep window.") var window = 50
    @Option(help: "Corrections before counting starts.") var warmup = 500
    @Flag(help: "Run the service under valgrind's callgrind and count its instructions.") var callgrind = false
    @Option(help: "The language of the text corrections: english (the fixed workload) or multilingual.") var corpus = "english"
    @Option(help: "A name for this measurement (e.g. the PostgreSQL configuration).") var label = "tuned"
    @Option(help: "Folder for the callgrind dumps and footprint.json.") var output = "bench-results"

    func run() async throws {
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let service = serviceBinary.map { URL(fileURLWithPath: $0) }
            ?? executable.deletingLastPathComponent().appendingPathComponent("morpheus-feedback")
        guard let corpus = CorrectionFactory.Corpus(rawValue: corpus) else {
            throw ValidationError("--corpus: one of \(CorrectionFactory.Corpus.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let meter = FootprintMeter(
            label: label, plan: FootprintPlan(corrections: corrections, window: window, warmup: warmup, callgrind: callgrind, corpus: corpus),
            host: brokerHost, port: brokerPort, adminURL: databaseUrl, database: benchDatabase, serviceBinary: service,
            output: URL(fileURLWithPath: output)
        )
        let result = try await meter.measure()
        print(result.markdown)
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        try Data(result.json.serialized()).write(to: URL(fileURLWithPath: output).appendingPathComponent("footprint-\(label).json"))
        if !result.complete { throw ExitCode(1) }
    }
}
