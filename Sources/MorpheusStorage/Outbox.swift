import MorpheusCore

/// One event to publish after its commit: a topic and the exact bytes.
public struct OutboxEvent: Sendable, Equatable {
    public var topic: String
    public var payload: [UInt8]
    /// Published retained (a dataset version's announcement on `datasets/{name}`).
    public var retain: Bool

    public init(topic: String, payload: [UInt8], retain: Bool = false) {
        self.topic = topic
        self.payload = payload
        self.retain = retain
    }

    public init(topic: String, json: JSONValue, retain: Bool = false) {
        self.init(topic: topic, payload: json.serialized(), retain: retain)
    }
}

/// The events one committed batch produced, stored as one outbox row (one insert and one
/// delete per batch, not per event) and published together.
public struct OutboxBatch: Sendable, Equatable {
    public var id: Int
    public var events: [OutboxEvent]

    public init(id: Int, events: [OutboxEvent]) {
        self.id = id
        self.events = events
    }
}

/// The stored form of a batch's events: per event a 2-byte topic length, the topic's UTF-8, a
/// 4-byte payload length and the payload, lengths big-endian. Exact bytes, unlike jsonb. The
/// topic length's top bit marks a retained event (rows written before it existed have it clear;
/// the service's topics are far below 32 KiB).
public enum OutboxFraming {
    public struct Malformed: Error, Equatable {}

    public static func encode(_ events: [OutboxEvent]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(events.reduce(0) { $0 + 6 + $1.topic.utf8.count + $1.payload.count })
        for event in events {
            let topic = Array(event.topic.utf8)
            precondition(topic.count < 0x8000, "outbox topics are under 32 KiB")
            withUnsafeBytes(of: (UInt16(topic.count) | (event.retain ? 0x8000 : 0)).bigEndian) { bytes.append(contentsOf: $0) }
            bytes.append(contentsOf: topic)
            withUnsafeBytes(of: UInt32(event.payload.count).bigEndian) { bytes.append(contentsOf: $0) }
            bytes.append(contentsOf: event.payload)
        }
        return bytes
    }

    public static func decode(_ bytes: [UInt8]) throws(Malformed) -> [OutboxEvent] {
        var events: [OutboxEvent] = []
        var index = 0
        func length(_ width: Int) throws(Malformed) -> Int {
            guard index + width <= bytes.count else { throw Malformed() }
            let value = bytes[index..<index + width].reduce(0) { $0 << 8 | Int($1) }
            index += width
            return value
        }
        while index < bytes.count {
            let marked = try length(2)
            let topicLength = marked & 0x7FFF, retain = marked & 0x8000 != 0
            guard index + topicLength <= bytes.count else { throw Malformed() }
            let topic = String(decoding: bytes[index..<index + topicLength], as: UTF8.self)
            index += topicLength
            let payloadLength = try length(4)
            guard index + payloadLength <= bytes.count else { throw Malformed() }
            events.append(OutboxEvent(topic: topic, payload: Array(bytes[index..<index + payloadLength]), retain: retain))
            index += payloadLength
        }
        return events
    }
}
