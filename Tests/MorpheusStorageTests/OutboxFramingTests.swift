import MorpheusStorage
import Testing

@Suite("Outbox framing")
struct OutboxFramingTests {
    @Test("events survive encoding byte for byte, empty payloads and non-ASCII topics included")
    func roundTrip() throws {
        let events = [
            OutboxEvent(topic: "morpheus/v1/training/text", payload: Array(#"{"a":1}"#.utf8)),
            OutboxEvent(topic: "morpheus/v1/review/flagged", payload: []),
            OutboxEvent(topic: "prefix/ü/漫画", payload: (0...255).map(UInt8.init)),
            OutboxEvent(topic: "morpheus/v1/datasets/harbour", payload: Array("{}".utf8), retain: true),
        ]
        let bytes = OutboxFraming.encode(events)
        #expect(bytes.count == events.reduce(0) { $0 + 6 + $1.topic.utf8.count + $1.payload.count })
        #expect(try OutboxFraming.decode(bytes) == events)
        #expect(try OutboxFraming.decode([]) == [])
    }

    @Test("the retained mark is the topic length's top bit: frames written before it decode as not retained")
    func retainedMark() throws {
        let plain = OutboxFraming.encode([OutboxEvent(topic: "t", payload: [1])])
        #expect(plain.prefix(2) == [0x00, 0x01])
        let retained = OutboxFraming.encode([OutboxEvent(topic: "t", payload: [1], retain: true)])
        #expect(retained.prefix(2) == [0x80, 0x01])
        #expect(try OutboxFraming.decode(retained).first?.retain == true)
        #expect(try OutboxFraming.decode(plain).first?.retain == false)
    }

    @Test("truncated or overlong frames are refused, never read past the end")
    func malformed() {
        let bytes = OutboxFraming.encode([OutboxEvent(topic: "t", payload: [1, 2, 3])])
        for length in 1..<bytes.count {
            #expect(throws: OutboxFraming.Malformed.self) { try OutboxFraming.decode(Array(bytes.prefix(length))) }
        }
        #expect(throws: OutboxFraming.Malformed.self) { try OutboxFraming.decode([0xFF, 0xFF, 0x41]) }
    }
}
