import Foundation
import Testing
import TestSupport

/// `morpheus gate evaluate` on the labelled public set, scored by the project's shared scorer.
@Suite("Offline gate evaluation")
struct GateEvaluationTests {
    static let shared = TestEnvironment.repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared")

    @Test("the labelled corrections meet the targets: precision ≥ 0.97 and recall ≥ 0.95 overall, recall ≥ 0.85 per flag")
    func labelledSet() async throws {
        let labelled = Self.shared.appendingPathComponent("data/corrections-labelled.jsonl").path
        let scorer = Self.shared.appendingPathComponent("tools/score_flags.py").path
        try #require(FileManager.default.fileExists(atPath: labelled), "../shared/data is laid beside the checkout")
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("\(TestEnvironment.unique("gate")).jsonl")
        defer { try? FileManager.default.removeItem(at: output) }

        let cli = try ChildProcess(TestEnvironment.productsDirectory.appendingPathComponent("morpheus"), arguments: ["gate", "evaluate", labelled])
        #expect(try await cli.waitForExit(timeout: .seconds(60)) == 0)
        let lines = cli.lines.filter { $0.hasPrefix("{") }
        #expect(lines.count == 593)
        // With the default expert-review rules no labelled correction is held for a reason:
        // the clean ones are a careful reviewer's `accepted` (docs/quality.md).
        #expect(!lines.contains { $0.contains("\"reviewReasons\"") })
        try (lines.joined(separator: "\n") + "\n").write(to: output, atomically: true, encoding: .utf8)

        let score = try ChildProcess(URL(fileURLWithPath: "/usr/bin/env"), arguments: [
            "python3", scorer, output.path, labelled, "--min-precision", "0.97", "--min-recall", "0.95",
        ])
        #expect(try await score.waitForExit(timeout: .seconds(60)) == 0, "\(score.lines.joined(separator: "\n"))")
        for line in score.lines {
            let columns = line.split(separator: " ", omittingEmptySubsequences: true)
            // Per-flag rows: name, support, tp, fp, fn, precision, recall, f1.
            guard columns.count == 8, let support = Int(columns[1]), support > 0, let recall = Double(columns[6]) else { continue }
            #expect(recall >= 0.85, "\(line)")
        }
        #expect(score.lines.last?.hasPrefix("quality: precision=") == true)
    }
}
