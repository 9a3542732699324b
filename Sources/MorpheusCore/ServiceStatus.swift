import Foundation

/// What a service instance tells operators on `status/{instanceId}` (retained), per contract v1.
public struct ServiceStatus: Sendable, Equatable {
    public enum State: String, Sendable {
        case online, draining, offline
    }

    /// Message counts since the instance started.
    public struct Counters: Sendable, Equatable {
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
    public struct Latency: Sendable, Equatable {
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

    /// The JSON payload, in the contract's member order, timestamps in UTC with milliseconds.
    public func encoded() -> [UInt8] {
        JSONValue.object([
            ("counters", .object([
                ("received", .number(Double(counters.received))), ("accepted", .number(Double(counters.accepted))),
                ("flagged", .number(Double(counters.flagged))), ("duplicate", .number(Double(counters.duplicate))),
                ("rejected", .number(Double(counters.rejected))), ("deadLettered", .number(Double(counters.deadLettered))),
                ("published", .number(Double(counters.published))),
            ])),
            ("instanceId", .string(instanceId)),
            ("latencyMs", .object([("p50", .number(latencyMs.p50)), ("p99", .number(latencyMs.p99))])),
            ("schema", .string(schema)),
            ("startedAt", .string(RFC3339.format(startedAt))),
            ("state", .string(state.rawValue)),
            ("updatedAt", .string(RFC3339.format(updatedAt))),
            ("version", .string(version)),
        ]).serialized()
    }

    /// Thrown when a payload is not a `morpheus.status/1`.
    public struct DecodingFailure: Error, Sendable, Equatable {
        public let field: String
    }

    /// Reads a status payload strictly (the CLI and tests read other instances' statuses).
    public static func decode(_ bytes: [UInt8]) throws -> ServiceStatus {
        var parser = JSONParser(bytes: bytes)
        let document = try parser.parse()
        func string(_ value: JSONValue?, _ field: String) throws -> String {
            guard case .string(let text)? = value else { throw DecodingFailure(field: field) }
            return text
        }
        func number(_ value: JSONValue?, _ field: String) throws -> Double {
            guard case .number(let number)? = value else { throw DecodingFailure(field: field) }
            return number
        }
        func date(_ field: String) throws -> Date {
            guard let date = RFC3339.parse(try string(document[field], field)) else { throw DecodingFailure(field: field) }
            return date
        }
        guard try string(document["schema"], "schema") == schemaName else { throw DecodingFailure(field: "schema") }
        guard let state = State(rawValue: try string(document["state"], "state")) else { throw DecodingFailure(field: "state") }
        let counts = document["counters"]
        func count(_ field: String) throws -> Int { Int(try number(counts?[field], "counters.\(field)")) }
        var counters = Counters()
        counters.received = try count("received")
        counters.accepted = try count("accepted")
        counters.flagged = try count("flagged")
        counters.duplicate = try count("duplicate")
        counters.rejected = try count("rejected")
        counters.deadLettered = try count("deadLettered")
        counters.published = try count("published")
        let latency = document["latencyMs"]
        return ServiceStatus(
            instanceId: try string(document["instanceId"], "instanceId"), state: state,
            version: try string(document["version"], "version"), startedAt: try date("startedAt"), updatedAt: try date("updatedAt"),
            counters: counters,
            latencyMs: Latency(p50: try number(latency?["p50"], "latencyMs.p50"), p99: try number(latency?["p99"], "latencyMs.p99"))
        )
    }
}
