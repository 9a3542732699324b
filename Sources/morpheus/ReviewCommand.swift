import ArgumentParser
import Foundation
import Logging
import MorpheusCore
import MorpheusService
import MorpheusStorage
import Postgres

/// Where the reviewer commands find the database and the service's training settings: the
/// service's own configuration layers (file, MORPHEUS_* environment, flags).
struct DatabaseOptions: ParsableArguments {
    @Option(help: "The service's JSON configuration file.")
    var config: String = "config/morpheus.json"

    @Option(help: "PostgreSQL URL (prefer MORPHEUS_DATABASE_URL).")
    var databaseUrl: String?

    @Option(help: "The service's topic prefix, for the events these commands publish through the outbox.")
    var topicPrefix: String?

    func load() async throws -> (ServiceConfiguration, PostgresPool) {
        var overrides: [String: String] = [:]
        overrides["database.url"] = databaseUrl
        overrides["topics.prefix"] = topicPrefix
        let configuration = try await ServiceConfiguration.load(file: config, fileRequired: false, overrides: overrides)
        // Pseudonyms made here must be the service's.
        try configuration.checkPseudonymSecret()
        let pool = PostgresPool(configuration: try PostgresConfiguration(url: configuration.database.url, applicationName: "morpheus-review"), size: 1)
        return (configuration, pool)
    }
}

/// `morpheus review …`: the review queue for people.
struct ReviewCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "review",
        abstract: "List flagged corrections and decide about them.",
        subcommands: [List.self, Show.self, Approve.self, Reject.self, Escalate.self, Stats.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Corrections waiting for a decision, oldest first.")
        @OptionGroup var database: DatabaseOptions
        @Option(help: "Only items with this flag or review reason.") var flag: String?
        @Option(help: "Only this modality.") var modality: String?
        @Option(help: "Only this model version.") var modelVersion: String?
        @Option(help: "Only items flagged at least this many hours ago.") var olderThanHours: Int?
        @Option(help: "At most this many items.") var limit: Int = 100
        @Flag(help: "Print a JSON array.") var json = false

        func run() async throws {
            let (_, pool) = try await database.load()
            defer { Task { await pool.close() } }
            let items = try await ReviewStore(pool: pool).pending(flag: flag, modality: modality, modelVersion: modelVersion,
                                                                  olderThan: olderThanHours.map { .seconds($0 * 3600) }, limit: limit)
            if json {
                let array = JSONValue.array(items.map { item in
                    .object([("feedbackId", .string(item.feedbackId)), ("state", .string(item.state)), ("flags", .array(item.flags.map(JSONValue.string))),
                             ("reviewReasons", .array(item.reasons.map(JSONValue.string))), ("modality", .string(item.modality)), ("correctionType", .string(item.correctionType)), ("model", .string(item.model)),
                             ("modelVersion", .string(item.modelVersion)), ("quality", .number(item.quality)),
                             ("flaggedAt", .string(RFC3339.format(item.flaggedAt)))])
                })
                print(array.serializedString)
                return
            }
            let rows = [["FEEDBACK", "STATE", "FLAGS/REASONS", "MODALITY", "TYPE", "MODEL", "QUALITY", "FLAGGED"]] + items.map {
                [$0.feedbackId, $0.state, ($0.flags + $0.reasons).joined(separator: ","), $0.modality, $0.correctionType, "\($0.model)@\($0.modelVersion)",
                 "\($0.quality)", RFC3339.format($0.flaggedAt)]
            }
            printTable(rows)
            if items.isEmpty { print("(nothing waiting for review)") }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One item: both sides with the changes marked, its flags and its history.")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The correction's feedbackId.") var feedbackId: String

        func run() async throws {
            let (_, pool) = try await database.load()
            defer { Task { await pool.close() } }
            guard let detail = try await ReviewStore(pool: pool).detail(feedbackId.lowercased()) else {
                print("\(feedbackId) is not in the review queue")
                throw ExitCode(4)
            }
            let item = detail.listing, c = detail.correction
            print("\(item.feedbackId)  \(item.state)  flags: \(item.flags.joined(separator: ", "))"
                  + (item.reasons.isEmpty ? "" : "  review: \(item.reasons.joined(separator: ", "))") + "  quality: \(item.quality)")
            print("\(item.modality)/\(item.correctionType)  \(item.model)@\(item.modelVersion)  by \(detail.userId)  flagged \(RFC3339.format(item.flaggedAt))")
            print("target: \([c.target.comicId, c.target.sceneId, c.target.panelId, c.target.characterId].compactMap { $0 }.joined(separator: " / "))")
            if let prompt = c.generation.prompt, !prompt.isEmpty { print("prompt: \(prompt)") }
            switch (c.original, c.corrected) {
            case let (.text(original), .text(corrected)):
                let (before, after) = WordDiff.marked(original: original, corrected: corrected)
                print("original:  \(before)")
                print("corrected: \(after)")
            case let (.image(original), .image(corrected)):
                print("original uri:  \(original.uri)")
                print("corrected uri: \(corrected.uri)\(corrected.uri == original.uri ? " (same)" : "")")
                if let prompt = corrected.prompt { print("new prompt: \(prompt)") }
                if let instruction = corrected.instruction { print("instruction: \(instruction)") }
                for region in corrected.mask ?? [] { print("mask: x \(region.x) y \(region.y) w \(region.width) h \(region.height)") }
            case let (.layout(original), .layout(corrected)):
                for (name, layout) in [("original", original), ("corrected", corrected)] {
                    print("\(name): canvas \(layout.canvasWidth) × \(layout.canvasHeight)")
                    for panel in layout.panels {
                        print("  \(panel.id): x \(panel.x) y \(panel.y) w \(panel.width) h \(panel.height)\(panel.order.map { " order \($0)" } ?? "")")
                    }
                }
            default:
                break
            }
            for entry in detail.history {
                print("\(RFC3339.format(entry.at))  \(entry.decision) by \(entry.reviewer)\(entry.reason.map { ": \($0)" } ?? "")")
            }
        }
    }

    struct Stats: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Queue depth by flag, the oldest waiting item, decisions per reviewer.")
        @OptionGroup var database: DatabaseOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let (_, pool) = try await database.load()
            defer { Task { await pool.close() } }
            let stats = try await ReviewStore(pool: pool).statistics()
            let age = stats.oldestWaitingSince.map { Int(Date().timeIntervalSince($0)) }
            if json {
                print(JSONValue.object([
                    ("waiting", .number(Double(stats.waiting))),
                    ("waitingByFlag", .object(stats.waitingByFlag.sorted { $0.key < $1.key }.map { ($0.key, .number(Double($0.value))) })),
                    ("oldestWaitingSeconds", age.map { .number(Double($0)) } ?? .null),
                    ("decisions", .object(stats.decisions.sorted { $0.key < $1.key }.map { reviewer, counts in
                        (reviewer, .object(counts.sorted { $0.key < $1.key }.map { ($0.key, .number(Double($0.value))) }))
                    })),
                ]).serializedString)
                return
            }
            print("waiting: \(stats.waiting)\(age.map { ", oldest for \($0 / 3600) h \($0 % 3600 / 60) min" } ?? "")")
            for (flag, count) in stats.waitingByFlag.sorted(by: { $0.value > $1.value }) { print("  \(flag): \(count)") }
            for (reviewer, counts) in stats.decisions.sorted(by: { $0.key < $1.key }) {
                print("\(reviewer): " + counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            }
        }
    }

    /// What every decision takes.
    struct DecisionOptions: ParsableArguments {
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The correction's feedbackId.") var feedbackId: String
        @Option(help: "Why (kept in the audit).") var reason: String?
        @Option(help: "Who decides (default: $USER).") var reviewer: String?

        /// Exit status: 0 decided or already so, 3 another decision came first, 4 no such item.
        func decide(_ choice: ReviewDecision) async throws {
            let (configuration, pool) = try await database.load()
            defer { Task { await pool.close() } }
            let who = reviewer ?? ProcessInfo.processInfo.environment["USER"] ?? "reviewer"
            let outcome = try await ReviewStore(pool: pool).decide(choice, feedbackId: feedbackId.lowercased(), reviewer: who, reason: reason,
                                                                   approval: TrainingPublication(configuration: configuration).approval)
            switch outcome {
            case .decided(let previous): print("\(feedbackId) \(choice.resultingState) (was \(previous))")
            case .alreadyDecided: print("\(feedbackId) is already \(choice.resultingState); nothing changed")
            case .conflict(let state):
                print("\(feedbackId) is \(state): another decision came first")
                throw ExitCode(3)
            case .notFound:
                print("\(feedbackId) is not in the review queue")
                throw ExitCode(4)
            }
        }
    }

    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Approve: the correction becomes training data (one training event).")
        @OptionGroup var options: DecisionOptions
        func run() async throws { try await options.decide(.approve) }
    }

    struct Reject: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Reject: never trained on; the reason is kept.")
        @OptionGroup var options: DecisionOptions
        func run() async throws { try await options.decide(.reject) }
    }

    struct Escalate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Escalate to a second reviewer.")
        @OptionGroup var options: DecisionOptions
        func run() async throws { try await options.decide(.escalate) }
    }
}

