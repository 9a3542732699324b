import ArgumentParser
import Foundation
import MorpheusCore
import MorpheusService
import MorpheusStorage

/// `morpheus retention …`: the retention policy the service runs on its schedule
/// (`docs/privacy.md#retention`), by hand.
struct RetentionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retention",
        abstract: "Archive old corrections' content and delete expired dead letters, as the configured policy says.",
        subcommands: [Run.self, Archives.self, Restore.self]
    )

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run the policy now (or, with --dry-run, show what it would do).")
        @OptionGroup var database: DatabaseOptions
        @Flag(help: "Change nothing; print what a run would archive and delete.") var dryRun = false
        @Option(help: "Apply the policy as of this instant (RFC 3339), e.g. to preview next month.") var asOf: String?
        @Flag(help: "Print the report as JSON.") var json = false

        func run() async throws {
            var now = Date()
            if let asOf {
                guard let instant = RFC3339.parse(asOf) else { throw ValidationError("--as-of \(asOf.debugDescription) is not an RFC 3339 instant") }
                now = instant
            }
            let (configuration, pool) = try await database.load()
            defer { Task { await pool.close() } }
            let store = RetentionStore(pool: pool)
            let report: RetentionReport
            if dryRun {
                report = try await store.plan(configuration.retention, now: now)
            } else {
                guard let done = try await store.run(configuration.retention, now: now) else {
                    print("another instance is running the retention policy; nothing done")
                    throw ExitCode(3)
                }
                report = done
            }
            if json {
                print(report.json.serializedString)
                return
            }
            let policy = configuration.retention
            func days(_ value: Int?) -> String { value.map { "\($0) days" } ?? "never" }
            printFields([
                ("as of", RFC3339.format(now)),
                (dryRun ? "would archive (in a dataset, older than \(days(policy.archiveAfterDaysInDataset)))" : "archived (in a dataset)", "\(report.archivedInDataset)"),
                (dryRun ? "would archive (older than \(days(policy.archiveAfterDays)))" : "archived (by age)", "\(report.archivedByAge)"),
                (dryRun ? "archives it would write" : "archives written", "\(report.archives)"),
                ("content bytes in the hot tables", "\(report.hotContentBytes)"),
            ] + (dryRun ? [] : [("bytes of the archives", "\(report.archiveBytes)")]) + [
                (dryRun ? "dead letters it would delete (older than \(days(policy.deadLetterDays)))" : "dead letters deleted", "\(report.deadLetters)"),
            ])
        }
    }

    struct Archives: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the archives (their manifests).")
        @OptionGroup var database: DatabaseOptions
        @Flag(help: "Print a JSON array.") var json = false

        func run() async throws {
            let (_, pool) = try await database.load()
            defer { Task { await pool.close() } }
            let archives = try await RetentionStore(pool: pool).archives()
            func instant(_ date: Date?) -> String { date.map(RFC3339.format) ?? "-" }
            if json {
                print(JSONValue.array(archives.map { a in
                    .object([("id", .number(Double(a.id))), ("policy", .string(a.policy)), ("createdAt", .string(RFC3339.format(a.createdAt))),
                             ("rowCount", .number(Double(a.rowCount))), ("firstReceivedAt", a.firstReceivedAt.map { .string(RFC3339.format($0)) } ?? .null),
                             ("lastReceivedAt", a.lastReceivedAt.map { .string(RFC3339.format($0)) } ?? .null), ("sha256", .string(a.sha256)),
                             ("storedBytes", .number(Double(a.storedBytes)))])
                }).serializedString)
                return
            }
            printTable([["ARCHIVE", "POLICY", "CORRECTIONS", "RECEIVED FROM", "RECEIVED TO", "BYTES", "CREATED", "SHA256"]] + archives.map { a in
                ["\(a.id)", a.policy, "\(a.rowCount)", instant(a.firstReceivedAt), instant(a.lastReceivedAt), "\(a.storedBytes)", RFC3339.format(a.createdAt), a.sha256]
            })
            if archives.isEmpty { print("(no archives)") }
        }
    }

    struct Restore: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Put an archive's content back into the hot tables (the next run archives it again if the policy still says so).")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The archive id.") var archive: Int

        func run() async throws {
            let (_, pool) = try await database.load()
            defer { Task { await pool.close() } }
            let restored = try await RetentionStore(pool: pool).restore(archive: archive)
            print("restored \(restored) corrections from archive \(archive)")
            if restored == 0 { throw ExitCode(1) }
        }
    }
}
