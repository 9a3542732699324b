import Foundation
import MorpheusCore
import Testing
import TestSupport

/// Corrections through the real broker, then `morpheus dataset build` and `lineage`.
@Suite("Datasets end to end")
struct DatasetEndToEndTests {
    @Test("corrections published with mosquitto_pub become version 1 of a dataset with lineage back to each correction; a second build is version 2 with parent 1")
    func buildFromPublishedCorrections() async throws {
        let instance = Instance()
        let user = "dataset.e2e"
        let watcher = try watch(["\(instance.prefix)/replies/#", "\(instance.prefix)/datasets/#"])
        try await waitSubscribed(watcher, topic: "\(instance.prefix)/replies/\(user)/marker")
        let service = try await ServiceUnderTest.start(instance)
        var ids: [String] = []
        let start = Date().addingTimeInterval(-60)
        for index in 0..<6 {
            let id = UUID().uuidString.lowercased()
            ids.append(id)
            let payload = Samples.text.setting("/userId", to: .string(user)).setting("/feedbackId", to: .string(id)).setting("/generation/id", to: .string(id))
                .setting("/occurredAt", to: .string(RFC3339.format(start.addingTimeInterval(Double(index) * 3))))
                .setting("/target/panelId", to: .string("p-\(index)"))
                .setting("/corrected/text", to: .string("MARA: The tide turns at the \(index) bell; we sail then.")).serializedString
            try await mosquittoPublish("\(instance.prefix)/corrections/text/\(user)", payload: payload)
        }
        try await waitUntil("six receipts", timeout: .seconds(30)) {
            let answered = watcher.lines.compactMap(Observed.init).filter { $0.json["status"] as? String == "accepted" }.compactMap { $0.json["feedbackId"] as? String }
            return Set(ids).isSubset(of: Set(answered))
        }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.unique("datasets"))
        defer { try? FileManager.default.removeItem(at: root) }
        let cli = TestEnvironment.productsDirectory.appendingPathComponent("morpheus")
        let common = ["--config", TestEnvironment.repositoryRoot.appendingPathComponent("config/morpheus.json").path, "--database-url", service.database.url,
                      "--topic-prefix", instance.prefix]
        func build() async throws -> [String: Any] {
            let process = try ChildProcess(cli, arguments: ["dataset", "build", "harbour", "--modality", "text", "--format", "sft", "--min-quality", "0",
                                                            "--root", root.path, "--json"] + common)
            #expect(try await process.waitForExit(timeout: .seconds(60)) == 0, "\(process.lines)")
            let line = try #require(process.lines.first { $0.hasPrefix("{") })
            return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
        let first = try await build()
        #expect(first["schema"] as? String == "morpheus.dataset-version/1" && first["version"] as? Int == 1 && first["exampleCount"] as? Int == 6)
        let location = try #require(first["location"] as? String)
        #expect(FileManager.default.fileExists(atPath: String(location.dropFirst("file://".count)) + "/manifest.json"))
        let second = try await build()
        #expect(second["version"] as? Int == 2 && second["parentVersion"] as? Int == 1 && second["sha256"] as? String == first["sha256"] as? String)

        // Each version announced on datasets/harbour through the outbox.
        try await waitUntil("both announcements", timeout: .seconds(30)) {
            Set(watcher.lines.compactMap(Observed.init).filter { $0.topic.hasSuffix("/datasets/harbour") }.compactMap { $0.json["version"] as? Int }) == [1, 2]
        }
        // Retained: a subscriber that comes later gets the latest version at once.
        let late = try ChildProcess(URL(fileURLWithPath: "/usr/bin/mosquitto_sub"), arguments: [
            "-V", "mqttv5", "-h", "127.0.0.1", "-p", "\(TestEnvironment.brokerPort)", "-t", "\(instance.prefix)/datasets/harbour", "-C", "1", "-W", "10",
        ])
        #expect(try await late.waitForExit(timeout: .seconds(15)) == 0)
        #expect(late.lines.contains { $0.contains("\"version\":2") })
        let clear = try ChildProcess(URL(fileURLWithPath: "/usr/bin/mosquitto_pub"), arguments: [
            "-h", "127.0.0.1", "-p", "\(TestEnvironment.brokerPort)", "-t", "\(instance.prefix)/datasets/harbour", "-r", "-n",
        ])
        _ = try await clear.waitForExit()

        // verify re-hashes the files against the manifest, and notices a change.
        let folder = String(location.dropFirst("file://".count))
        let verified = try ChildProcess(cli, arguments: ["dataset", "verify", folder])
        #expect(try await verified.waitForExit(timeout: .seconds(30)) == 0, "\(verified.lines)")
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: folder + "/data/train.jsonl"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("{}\n".utf8))
        try handle.close()
        let tampered = try ChildProcess(cli, arguments: ["dataset", "verify", folder])
        #expect(try await tampered.waitForExit(timeout: .seconds(30)) == 1)
        #expect(tampered.lines.contains { $0.contains("data/train.jsonl: DIFFERS") })

        let lineage = try ChildProcess(cli, arguments: ["dataset", "lineage", "--feedback", ids[0]] + common)
        #expect(try await lineage.waitForExit(timeout: .seconds(30)) == 0)
        #expect(lineage.lines.filter { $0.hasPrefix("harbour@") }.count == 2, "\(lineage.lines)")
        // And back from the example to its correction and contributor.
        let exampleId = TrainingTransform.exampleId(for: ids[0])
        let origin = try ChildProcess(cli, arguments: ["dataset", "lineage", "--example", exampleId] + common)
        #expect(try await origin.waitForExit(timeout: .seconds(30)) == 0)
        #expect(origin.lines.first?.hasPrefix("correction \(ids[0])  (accepted)  contributor u_") == true, "\(origin.lines)")
        #expect(origin.lines.filter { $0.hasPrefix("harbour@") }.count == 2)
        try await service.stop()
        try await watcher.kill(SIGTERM)
    }
}
