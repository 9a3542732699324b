import ArgumentParser
import Foundation
import MorpheusCore

/// `morpheus gate …`: the quality gate offline.
struct GateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gate",
        abstract: "Run the quality gate offline.",
        subcommands: [Evaluate.self]
    )

    struct Evaluate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Evaluate a JSON Lines file of corrections; print {feedbackId, status, flags, quality[, reviewReasons]} per line.",
            discussion: """
                Lines are labelled records ({"correction": {...}, ...}) or bare corrections. The history rules \
                (burst, repeated_content) are replayed in occurredAt order. The output can be scored with \
                ../shared/tools/score_flags.py.
                """
        )

        @Argument(help: "The JSON Lines file ('-' for standard input).")
        var file: String

        @Option(help: "Validate against this instant (RFC 3339) instead of the file's latest occurredAt.")
        var now: String?

        @Option(help: "Expert review: hold a clean correction whose quality is below this (0 = off; the service's review.minQuality).")
        var minQuality = ExpertReviewPolicy.defaultMinQuality

        @Option(help: "Expert review: hold each contributor's first N corrections (0 = off).")
        var firstCorrections = 0

        @Option(help: "Expert review: hold a change to a generation this many users corrected (0 = off).")
        var audience = 0

        func run() async throws {
            let text: String
            if file == "-" {
                text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            } else {
                guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read \(file)") }
                text = String(decoding: data, as: UTF8.self)
            }
            var reference: Date?
            if let now {
                guard let parsed = RFC3339.parse(now) else { throw ValidationError("--now must be an RFC 3339 timestamp") }
                reference = parsed
            }
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            var output = ""
            guard (0...1).contains(minQuality), firstCorrections >= 0, audience >= 0 else {
                throw ValidationError("--min-quality is 0…1; --first-corrections and --audience are ≥ 0")
            }
            let gate = QualityGate(expertReview: ExpertReviewPolicy(minQuality: minQuality, firstCorrections: firstCorrections, audience: audience))
            for result in OfflineEvaluation.evaluate(lines: lines, now: reference, gate: gate) {
                output += result.json.serializedString + "\n"
            }
            FileHandle.standardOutput.write(Data(output.utf8))
        }
    }
}
