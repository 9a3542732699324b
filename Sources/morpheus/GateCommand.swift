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
            abstract: "Evaluate a JSON Lines file of corrections; print {feedbackId, status, flags, quality} per line.",
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
            for result in OfflineEvaluation.evaluate(lines: lines, now: reference) {
                output += result.json.serializedString + "\n"
            }
            FileHandle.standardOutput.write(Data(output.utf8))
        }
    }
}
