import CMosquitto
#if canImport(Glibc)
import Glibc
#endif

// Conversions between MQTTPublishProperties and libmosquitto property lists.

private func propertyID(_ p: mqtt5_property) -> Int32 { Int32(p.rawValue) }

extension MQTTPublishProperties {
    /// Builds a libmosquitto property list, hands it to `body`, and frees it on every path.
    func withPropertyList<R>(operation: String, _ body: (OpaquePointer?) throws -> R) throws -> R {
        var list: OpaquePointer? = nil
        defer { mosquitto_property_free_all(&list) }
        func check(_ rc: Int32) throws {
            guard rc == MOSQ_ERR_SUCCESS.code else { throw MQTTError.library(rc, operation) }
        }
        if let responseTopic {
            try check(mosquitto_property_add_string(&list, propertyID(MQTT_PROP_RESPONSE_TOPIC), responseTopic))
        }
        if let correlationData {
            guard correlationData.count <= Int(UInt16.max) else { throw MQTTError(.invalidArgument, operation: operation) }
            try correlationData.withUnsafeBytes { bytes in
                try check(mosquitto_property_add_binary(&list, propertyID(MQTT_PROP_CORRELATION_DATA), bytes.baseAddress, UInt16(bytes.count)))
            }
        }
        for property in userProperties {
            try check(mosquitto_property_add_string_pair(&list, propertyID(MQTT_PROP_USER_PROPERTY), property.name, property.value))
        }
        if let contentType {
            try check(mosquitto_property_add_string(&list, propertyID(MQTT_PROP_CONTENT_TYPE), contentType))
        }
        if let messageExpiryInterval {
            try check(mosquitto_property_add_int32(&list, propertyID(MQTT_PROP_MESSAGE_EXPIRY_INTERVAL), messageExpiryInterval))
        }
        if let payloadIsUTF8 {
            try check(mosquitto_property_add_byte(&list, propertyID(MQTT_PROP_PAYLOAD_FORMAT_INDICATOR), payloadIsUTF8 ? 1 : 0))
        }
        return try body(list)
    }

    /// Copies the properties out of a list libmosquitto owns (valid only during a callback).
    init(copying list: OpaquePointer?) {
        self.init()
        guard let list else { return }
        var text: UnsafeMutablePointer<CChar>? = nil
        if mosquitto_property_read_string(list, propertyID(MQTT_PROP_RESPONSE_TOPIC), &text, false) != nil, let text {
            responseTopic = String(cString: text)
            free(text)
        }
        text = nil
        if mosquitto_property_read_string(list, propertyID(MQTT_PROP_CONTENT_TYPE), &text, false) != nil, let text {
            contentType = String(cString: text)
            free(text)
        }
        var binary: UnsafeMutableRawPointer? = nil
        var length: UInt16 = 0
        if mosquitto_property_read_binary(list, propertyID(MQTT_PROP_CORRELATION_DATA), &binary, &length, false) != nil {
            correlationData = binary.map { Array(UnsafeRawBufferPointer(start: $0, count: Int(length))) } ?? []
            free(binary)
        }
        var expiry: UInt32 = 0
        if mosquitto_property_read_int32(list, propertyID(MQTT_PROP_MESSAGE_EXPIRY_INTERVAL), &expiry, false) != nil {
            messageExpiryInterval = expiry
        }
        var format: UInt8 = 0
        if mosquitto_property_read_byte(list, propertyID(MQTT_PROP_PAYLOAD_FORMAT_INDICATOR), &format, false) != nil {
            payloadIsUTF8 = format == 1
        }
        var cursor: OpaquePointer? = list
        var skipFirst = false
        while true {
            var name: UnsafeMutablePointer<CChar>? = nil
            var value: UnsafeMutablePointer<CChar>? = nil
            guard let found = mosquitto_property_read_string_pair(cursor, propertyID(MQTT_PROP_USER_PROPERTY), &name, &value, skipFirst) else { break }
            userProperties.append(MQTTUserProperty(name.map { String(cString: $0) } ?? "", value.map { String(cString: $0) } ?? ""))
            free(name)
            free(value)
            cursor = found
            skipFirst = true
        }
    }
}
