import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import MorpheusCore
import Testing
import TestSupport

/// `/metrics`, `/health/live` and `/health/ready` of a running instance.
@Suite("Metrics and health endpoints")
struct ObservabilityTests {
    func get(_ port: Int, _ path: String) async throws -> (status: Int, body: String) {
        let (data, response) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }

    @Test("live at once; ready once the database and the subscriptions are; /metrics counts answered messages in Prometheus format; not ready while the database is unreachable")
    func endpoints() async throws {
        let port = TestEnvironment.freePort()
        let instance = Instance()
        let user = "metrics.e2e"
        let watcher = try watch(["\(instance.prefix)/replies/#"])
        try await waitSubscribed(watcher, topic: "\(instance.prefix)/replies/\(user)/marker")
        let service = try await ServiceUnderTest.start(instance, environment: ["MORPHEUS_METRICS_PORT": "\(port)", "MORPHEUS_METRICS_HOST": "127.0.0.1"])
        #expect(try await get(port, "/health/live").status == 200)
        try await waitUntil("ready", timeout: .seconds(20)) { (try? await get(port, "/health/ready").status) == 200 }
        let ready = try await get(port, "/health/ready")
        #expect(ready.body.contains(#""database":true"#) && ready.body.contains(#""broker":true"#), "\(ready.body)")

        let ids = (0..<3).map { _ in UUID().uuidString.lowercased() }
        for id in ids {
            let payload = Samples.text.setting("/userId", to: .string(user)).setting("/feedbackId", to: .string(id)).setting("/generation/id", to: .string(id))
                .setting("/occurredAt", to: .string(RFC3339.format(Date()))).serializedString
            try await mosquittoPublish("\(instance.prefix)/corrections/text/\(user)", payload: payload)
        }
        try await mosquittoPublish("\(instance.prefix)/corrections/text/\(user)", payload: #"{"schema":"morpheus.correction/1","feedbackId":"\#(UUID().uuidString.lowercased())"}"#)
        try await waitUntil("four receipts", timeout: .seconds(30)) { watcher.lines.compactMap(Observed.init).count >= 4 }
        let metrics = try await get(port, "/metrics")
        #expect(metrics.status == 200)
        let lines = metrics.body.split(separator: "\n").map(String.init)
        #expect(lines.contains(#"morpheus_messages_total{outcome="accepted"} 3"#), "\(lines.filter { $0.hasPrefix("morpheus_messages") })")
        #expect(lines.contains(#"morpheus_messages_total{outcome="rejected"} 1"#))
        #expect(lines.contains { $0.hasPrefix("morpheus_receipt_latency_seconds_bucket{le=") })
        #expect(lines.contains { $0.hasPrefix("morpheus_commit_duration_seconds_count ") })
        #expect(lines.contains { $0.hasPrefix("morpheus_batch_messages_sum ") })
        #expect(lines.contains { $0.hasPrefix("morpheus_database_pool_wait_seconds_count ") })
        // A stream of 300 from many users, scraped while it flows: the accepted counter only
        // grows, never passes what was sent, and ends at exactly what was answered.
        func accepted() async throws -> Int {
            let body = try await get(port, "/metrics").body
            let line = body.split(separator: "\n").first { $0.hasPrefix(#"morpheus_messages_total{outcome="accepted"} "#) }
            return line.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
        }
        let editor = try await Editor(prefix: instance.prefix)
        let stream = (0..<300).map { Editor.correction(index: $0, user: "metrics.user\($0 % 25)") }
        var scraped: [Int] = []
        for (index, correction) in stream.enumerated() {
            try editor.publish(correction, user: "metrics.user\(index % 25)")
            if index % 60 == 59 { scraped.append(try await accepted()) }
        }
        try await waitUntil("the stream answered", timeout: .seconds(60)) { editor.answered.count == stream.count }
        scraped.append(try await accepted())
        #expect(zip(scraped, scraped.dropFirst()).allSatisfy { $0 <= $1 }, "\(scraped)")
        #expect(scraped.dropLast().allSatisfy { $0 <= 3 + 300 })
        let acceptedInStream = stream.filter { editor.statuses($0.id).contains("accepted") }.count
        #expect(scraped.last == 3 + acceptedInStream && acceptedInStream > 250, "\(scraped), \(acceptedInStream) accepted")
        await editor.shutdown()
        try await waitUntil("gauges sampled", timeout: .seconds(10)) {
            let body = try await get(port, "/metrics").body
            return body.contains("morpheus_broker_connected 1") && body.contains("morpheus_database_up 1") && body.contains("morpheus_outbox_backlog_events ")
        }

        try await service.database.setReachable(false)
        try await waitUntil("not ready without the database", timeout: .seconds(20)) {
            let answer = try? await get(port, "/health/ready")
            return answer?.status == 503 && answer?.body.contains(#""database":false"#) == true
        }
        #expect(try await get(port, "/health/live").status == 200, "alive all the same")
        try await service.database.setReachable(true)
        try await waitUntil("ready again", timeout: .seconds(20)) { (try? await get(port, "/health/ready").status) == 200 }
        try await service.stop()
        try await watcher.kill(SIGTERM)
    }

    @Test("log.format json: every line the service writes is a JSON object; lines about a message carry its feedbackId")
    func jsonLogs() async throws {
        let instance = Instance()
        let user = "logs.e2e"
        let watcher = try watch(["\(instance.prefix)/replies/#"])
        try await waitSubscribed(watcher, topic: "\(instance.prefix)/replies/\(user)/marker")
        let service = try await ServiceUnderTest.start(instance, environment: ["MORPHEUS_LOG_FORMAT": "json", "MORPHEUS_LOG_LEVEL": "debug"])
        let id = UUID().uuidString.lowercased()
        let payload = Samples.text.setting("/userId", to: .string(user)).setting("/feedbackId", to: .string(id))
            .setting("/occurredAt", to: .string(RFC3339.format(Date()))).serializedString
        try await mosquittoPublish("\(instance.prefix)/corrections/text/\(user)", payload: payload)
        func entries() -> [[String: Any]] {
            service.process.lines.filter { $0.hasPrefix("stderr: ") }.compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.dropFirst("stderr: ".count).utf8)) as? [String: Any]
            }
        }
        try await waitUntil("the answer logged", timeout: .seconds(30)) {
            entries().contains { $0["message"] as? String == "answered" && $0["feedbackId"] as? String == id && $0["status"] as? String == "accepted" }
        }
        try await service.stop()
        let written = service.process.lines.filter { $0.hasPrefix("stderr: ") }
        #expect(!written.isEmpty && written.count == entries().count, "every line is JSON: \(written.prefix(3))")
        #expect(entries().allSatisfy { $0["time"] is String && $0["level"] is String && $0["message"] is String })
        try await watcher.kill(SIGTERM)
    }
}
