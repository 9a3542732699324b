import ArgumentParser
import Foundation
import MorpheusCore

/// `morpheus-bench corpus`: the benchmark's corrections as JSON Lines, for measuring the gate
/// offline with a repeatable instruction count:
/// `valgrind --tool=callgrind morpheus gate evaluate corpus.jsonl` (docs/performance.md).
struct CorpusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "corpus", abstract: "Print the benchmark's corrections as JSON Lines.")

    @Option(help: "How many corrections.") var count = 2000
    @Option(help: "Distinct users.") var users = 100_000

    func run() throws {
        let factory = CorrectionFactory(userCount: users, nonce: "c0ffee00")
        let now = RFC3339.format(Date())
        var output = ""
        for sequence in 0..<UInt64(count) {
            let user = factory.users[Int(sequence) % factory.users.count]
            output += String(decoding: factory.correction(sequence: sequence, connection: 0, user: user, occurredAt: now).payload, as: UTF8.self) + "\n"
        }
        FileHandle.standardOutput.write(Data(output.utf8))
    }
}
