import ArgumentParser
import Foundation
import MorpheusCore
import MorpheusService
import MorpheusStorage

/// `morpheus privacy …`: a user's privacy requests, for operators (requests that arrive by
/// e-mail or a support desk). The same code path as requests over MQTT, audited as the operator's.
struct PrivacyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "privacy",
        abstract: "Apply a user's privacy request, or show their settings.",
        subcommands: [OptOut.self, OptIn.self, Anonymize.self, Identify.self, Erase.self, Status.self]
    )

    struct RequestOptions: ParsableArguments {
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The user id.") var user: String
        @Option(help: "Why (kept in the audit log).") var reason: String?
        @Option(help: "Who asks (default: $USER); audited as operator:<name>.") var operatorName: String?
        @Flag(help: "Print the answer as JSON.") var json = false

        /// Exit status: 0 applied, 2 refused.
        func apply(_ action: PrivacyRequest.Action) async throws {
            guard CorrectionValidator.isUserId(user) else { throw ValidationError("\(user.debugDescription) is not a valid user id") }
            let (configuration, pool) = try await database.load()
            defer { Task { await pool.close() } }
            let requestId = UUID().uuidString.lowercased()
            let canonical = JSONValue.object([("action", .string(action.rawValue)), ("requestId", .string(requestId)), ("userId", .string(user))])
            let request = PrivacyRequest(requestId: requestId, userId: user, action: action, payloadHash: sha256Hex(canonical.serialized()))
            let who = operatorName ?? ProcessInfo.processInfo.environment["USER"] ?? "operator"
            let subject = Pseudonymizer(secret: Array(configuration.pseudonymSecret.utf8)).pseudonym(for: user)
            let result = try await PrivacyStore(pool: pool).apply(PrivacyWork(request: request, requestedBy: "operator:\(who)", reason: reason, subject: subject,
                                                                                  topics: ContractTopics(prefix: configuration.topicPrefix),
                                                                                  rebuild: TrainingPublication(configuration: configuration).rebuildAnonymized))
            guard case let .applied(counts, settings, appliedAt) = result else {
                print("refused: \(result)")
                throw ExitCode(2)
            }
            if json {
                print(JSONValue.object([
                    ("requestId", .string(requestId)), ("userId", .string(user)), ("action", .string(action.rawValue)), ("status", .string("applied")),
                    ("counts", .object(counts.sorted { $0.key < $1.key }.map { ($0.key, .number(Double($0.value))) })),
                    ("settings", settings.json), ("appliedAt", .string(RFC3339.format(appliedAt))),
                ]).serializedString)
                return
            }
            let rows = [("user", user), ("action", action.rawValue), ("request", requestId), ("opted out", settings.optedOut ? "yes" : "no"),
                        ("anonymized", settings.anonymized ? "yes" : "no"), ("refused since opt-out", "\(settings.refused)")]
                + counts.sorted { $0.key < $1.key }.map { ("count: \($0.key)", "\($0.value)") }
            printFields(rows)
        }
    }

    struct OptOut: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "opt-out", abstract: "Refuse the user's corrections and outcomes from now on.")
        @OptionGroup var options: RequestOptions
        func run() async throws { try await options.apply(.optOut) }
    }

    struct OptIn: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "opt-in", abstract: "Resume collecting the user's feedback.")
        @OptionGroup var options: RequestOptions
        func run() async throws { try await options.apply(.optIn) }
    }

    struct Anonymize: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rewrite the user's stored feedback under the keyed pseudonym with personal data scrubbed; future feedback too.")
        @OptionGroup var options: RequestOptions
        func run() async throws { try await options.apply(.anonymize) }
    }

    struct Identify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Store the user's future feedback under the real id again (the past stays anonymized).")
        @OptionGroup var options: RequestOptions
        func run() async throws { try await options.apply(.identify) }
    }

    struct Erase: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete everything stored of the user; trainers get a retraction event; the erasure log keeps counts under the pseudonym.")
        @OptionGroup var options: RequestOptions
        func run() async throws { try await options.apply(.erase) }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The user's current settings (audited like any request).")
        @OptionGroup var options: RequestOptions
        func run() async throws { try await options.apply(.status) }
    }
}