/// `morpheus contributors show USER`.
struct ContributorsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "contributors", abstract: "Contributors and their record.", subcommands: [Show.self])

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A contributor's corrections, flags, approvals, rejections and reputation.")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The user id.") var user: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let (_, pool) = try await database.load()
            defer { Task { await pool.close() } }
            let contributor = try await ReviewStore(pool: pool).contributor(user)
            let record = contributor.record
            if json {
                print(JSONValue.object([
                    ("userId", .string(user)),
                    ("corrections", .object(contributor.byStatus.sorted { $0.key < $1.key }.map { ($0.key, .number(Double($0.value))) })),
                    ("flags", .object(contributor.flags.sorted { $0.key < $1.key }.map { ($0.key, .number(Double($0.value))) })),
                    ("approvals", .number(Double(record.approvals))), ("rejections", .number(Double(record.rejections))),
                    ("reputation", .number((record.reputation * 1000).rounded() / 1000)),
                ]).serializedString)
                return
            }
            let total = contributor.byStatus.values.reduce(0, +)
            print("\(user): \(total) corrections (" + contributor.byStatus.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ")")
            if !contributor.flags.isEmpty {
                print("flags: " + contributor.flags.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            }
            print("reviews: \(record.approvals) approved, \(record.rejections) rejected; reputation \((record.reputation * 1000).rounded() / 1000)")
        }
    }
}
