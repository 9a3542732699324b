import Foundation
import Logging
import MorpheusCore

/// `log.format = json`: one JSON object per line on standard error — `time`, `level`, `logger`,
/// `message`, then the metadata (`feedbackId` on every line about a message), `source` — for
/// log shippers that index fields. Each line is written with one `write`, so lines of
/// concurrent tasks never interleave.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    let label: String

    public init(label: String, level: Logger.Level) {
        self.label = label
        logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        var members: [(key: String, value: JSONValue)] = [
            ("time", .string(RFC3339.format(Date()))), ("level", .string(event.level.rawValue)), ("logger", .string(label)),
            ("message", .string(event.message.description)),
        ]
        members += merged.sorted { $0.key < $1.key }.map { ($0.key, Self.json($0.value)) }
        members.append(("source", .string("\(event.file.split(separator: "/").last ?? ""):\(event.line)")))
        let line = JSONValue.object(members).serialized() + [0x0A]
        line.withUnsafeBytes { _ = Foundation.write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }

    static func json(_ value: Logger.Metadata.Value) -> JSONValue {
        switch value {
        case .string(let text): .string(text)
        case .stringConvertible(let value): .string(value.description)
        case .array(let values): .array(values.map(json))
        case .dictionary(let values): .object(values.sorted { $0.key < $1.key }.map { ($0.key, json($0.value)) })
        }
    }
}
