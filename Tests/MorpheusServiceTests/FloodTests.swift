import Foundation
import MQTT
import MorpheusCore
import Testing
import TestSupport

/// A flood of maximum-size messages must not make the service's memory follow it: batches
/// are bounded by bytes (`batch.maxBytes`), not only by count.
@Suite("Flood of maximum-size messages")
struct FloodTests {
    /// Peak resident set size of a process, from the kernel (VmHWM), in bytes.
    static func peakRSS(_ pid: pid_t) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "") else { return nil }
        return kilobytes * 1024
    }

    @Test("200 messages of 2 MiB queued for the service: every one answered `payload_too_large`, peak RSS stays under 160 MiB")
    func floodOfLargeMessages() async throws {
        let database = try await ScratchDatabase.create()
        let instance = Instance()
        let status = try watchStatus(instance)
        // A first run creates the session; the flood then waits for the second in the broker.
        let first = try startService(instance, databaseURL: database.url)
        try await waitUntil("service online", timeout: .seconds(30)) { status.lines.contains { $0.contains("\"online\"") } }
        try await first.kill(SIGTERM, timeout: .seconds(15))

        let user = "flood.user"
        let editor = try await Editor(prefix: instance.prefix)
        let count = 200
        var ids: [String] = []
        // Just under the broker's 2 MiB packet limit; the id is readable in the first bytes.
        let padding = [UInt8](repeating: UInt8(ascii: "a"), count: (2 << 20) - 4096)
        for _ in 0..<count {
            let id = UUID().uuidString.lowercased()
            ids.append(id)
            let payload = Array(#"{"feedbackId":"\#(id)","pad":""#.utf8) + padding + Array(#""}"#.utf8)
            try editor.client.enqueue(MQTTOutgoingMessage(
                topic: "\(instance.prefix)/corrections/text/\(user)", payload: payload, qos: .atLeastOnce,
                properties: MQTTPublishProperties(responseTopic: "\(instance.prefix)/replies/\(user)/flood")
            ))
        }
        let second = try startService(instance, databaseURL: database.url)
        var peak = 0
        try await waitUntil("every message answered", timeout: .seconds(120)) {
            peak = max(peak, Self.peakRSS(second.processIdentifier) ?? 0)
            return ids.allSatisfy { !editor.statuses($0).isEmpty }
        }
        peak = max(peak, Self.peakRSS(second.processIdentifier) ?? 0)
        #expect(ids.allSatisfy { editor.statuses($0) == ["rejected"] })
        print("flood: \(count) × 2 MiB, service peak RSS \(peak >> 20) MiB")
        #expect(peak > 0)
        #expect(peak < 160 << 20, "peak RSS \(peak >> 20) MiB")

        try await second.kill(SIGTERM, timeout: .seconds(15))
        await editor.shutdown()
        try await status.kill(SIGTERM)
        try await database.drop()
    }
}
