import Foundation

/// What a service instance tells operators on `status/{instanceId}` (retained), per contract v1.
public struct ServiceStatus: Codable, Sendable, Equatable {
    public enum State: String, Codable, Sendable {
        case online, draining, offline
    }

    /// Message counts since the instance started.
    public struct Counters: Codable, Sendable, Equatable {
        public var received = 0
        public var accepted = 0
        public var flagged = 0
        public var duplicate = 0
        public var rejected = 0
        public var deadLettered = 0
        public var published = 0
        public init() {}
    }

    /// Publish → receipt latency over the recent window, in milliseconds.
    public struct Latency: Codable, Sendable, Equatable {
        public var p50: Double
        public var p99: Double
        public init(p50: Double = 0, p99: Double = 0) {
            self.p50 = p50
            self.p99 = p99
        }
    }

    public static let schemaName = "morpheus.status/1"

    public var schema = ServiceStatus.schemaName
    public var instanceId: String
    public var state: State
    public var version: String
    public var startedAt: Date
    public var updatedAt: Date
    public var counters: Counters
    public var latencyMs: Latency

    public init(
        instanceId: String, state: State, version: String, startedAt: Date, updatedAt: Date,
        counters: Counters = Counters(), latencyMs: Latency = Latency()
    ) {
        self.instanceId = instanceId
        self.state = state
        self.version = version
        self.startedAt = startedAt
        self.updatedAt = updatedAt
        self.counters = counters
        self.latencyMs = latencyMs
    }

    /// The JSON payload: UTC RFC 3339 timestamps with milliseconds, keys in a stable order.
    public func encoded() -> [UInt8] {
        // Encoding plain numbers, strings and dates cannot fail.
        Array(try! WireJSON.encoder.encode(self))
    }

    public static func decode(_ bytes: [UInt8]) throws -> ServiceStatus {
        try WireJSON.decoder.decode(ServiceStatus.self, from: Data(bytes))
    }
}

/// The JSON conventions of the wire contract.
public enum WireJSON {
    /// RFC 3339 in UTC with millisecond precision, e.g. `2026-11-28T07:23:24.123Z`.
    public static func timestamp(_ date: Date) -> String { RFC3339.format(date) }

    public static func parseTimestamp(_ text: String) -> Date? { RFC3339.parse(text) }

    public static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(timestamp(date))
        }
        return encoder
    }()

    public static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = parseTimestamp(text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an RFC 3339 timestamp: \(text)")
            }
            return date
        }
        return decoder
    }()
}
