import Foundation
import MorpheusCore
import Testing

@Suite("Service status payload")
struct ServiceStatusTests {
    @Test("encodes every contract field, with RFC 3339 UTC millisecond timestamps")
    func encodesContractFields() throws {
        var counters = ServiceStatus.Counters()
        counters.received = 10
        counters.deadLettered = 1
        let status = ServiceStatus(
            instanceId: "morpheus-1", state: .online, version: "0.1.0",
            startedAt: Date(timeIntervalSince1970: 1_795_000_000.5), updatedAt: Date(timeIntervalSince1970: 1_795_000_010),
            counters: counters, latencyMs: .init(p50: 1.25, p99: 7.5)
        )
        let object = try #require(try JSONSerialization.jsonObject(with: Data(status.encoded())) as? [String: Any])
        #expect(object["schema"] as? String == "morpheus.status/1")
        #expect(object["instanceId"] as? String == "morpheus-1")
        #expect(object["state"] as? String == "online")
        #expect(object["version"] as? String == "0.1.0")
        #expect(object["startedAt"] as? String == "2026-11-18T11:06:40.500Z")
        #expect(object["updatedAt"] as? String == "2026-11-18T11:06:50.000Z")
        let encodedCounters = try #require(object["counters"] as? [String: Int])
        #expect(encodedCounters == ["received": 10, "accepted": 0, "flagged": 0, "duplicate": 0, "rejected": 0, "deadLettered": 1, "published": 0,
                                    "retries": 0, "released": 0])
        #expect(object["database"] as? String == "available")
        #expect(object["databaseError"] == nil)
        let latency = try #require(object["latencyMs"] as? [String: Double])
        #expect(latency == ["p50": 1.25, "p99": 7.5])
    }

    @Test("decodes what it encodes")
    func roundTrip() throws {
        let status = ServiceStatus(instanceId: "a", state: .draining, version: "1", startedAt: Date(timeIntervalSince1970: 1_700_000_000.25),
                                   updatedAt: Date(timeIntervalSince1970: 1_700_000_001))
        #expect(try ServiceStatus.decode(status.encoded()) == status)
        var holding = status
        holding.database = .unavailable
        holding.databaseError = "PostgreSQL server 55P03: lock timeout"
        holding.counters.retries = 3
        holding.counters.released = 1
        #expect(try ServiceStatus.decode(holding.encoded()) == holding)
        #expect(throws: (any Error).self) { try ServiceStatus.decode(Array(#"{"schema":"x"}"#.utf8)) }
    }
}
