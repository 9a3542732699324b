import NIOConcurrencyHelpers

/// Quality of service of an MQTT message or subscription.
public enum MQTTQoS: Int32, Sendable, Comparable {
    case atMostOnce = 0
    case atLeastOnce = 1
    /// Supported for publishing only; see the delivery guide for why we never subscribe at QoS 2.
    case exactlyOnce = 2

    public static func < (lhs: MQTTQoS, rhs: MQTTQoS) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// The MQTT 5 properties of a PUBLISH that this binding reads and writes.
public struct MQTTPublishProperties: Sendable, Equatable {
    /// Where the receiver should send its answer.
    public var responseTopic: String?
    /// Opaque bytes the answer must carry back unchanged.
    public var correlationData: [UInt8]?
    /// Name/value pairs; order and repetition are preserved as MQTT 5 requires.
    public var userProperties: [MQTTUserProperty]
    /// MIME type of the payload, e.g. `application/json`.
    public var contentType: String?
    /// Seconds after which the broker drops the message if it was not delivered.
    public var messageExpiryInterval: UInt32?
    /// `true` when the payload is declared UTF-8 text (payload format indicator 1).
    public var payloadIsUTF8: Bool?

    public init(
        responseTopic: String? = nil,
        correlationData: [UInt8]? = nil,
        userProperties: [MQTTUserProperty] = [],
        contentType: String? = nil,
        messageExpiryInterval: UInt32? = nil,
        payloadIsUTF8: Bool? = nil
    ) {
        self.responseTopic = responseTopic
        self.correlationData = correlationData
        self.userProperties = userProperties
        self.contentType = contentType
        self.messageExpiryInterval = messageExpiryInterval
        self.payloadIsUTF8 = payloadIsUTF8
    }

    var isEmpty: Bool {
        responseTopic == nil && correlationData == nil && userProperties.isEmpty && contentType == nil
            && messageExpiryInterval == nil && payloadIsUTF8 == nil
    }
}

/// One MQTT 5 user property.
public struct MQTTUserProperty: Sendable, Equatable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// A message received from the broker. Everything is copied out of libmosquitto's buffers.
///
/// libmosquitto's public API does not expose the DUP flag of an incoming PUBLISH, so a
/// redelivery cannot be told apart here; consumers must be idempotent anyway.
public struct MQTTMessage: Sendable, Equatable {
    public var topic: String
    public var payload: [UInt8]
    public var qos: MQTTQoS
    public var retain: Bool
    public var properties: MQTTPublishProperties

    public init(topic: String, payload: [UInt8], qos: MQTTQoS, retain: Bool, properties: MQTTPublishProperties) {
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.properties = properties
    }
}

/// A message to publish.
public struct MQTTOutgoingMessage: Sendable, Equatable {
    public var topic: String
    public var payload: [UInt8]
    public var qos: MQTTQoS
    public var retain: Bool
    public var properties: MQTTPublishProperties

    public init(
        topic: String, payload: [UInt8], qos: MQTTQoS = .atLeastOnce, retain: Bool = false,
        properties: MQTTPublishProperties = MQTTPublishProperties()
    ) {
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.properties = properties
    }
}

/// The messages one read of the socket produced.
///
/// The broker is told that these messages were received (their PUBACKs leave) only after
/// ``acknowledge()`` is called. Until then the client reads nothing more and writes nothing,
/// so a crash before `acknowledge()` makes the broker redeliver the whole batch to the
/// persistent session. Call `acknowledge()` exactly when the batch is durably handled, or
/// ``release()`` when it cannot be handled before ``deadline``; a batch that is neither
/// stalls the connection.
public final class MQTTBatch: Sendable {
    /// The messages, in the order the broker sent them.
    public var messages: [MQTTMessage] {
        handedOver()
        return storedMessages
    }
    /// Acknowledge or release the batch before this instant. While a batch is held no PINGREQ
    /// can leave (it would queue behind the batch's PUBACKs), so past it the broker may drop
    /// the connection for silence (1.5 × keep-alive after the last packet we sent).
    public var deadline: ContinuousClock.Instant {
        handedOver()
        return storedDeadline
    }
    private let storedMessages: [MQTTMessage]
    private let storedDeadline: ContinuousClock.Instant
    private let settle: NIOLockedValueBox<(@Sendable (_ acknowledged: Bool) -> Void)?>

    init(messages: [MQTTMessage], deadline: ContinuousClock.Instant, settle: @escaping @Sendable (_ acknowledged: Bool) -> Void) {
        storedMessages = messages
        storedDeadline = deadline
        self.settle = NIOLockedValueBox(settle)
        handedOver()
    }

    /// A batch is built on the network thread and read on the consumer's, handed over through
    /// an AsyncStream whose lock (a futex on Linux) ThreadSanitizer cannot see; it then reports
    /// the fields' initialization racing with their first read. Taking this pthread lock at the
    /// end of `init` and before each read makes the hand-over visible to it.
    private func handedOver() {
        settle.withLockedValue { _ in }
    }

    /// Releases the acknowledgements of every message in the batch. Idempotent; after
    /// ``release()`` it does nothing.
    public func acknowledge() { take()?(true) }

    /// Gives the batch back unacknowledged: the client drops its connection without sending
    /// the batch's PUBACKs and connects again, resuming its session, and the broker sends the
    /// messages again. For a caller that cannot make the batch durable in time (its database
    /// is down); the connection is never left silent long enough for the broker to call it
    /// dead. Idempotent; after ``acknowledge()`` it does nothing.
    public func release() { take()?(false) }

    private func take() -> (@Sendable (Bool) -> Void)? {
        settle.withLockedValue { action in
            defer { action = nil }
            return action
        }
    }
}
