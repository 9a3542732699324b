import Foundation

/// What a service instance tells operators on `status/{instanceId}` (retained), per contract v1.
public struct ServiceStatus: Sendable, Equatable {
    public enum State: String, Sendable {
        case online, draining, offline
    }

    /// Whether the instance can reach its database and store what it receives. `unavailable`
    /// tells operators why nothing moves: messages are held and retried, not rejected.
    public enum DatabaseState: String, Sendable {
        case available, unavailable
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
        /// Attempts to store a batch that failed for the service's own reasons and were retried.
        public var retries = 0
        /// Batches given back to the broker unacknowledged (held past the keep-alive).
        public var released = 0
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
    public var database: DatabaseState
    /// The last failure while `database` is `unavailable` (SQLSTATE and message, no secrets).
    public var databaseError: String?

    public init(
        instanceId: String, state: State, version: String, startedAt: Date, updatedAt: Date,
        counters: Counters = Counters(), latencyMs: Latency = Latency(), database: DatabaseState = .available,
        databaseError: String? = nil
    ) {
        self.instanceId = instanceId
        self.state = state
        self.version = version
        self.startedAt = startedAt
        self.updatedAt = updatedAt
        self.counters = counters
        self.latencyMs = latencyMs
        self.database = database
        self.databaseError = databaseError
    }

    /// The JSON payload, in the contract's member order, timestamps in UTC with milliseconds.
    public func encoded() -> [UInt8] {
        var members: [(key: String, value: JSONValue)] = [
            ("counters", .object([
                ("received", .number(Double(counters.received))), ("accepted", .number(Double(counters.accepted))),
                ("flagged", .number(Double(counters.flagged))), ("duplicate", .number(Double(counters.duplicate))),
                ("rejected", .number(Double(counters.rejected))), ("deadLettered", .number(Double(counters.deadLettered))),
                ("published", .number(Double(counters.published))), ("released", .number(Double(counters.released))),
                ("retries", .number(Double(counters.retries))),
            ])),
            ("database", .string(database.rawValue)),
            ("instanceId", .string(instanceId)),
            ("latencyMs", .object([("p50", .number(latencyMs.p50)), ("p99", .number(latencyMs.p99))])),
            ("schema", .string(schema)),
            ("startedAt", .string(RFC3339.format(startedAt))),
            ("state", .string(state.rawValue)),
            ("updatedAt", .string(RFC3339.format(updatedAt))),
            ("version", .string(version)),
        ]
        if let databaseError { members.insert(("databaseError", .string(databaseError)), at: 2) }
        return JSONValue.object(members).serialized()
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
        // Added after v1's first release: optional when reading.
        counters.retries = (try? count("retries")) ?? 0
        counters.released = (try? count("released")) ?? 0
        let latency = document["latencyMs"]
        return ServiceStatus(
            instanceId: try string(document["instanceId"], "instanceId"), state: state,
            version: try string(document["version"], "version"), startedAt: try date("startedAt"), updatedAt: try date("updatedAt"),
            counters: counters,
            latencyMs: Latency(p50: try number(latency?["p50"], "latencyMs.p50"), p99: try number(latency?["p99"], "latencyMs.p99")),
            database: (try? string(document["database"], "database")).flatMap(DatabaseState.init(rawValue:)) ?? .available,
            databaseError: try? string(document["databaseError"], "databaseError")
        )
    }
}
