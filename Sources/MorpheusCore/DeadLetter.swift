import Foundation

/// What the service publishes on `deadletter` for a message it cannot answer at all.
public struct DeadLetter: Sendable, Equatable {
    public static let schemaName = "morpheus.deadletter/1"
    public static let prefixLimit = 4096

    public var topic: String
    public var reason: String
    public var receivedAt: Date
    public var payloadSha256: String
    /// At most the first 4 KiB of the payload.
    public var payloadPrefix: [UInt8]
    /// The user the topic names, if any (not published): nothing of an opted-out user's
    /// messages is stored, dead letters included.
    public var userId: String?

    public init(topic: String, reason: String, receivedAt: Date, payload: [UInt8], userId: String? = nil) {
        self.userId = userId
        self.topic = topic
        self.reason = reason
        self.receivedAt = receivedAt
        self.payloadSha256 = sha256Hex(payload)
        self.payloadPrefix = Array(payload.prefix(Self.prefixLimit))
    }

    public var json: JSONValue {
        .object([
            ("schema", .string(Self.schemaName)), ("topic", .string(topic)), ("reason", .string(reason)),
            ("receivedAt", .string(RFC3339.format(receivedAt))), ("payloadSha256", .string(payloadSha256)),
            ("payloadPrefixBase64", .string(Data(payloadPrefix).base64EncodedString())),
        ])
    }
}

/// Reads the id a message names (`feedbackId`, `requestId`, `outcomeId`) even when the rest of
/// it is invalid, so that a rejection can still be answered.
public enum MessageIdentity {
    /// The UUID in member `field`: from the parsed document when it parses, otherwise from a
    /// lenient scan of the first 4 KiB (`"field" : "uuid"`), so that a malformed or oversized
    /// message that still names its id gets a receipt instead of a dead letter.
    public static func id(in payload: [UInt8], field: String) -> String? {
        if payload.count <= CorrectionValidator.maxPayloadBytes {
            var parser = JSONParser(bytes: payload)
            if let document = try? parser.parse() {
                guard case .string(let id)? = document[field], CorrectionValidator.isUUID(id) else { return nil }
                return id.lowercased()
            }
        }
        return scan(Array(payload.prefix(4096)), for: field)
    }

    private static func scan(_ bytes: [UInt8], for field: String) -> String? {
        let key = Array("\"\(field)\"".utf8)
        var start = 0
        while start + key.count <= bytes.count {
            guard let found = (start...(bytes.count - key.count)).first(where: { bytes[$0..<$0 + key.count].elementsEqual(key) }) else { return nil }
            var index = found + key.count
            func skipSpace() { while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 } }
            skipSpace()
            if index < bytes.count, bytes[index] == UInt8(ascii: ":") {
                index += 1
                skipSpace()
                if index + 38 <= bytes.count, bytes[index] == UInt8(ascii: "\""), bytes[index + 37] == UInt8(ascii: "\"") {
                    let candidate = String(decoding: bytes[index + 1..<index + 37], as: UTF8.self)
                    if CorrectionValidator.isUUID(candidate) { return candidate.lowercased() }
                }
            }
            start = found + 1
        }
        return nil
    }
}

/// The latencies of the most recent messages, for the status percentiles.
public struct LatencyWindow: Sendable {
    private var samples: [Double]
    private var next = 0
    private var filled = false

    public init(capacity: Int = 2048) {
        samples = Array(repeating: 0, count: capacity)
    }

    public mutating func record(milliseconds: Double) {
        samples[next] = milliseconds
        next = (next + 1) % samples.count
        if next == 0 { filled = true }
    }

    /// The p-quantile (0…1) by nearest rank; 0 without samples.
    public func percentile(_ p: Double) -> Double {
        let values = (filled ? samples : Array(samples[0..<next])).sorted()
        guard !values.isEmpty else { return 0 }
        let rank = Int((p * Double(values.count)).rounded(.up)) - 1
        return values[min(max(rank, 0), values.count - 1)]
    }
}
