/// How an ``MQTTClient`` connects and behaves. Always MQTT 5.
public struct MQTTClientConfiguration: Sendable {
    /// TLS settings; the broker's certificate is verified against `caFile`.
    public struct TLS: Sendable, Equatable {
        public var caFile: String
        public var certificateFile: String?
        public var keyFile: String?
        public init(caFile: String, certificateFile: String? = nil, keyFile: String? = nil) {
            self.caFile = caFile
            self.certificateFile = certificateFile
            self.keyFile = keyFile
        }
    }

    /// The message the broker publishes for us when the connection drops without a DISCONNECT.
    public struct LastWill: Sendable, Equatable {
        public var topic: String
        public var payload: [UInt8]
        public var qos: MQTTQoS
        public var retain: Bool
        public var contentType: String?
        public init(topic: String, payload: [UInt8], qos: MQTTQoS = .atLeastOnce, retain: Bool = true, contentType: String? = nil) {
            self.topic = topic
            self.payload = payload
            self.qos = qos
            self.retain = retain
            self.contentType = contentType
        }
    }

    /// Capped exponential backoff with jitter between reconnect attempts.
    public struct Backoff: Sendable, Equatable {
        public var initial: Duration
        public var maximum: Duration
        public init(initial: Duration = .milliseconds(200), maximum: Duration = .seconds(30)) {
            self.initial = initial
            self.maximum = maximum
        }

        /// The delay before attempt `attempt` (0-based): a random point in the upper half of
        /// `min(maximum, initial · 2^attempt)`, so that many clients do not reconnect in step.
        public func delay(attempt: Int, random: Double = Double.random(in: 0.5...1)) -> Duration {
            let ceiling = initial * Int(1 << UInt64(min(attempt, 20)))
            let capped = min(ceiling, maximum)
            return capped * random
        }
    }

    public var host: String
    public var port: Int
    /// Stable client id: the broker keys the persistent session on it.
    public var clientID: String
    /// `false` resumes the session the broker kept for `clientID`.
    public var cleanStart: Bool
    /// How long the broker keeps the session after a disconnect. 0 ends it at disconnect.
    public var sessionExpiry: Duration
    public var keepAlive: Duration
    public var username: String?
    /// Never logged or printed.
    public var password: String?
    public var tls: TLS?
    public var lastWill: LastWill?
    /// MQTT 5 Receive Maximum: how many unacknowledged QoS 1 messages the broker may send us.
    /// It bounds the size (and memory) of one ``MQTTBatch``.
    public var receiveMaximum: Int
    /// The most messages put into one batch before it is handed over.
    public var maxBatchSize: Int
    /// The most payload bytes put into one batch: reading stops once a batch holds this much
    /// (one message may exceed it; it is then a batch of its own).
    public var maxBatchBytes: Int
    /// How long a QoS 1 publish may wait for its PUBACK before it fails with `.timeout`.
    public var publishTimeout: Duration
    /// How long a started batch may wait for more messages before it is handed over (group
    /// commit under light load). Zero hands over whatever one read produced.
    public var batchWindow: Duration
    public var reconnectBackoff: Backoff
    /// How long ``MQTTClient/shutdown()`` waits for an outstanding batch to be acknowledged
    /// before it closes the socket without sending its PUBACKs.
    public var shutdownGrace: Duration

    public init(
        host: String = "127.0.0.1",
        port: Int = 1883,
        clientID: String,
        cleanStart: Bool = true,
        sessionExpiry: Duration = .zero,
        keepAlive: Duration = .seconds(30),
        username: String? = nil,
        password: String? = nil,
        tls: TLS? = nil,
        lastWill: LastWill? = nil,
        receiveMaximum: Int = 1000,
        maxBatchSize: Int = 1000,
        maxBatchBytes: Int = 32 << 20,
        batchWindow: Duration = .zero,
        reconnectBackoff: Backoff = Backoff(),
        shutdownGrace: Duration = .seconds(5),
        publishTimeout: Duration = .seconds(60)
    ) {
        self.host = host
        self.port = port
        self.clientID = clientID
        self.cleanStart = cleanStart
        self.sessionExpiry = sessionExpiry
        self.keepAlive = keepAlive
        self.username = username
        self.password = password
        self.tls = tls
        self.lastWill = lastWill
        self.receiveMaximum = receiveMaximum
        self.maxBatchSize = maxBatchSize
        self.maxBatchBytes = maxBatchBytes
        self.publishTimeout = publishTimeout
        self.batchWindow = batchWindow
        self.reconnectBackoff = reconnectBackoff
        self.shutdownGrace = shutdownGrace
    }
}

/// Where the client's connection stands.
public enum MQTTConnectionState: Sendable, Equatable {
    /// Opening the TCP connection or waiting for CONNACK.
    case connecting
    /// CONNACK received. `sessionPresent` is `false` when the broker had no session for us
    /// (every subscription has then been sent again).
    case connected(sessionPresent: Bool)
    /// Lost or refused; a reconnect is scheduled. `reason` is a short text for logs.
    case disconnected(reason: String)
    /// ``MQTTClient/shutdown()`` finished; terminal.
    case stopped

    public var isConnected: Bool {
        if case .connected = self { return true }
        return false
    }
}

extension Duration {
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
