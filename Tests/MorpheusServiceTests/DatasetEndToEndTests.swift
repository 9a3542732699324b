import Foundation
import MorpheusCore
import Testing
import TestSupport

/// Corrections through the real broker, then `morpheus dataset build` and `lineage`.
@Suite("Datasets end to end")
struct DatasetEndToEndTests {
    @Test("corrections published with mosquitto_pub become version 1 of a dataset with lineage back to each correction; more corrections make version 2 with parent 1 and a diff; a rebuild gives the same bytes; an erasure over MQTT empties the next version and marks the older ones")
    func buildFromPublishedCorrections() async throws {
        let instance = Instance()
        let user = "dataset.e2e"
        let watcher = try watch(["\(instance.prefix)/replies/#", "\(instance.prefix)/datasets/#"])
        try await waitSubscribed(watcher, topic: "\(instance.prefix)/replies/\(user)/marker")
        let service = try await ServiceUnderTest.start(instance)
        var ids: [String] = []
        let start = Date().addingTimeInterval(-60)
        func publish(_ range: Range<Int>) async throws {
            for index in range {
                let id = UUID().uuidString.lowercased()
                ids.append(id)
                let payload = Samples.text.setting("/userId", to: .string(user)).setting("/feedbackId", to: .string(id)).setting("/generation/id", to: .string(id))
                    .setting("/occurredAt", to: .string(RFC3339.format(start.addingTimeInterval(Double(index) * 3))))
                    .setting("/target/panelId", to: .string("p-\(index)"))
                    .setting("/corrected/text", to: .string("MARA: The tide turns at the \(index) bell; we sail then.")).serializedString
                try await mosquittoPublish("\(instance.prefix)/corrections/text/\(user)", payload: payload)
            }
            try await waitUntil("\(ids.count) receipts", timeout: .seconds(30)) {
                let answered = watcher.lines.compactMap(Observed.init).filter { $0.json["status"] as? String == "accepted" }.compactMap { $0.json["feedbackId"] as? String }
                return Set(ids).isSubset(of: Set(answered))
            }
        }
        try await publish(0..<6)
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
        // Two more corrections: version 2, parent 1, and the diff names them.
        try await publish(6..<8)
        let second = try await build()
        #expect(second["version"] as? Int == 2 && second["parentVersion"] as? Int == 1 && second["exampleCount"] as? Int == 8)
        let diff = try ChildProcess(cli, arguments: ["dataset", "diff", "harbour@1", "harbour@2", "--json"] + common)
        #expect(try await diff.waitForExit(timeout: .seconds(30)) == 0, "\(diff.lines)")
        let difference = try #require(diff.lines.first { $0.hasPrefix("{") }.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })
        #expect(difference["added"] as? [String: Int] == ["scene_description": 2] && difference["unchanged"] as? Int == 6)
        #expect((difference["removed"] as? [String: Int])?.isEmpty == true)
        // The same state again: the same bytes.
        let third = try await build()
        #expect(third["version"] as? Int == 3 && third["sha256"] as? String == second["sha256"] as? String)

        // Each version announced on datasets/harbour through the outbox.
        try await waitUntil("the announcements", timeout: .seconds(30)) {
            Set(watcher.lines.compactMap(Observed.init).filter { $0.topic.hasSuffix("/datasets/harbour") }.compactMap { $0.json["version"] as? Int }) == [1, 2, 3]
        }
        // Retained: a subscriber that comes later gets the latest version at once.
        let late = try ChildProcess(URL(fileURLWithPath: "/usr/bin/mosquitto_sub"), arguments: [
            "-V", "mqttv5", "-h", "127.0.0.1", "-p", "\(TestEnvironment.brokerPort)", "-t", "\(instance.prefix)/datasets/harbour", "-C", "1", "-W", "10",
        ])
        #expect(try await late.waitForExit(timeout: .seconds(15)) == 0)
        #expect(late.lines.contains { $0.contains("\"version\":3") })
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
        #expect(lineage.lines.filter { $0.hasPrefix("harbour@") }.count == 3, "\(lineage.lines)")
        // And back from the example to its correction and contributor.
        let exampleId = TrainingTransform.exampleId(for: ids[0])
        let origin = try ChildProcess(cli, arguments: ["dataset", "lineage", "--example", exampleId] + common)
        #expect(try await origin.waitForExit(timeout: .seconds(30)) == 0)
        #expect(origin.lines.first?.hasPrefix("correction \(ids[0])  (accepted)  contributor u_") == true, "\(origin.lines)")
        #expect(origin.lines.filter { $0.hasPrefix("harbour@") }.count == 3)

        // The user asks for erasure over MQTT: the next version has none of their examples, the
        // older ones are marked for rebuild.
        let erase = JSONValue.object([("schema", .string("morpheus.privacy/1")), ("requestId", .string(UUID().uuidString.lowercased())),
                                      ("userId", .string(user)), ("action", .string("erase"))]).serializedString
        try await mosquittoPublish("\(instance.prefix)/privacy/\(user)", payload: erase)
        try await waitUntil("the erasure applied", timeout: .seconds(30)) {
            watcher.lines.compactMap(Observed.init).contains { $0.json["status"] as? String == "applied" }
        }
        let fourth = try await build()
        #expect(fourth["version"] as? Int == 4 && fourth["exampleCount"] as? Int == 0)
        let listed = try ChildProcess(cli, arguments: ["dataset", "list", "harbour", "--json"] + common)
        #expect(try await listed.waitForExit(timeout: .seconds(30)) == 0)
        let versions = try #require(listed.lines.first { $0.hasPrefix("[") }.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [[String: Any]] })
        #expect(versions.map { "\($0["version"] ?? "")=\($0["status"] ?? "")" }.sorted() == ["1=needs_rebuild", "2=needs_rebuild", "3=needs_rebuild", "4=ready"])
        try await service.stop()
        try await watcher.kill(SIGTERM)
    }
}
