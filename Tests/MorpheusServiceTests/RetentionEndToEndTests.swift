import Foundation
import MorpheusCore
import Postgres
import Testing
import TestSupport

/// The service runs the retention policy on its schedule; the CLI previews, lists and restores.
@Suite("Retention end to end")
struct RetentionEndToEndTests {
    @Test("the service archives corrections once they are old enough; morpheus retention previews it, lists the archive and restores it")
    func scheduledRetention() async throws {
        let instance = Instance()
        let user = "retention.e2e"
        let watcher = try watch(["\(instance.prefix)/replies/#"])
        try await waitSubscribed(watcher, topic: "\(instance.prefix)/replies/\(user)/marker")
        let service = try await ServiceUnderTest.start(instance, environment: [
            "MORPHEUS_RETENTION_INTERVAL_SECONDS": "1", "MORPHEUS_RETENTION_ARCHIVE_AFTER_DAYS": "1",
        ])
        let pool = PostgresPool(configuration: service.database.configuration, size: 1)
        defer { Task { await pool.close() } }
        func count(_ sql: String) async throws -> Int { try await pool.withConnection { try $0.query(sql).first!.decode(0, as: Int.self) } }

        var ids: [String] = []
        for index in 0..<3 {
            let id = UUID().uuidString.lowercased()
            ids.append(id)
            let payload = Samples.text.setting("/userId", to: .string(user)).setting("/feedbackId", to: .string(id)).setting("/generation/id", to: .string(id))
                .setting("/corrected/text", to: .string("MARA: Keep the lamp lit until bell \(index).")).serializedString
            try await mosquittoPublish("\(instance.prefix)/corrections/text/\(user)", payload: payload)
        }
        try await waitUntil("three receipts", timeout: .seconds(30)) {
            let answered = watcher.lines.compactMap(Observed.init).filter { $0.json["status"] as? String == "accepted" }.compactMap { $0.json["feedbackId"] as? String }
            return Set(ids).isSubset(of: Set(answered))
        }

        let cli = TestEnvironment.productsDirectory.appendingPathComponent("morpheus")
        let common = ["--config", TestEnvironment.repositoryRoot.appendingPathComponent("config/morpheus.json").path, "--database-url", service.database.url]
        func run(_ arguments: [String]) async throws -> ChildProcess {
            let process = try ChildProcess(cli, arguments: arguments + common, environment: ["MORPHEUS_RETENTION_ARCHIVE_AFTER_DAYS": "1"])
            _ = try await process.waitForExit(timeout: .seconds(60))
            return process
        }
        func json(_ process: ChildProcess, _ opening: String) -> Any? {
            process.lines.first { $0.hasPrefix(opening) }.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) }
        }
        // A preview two days ahead: all three would go; nothing changes.
        let preview = try await run(["retention", "run", "--dry-run", "--json", "--as-of", RFC3339.format(Date().addingTimeInterval(2 * 86_400))])
        #expect(preview.exitStatus == 0, "\(preview.lines)")
        let planned = try #require(json(preview, "{") as? [String: Any])
        #expect(planned["archivedByAge"] as? Int == 3 && planned["dryRun"] as? Bool == true)
        #expect(try await count("SELECT count(*) FROM feedback WHERE archive_id IS NOT NULL") == 0)

        // Two days pass (for the rows): the service's next run archives them.
        try await pool.withConnection { try $0.query("UPDATE feedback SET received_at = received_at - interval '2 days'") }
        try await waitUntil("archived by the service", timeout: .seconds(30)) {
            try await count("SELECT count(*) FROM feedback WHERE archive_id IS NOT NULL AND corrected IS NULL") == 3
        }
        let listed = try await run(["retention", "archives", "--json"])
        let archives = try #require(json(listed, "[") as? [[String: Any]])
        #expect(archives.count == 1 && archives.first?["rowCount"] as? Int == 3 && archives.first?["policy"] as? String == "age")

        // A restore brings the content back; the policy, still true, archives it again.
        let archive = try #require(archives.first?["id"] as? Int)
        let restored = try await run(["retention", "restore", "\(archive)"])
        #expect(restored.exitStatus == 0 && restored.lines.contains("restored 3 corrections from archive \(archive)"), "\(restored.lines)")
        try await waitUntil("archived again", timeout: .seconds(30)) {
            try await count("SELECT count(*) FROM feedback f JOIN feedback_archives a ON a.id = f.archive_id WHERE a.id <> \(archive)") == 3
        }
        try await service.stop()
        try await watcher.kill(SIGTERM)
    }
}
