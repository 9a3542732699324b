import CMosquitto

/// An error from the MQTT binding.
///
/// `code` is stable and meant for programs; `description` is terse and never contains
/// credentials or payloads.
public struct MQTTError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure this is.
    public enum Code: String, Sendable, Equatable {
        /// libmosquitto returned an error code (see `libraryCode`).
        case library
        /// The broker answered with an MQTT 5 reason code of 0x80 or above (see `reasonCode`).
        case refusedByBroker
        /// A QoS 0 message or a request that needs a live connection was made while disconnected.
        case notConnected
        /// The client has been shut down; nothing more is sent or received.
        case shutdown
        /// The caller passed a value the protocol cannot carry (empty topic, oversized property…).
        case invalidArgument
        /// A wait for a condition ran out of time.
        case timeout
    }

    public let code: Code
    /// The libmosquitto `MOSQ_ERR_*` value, when `code == .library`.
    public let libraryCode: Int32?
    /// The MQTT 5 reason code, when `code == .refusedByBroker`.
    public let reasonCode: Int32?
    /// What was being attempted, e.g. `"publish"`.
    public let operation: String

    init(_ code: Code, operation: String, libraryCode: Int32? = nil, reasonCode: Int32? = nil) {
        self.code = code
        self.operation = operation
        self.libraryCode = libraryCode
        self.reasonCode = reasonCode
    }

    static func library(_ rc: Int32, _ operation: String) -> MQTTError {
        MQTTError(.library, operation: operation, libraryCode: rc)
    }

    public var description: String {
        switch code {
        case .library:
            let text = libraryCode.map { String(cString: mosquitto_strerror($0)) } ?? "unknown"
            return "MQTT \(operation) failed: \(text)"
        case .refusedByBroker:
            let text = reasonCode.map { String(cString: mosquitto_reason_string($0)) } ?? "unknown"
            return "MQTT \(operation) refused by broker: \(text) (0x\(String(reasonCode ?? 0, radix: 16)))"
        case .notConnected: return "MQTT \(operation) failed: not connected"
        case .shutdown: return "MQTT \(operation) failed: client shut down"
        case .invalidArgument: return "MQTT \(operation) failed: invalid argument"
        case .timeout: return "MQTT \(operation) timed out"
        }
    }
}

extension mosq_err_t {
    var code: Int32 { Int32(rawValue) }
}
