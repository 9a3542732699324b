import Foundation
import MorpheusCore
import Postgres
import Testing
import TestSupport

/// Outcomes and corrections through the real broker, then `morpheus report ab|models`.
@Suite("Reports end to end")
struct ReportEndToEndTests {
    @Test("morpheus report ab counts each generation once per arm (a correction and a `corrected` outcome are one), with the intervals and tests of the statistics, an SVG chart; report models per model version")
    func abReport() async throws {
        let instance = Instance()
        let prefix = instance.prefix
        let watcher = try watch(["\(prefix)/replies/#"])
        try await waitSubscribed(watcher, topic: "\(prefix)/replies/marker/x")
        let service = try await ServiceUnderTest.start(instance)
        let experiment = TestEnvironment.unique("exp")
        let pool = PostgresPool(configuration: service.database.configuration, size: 1)
        defer { Task { await pool.close() } }
        func count(_ sql: String) async throws -> Int { try await pool.withConnection { try $0.query(sql).first!.decode(0, as: Int.self) } }
        let now = RFC3339.format(Date().addingTimeInterval(-5))

        func correction(user: String, generation: String, arm: String, version: String) async throws {
            let payload = Samples.text.setting("/userId", to: .string(user)).setting("/feedbackId", to: .string(UUID().uuidString.lowercased()))
                .setting("/generation/id", to: .string(generation)).setting("/generation/modelVersion", to: .string(version))
                .setting("/generation/experiment", to: .object([("id", .string(experiment)), ("arm", .string(arm))]))
                .setting("/occurredAt", to: .string(now))
                .setting("/corrected/text", to: .string("MARA: \(generation) reads better this way.")).serializedString
            try await mosquittoPublish("\(prefix)/corrections/text/\(user)", payload: payload)
        }
        func outcome(user: String, generation: String, arm: String, version: String, _ result: String) async throws {
            let payload = Samples.outcome.setting("/userId", to: .string(user)).setting("/outcomeId", to: .string(UUID().uuidString.lowercased()))
                .setting("/generation/id", to: .string(generation)).setting("/generation/modelVersion", to: .string(version))
                .setting("/generation/experiment", to: .object([("id", .string(experiment)), ("arm", .string(arm))]))
                .setting("/occurredAt", to: .string(now)).setting("/outcome", to: .string(result)).serializedString
            try await mosquittoPublish("\(prefix)/outcomes/text/\(user)", payload: payload)
        }
        // Arm A (model 3.1): 12 generations; 3 corrected (one also reported `corrected`), one
        // reported `corrected` only, 8 accepted (10 outcomes). Arm B (model 3.2): 10; one corrected, 9 not.
        for index in 0..<12 {
            let user = "reader.\(index)", generation = "a-\(index)"
            switch index {
            case 0..<3:
                try await correction(user: user, generation: generation, arm: "A", version: "3.1")
                if index == 0 { try await outcome(user: user, generation: generation, arm: "A", version: "3.1", "corrected") }
            case 3: try await outcome(user: user, generation: generation, arm: "A", version: "3.1", "corrected")
            default: try await outcome(user: user, generation: generation, arm: "A", version: "3.1", "accepted")
            }
        }
        for index in 0..<10 {
            let user = "reader.\(index)", generation = "b-\(index)"
            if index == 0 {
                try await correction(user: user, generation: generation, arm: "B", version: "3.2")
            } else {
                try await outcome(user: user, generation: generation, arm: "B", version: "3.2", index == 1 ? "regenerated" : "accepted")
            }
        }
        do {
            try await waitUntil("everything stored", timeout: .seconds(30)) {
                let stored = (try await count("SELECT count(*) FROM feedback"), try await count("SELECT count(*) FROM outcomes"))
                return stored == (4, 19)
            }
        } catch {
            Issue.record("stored: \(try await count("SELECT count(*) FROM feedback")) corrections, \(try await count("SELECT count(*) FROM outcomes")) outcomes; replies: \(watcher.lines.filter { !$0.contains("accepted") }.prefix(3))")
            throw error
        }

        let svg = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.unique("ab") + ".svg")
        defer { try? FileManager.default.removeItem(at: svg) }
        let cli = TestEnvironment.productsDirectory.appendingPathComponent("morpheus")
        let common = ["--config", TestEnvironment.repositoryRoot.appendingPathComponent("config/morpheus.json").path, "--database-url", service.database.url]
        let ab = try ChildProcess(cli, arguments: ["report", "ab", "--experiment", experiment, "--json", "--svg", svg.path] + common)
        #expect(try await ab.waitForExit(timeout: .seconds(60)) == 0, "\(ab.lines)")
        let report = try #require(ab.lines.first { $0.hasPrefix("{") }.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })
        let groups = try #require(report["groups"] as? [[String: Any]])
        #expect(groups.map { $0["name"] as? String } == ["A", "B"])
        #expect(groups.map { $0["seen"] as? Int } == [12, 10] && groups.map { $0["corrected"] as? Int } == [4, 1])
        func close(_ value: Any?, _ expected: Double?) -> Bool {
            guard let value = value as? Double, let expected else { return false }
            return abs(value - expected) < 1e-12
        }
        let wilson = Statistics.wilson(4, 12)
        #expect(close(groups[0]["low"], wilson.low) && close(groups[0]["high"], wilson.high))
        let comparison = try #require((report["comparisons"] as? [[String: Any]])?.first)
        let newcombe = Statistics.newcombe(1, 10, 4, 12)
        #expect(comparison["group"] as? String == "B" && close(comparison["low"], newcombe.low) && close(comparison["high"], newcombe.high))
        #expect(close(comparison["p"], Statistics.twoProportionZTest(1, 10, 4, 12)?.p))
        let srm = try #require(report["sampleRatio"] as? [String: Any])
        #expect(srm["mismatch"] as? Bool == false && close(srm["p"], Statistics.chiSquare(observed: [12, 10], expectedShares: [0.5, 0.5])?.p))
        let slices = try #require(report["slices"] as? [[String: Any]])
        #expect(slices.map { $0["name"] as? String } == ["text", "text/scene_description"])
        let chart = try String(contentsOf: svg, encoding: .utf8)
        #expect(chart.hasPrefix("<svg") && chart.contains(">A</text>") && chart.contains(">B</text>"))

        // A planned split the data contradicts is flagged.
        let skewed = try ChildProcess(cli, arguments: ["report", "ab", "--experiment", experiment, "--planned", "A=0.9,B=0.1", "--srm-alpha", "0.05"] + common)
        #expect(try await skewed.waitForExit(timeout: .seconds(60)) == 0)
        #expect(skewed.lines.contains { $0.hasPrefix("sample ratio:") && $0.contains("MISMATCH") }, "\(skewed.lines)")

        let models = try ChildProcess(cli, arguments: ["report", "models", "--model", "storyteller", "--json"] + common)
        #expect(try await models.waitForExit(timeout: .seconds(60)) == 0, "\(models.lines)")
        let byModel = try #require(models.lines.first { $0.hasPrefix("{") }.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })
        #expect((byModel["groups"] as? [[String: Any]])?.map { $0["name"] as? String } == ["storyteller@3.1", "storyteller@3.2"])
        #expect(byModel["sampleRatio"] is NSNull)
        try await service.stop()
        try await watcher.kill(SIGTERM)
    }
}
