import Foundation

/// A parameter as it goes over the wire: text or binary, with a type OID (0 lets the server infer).
public struct PostgresBind: Sendable, Equatable {
    public enum Format: Sendable, Equatable { case text, binary }
    public var bytes: [UInt8]?
    public var format: Format
    public var oid: UInt32

    public init(bytes: [UInt8]?, format: Format = .text, oid: UInt32 = 0) {
        self.bytes = bytes
        self.format = format
        self.oid = oid
    }

    public static let null = PostgresBind(bytes: nil)

    /// Text that must not contain NUL, which PostgreSQL text types cannot store.
    static func text(_ value: String, oid: UInt32) throws -> PostgresBind {
        let bytes = Array(value.utf8)
        try refuseNUL(bytes)
        return PostgresBind(bytes: bytes, oid: oid)
    }

    /// PostgreSQL's text types cannot store U+0000; refused before anything is sent.
    static func refuseNUL(_ bytes: some Sequence<UInt8>) throws {
        if bytes.contains(0) { throw nulRefused }
    }

    static var nulRefused: PostgresError {
        PostgresError(.invalidParameter, message: "text contains a NUL character (U+0000), which PostgreSQL cannot store")
    }
}

/// A Swift value that can be bound as a statement parameter.
public protocol PostgresEncodable: Sendable {
    func postgresBind() throws -> PostgresBind
}

/// A Swift value that can be decoded from a column in text format.
public protocol PostgresDecodable {
    init(postgresText text: String) throws
}

enum OID {
    static let bool: UInt32 = 16, bytea: UInt32 = 17, int8: UInt32 = 20, int4: UInt32 = 23, text: UInt32 = 25
    static let float8: UInt32 = 701, timestamptz: UInt32 = 1184, uuid: UInt32 = 2950, jsonb: UInt32 = 3802
    static let textArray: UInt32 = 1009, int8Array: UInt32 = 1016, uuidArray: UInt32 = 2951
}

func decodingError(_ text: String, _ type: String) -> PostgresError {
    PostgresError(.decoding, message: "cannot decode \(text.prefix(40).debugDescription) as \(type)")
}

extension String: PostgresEncodable, PostgresDecodable {
    /// Bound with OID 0, so the server infers the column type (text, varchar, jsonb…).
    public func postgresBind() throws -> PostgresBind { try .text(self, oid: 0) }
    public init(postgresText text: String) { self = text }
}

/// Integers travel as decimal text; the OID tells the server their width.
public protocol PostgresInteger: FixedWidthInteger, PostgresEncodable, PostgresDecodable {
    static var postgresOID: UInt32 { get }
}

extension PostgresInteger {
    public func postgresBind() throws -> PostgresBind { PostgresBind(bytes: Array(String(self).utf8), oid: Self.postgresOID) }
    public init(postgresText text: String) throws {
        guard let value = Self(text) else { throw decodingError(text, "\(Self.self)") }
        self = value
    }
}

extension Int: PostgresInteger { public static var postgresOID: UInt32 { OID.int8 } }
extension Int64: PostgresInteger { public static var postgresOID: UInt32 { OID.int8 } }
extension Int32: PostgresInteger { public static var postgresOID: UInt32 { OID.int4 } }

extension Bool: PostgresEncodable, PostgresDecodable {
    public func postgresBind() throws -> PostgresBind { PostgresBind(bytes: self ? [0x74] : [0x66], oid: OID.bool) }
    public init(postgresText text: String) throws {
        switch text {
        case "t": self = true
        case "f": self = false
        default: throw decodingError(text, "Bool")
        }
    }
}

extension Double: PostgresEncodable, PostgresDecodable {
    /// Swift's description is the shortest text that reads back to the same bits.
    public func postgresBind() throws -> PostgresBind {
        let text = isNaN ? "NaN" : isInfinite ? (self < 0 ? "-Infinity" : "Infinity") : "\(self)"
        return PostgresBind(bytes: Array(text.utf8), oid: OID.float8)
    }
    public init(postgresText text: String) throws {
        switch text {
        case "NaN": self = .nan
        case "Infinity": self = .infinity
        case "-Infinity": self = -.infinity
        default:
            guard let value = Double(text) else { throw decodingError(text, "Double") }
            self = value
        }
    }
}

extension UUID: PostgresEncodable, PostgresDecodable {
    public func postgresBind() throws -> PostgresBind { PostgresBind(bytes: Array(uuidString.lowercased().utf8), oid: OID.uuid) }
    public init(postgresText text: String) throws {
        guard let value = UUID(uuidString: text) else { throw decodingError(text, "UUID") }
        self = value
    }
}

extension Date: PostgresEncodable, PostgresDecodable {
    /// Microsecond precision, UTC, as PostgreSQL stores `timestamptz`.
    public func postgresBind() throws -> PostgresBind {
        PostgresBind(bytes: Array(PostgresTimestamp.format(self).utf8), oid: OID.timestamptz)
    }
    public init(postgresText text: String) throws {
        guard let value = PostgresTimestamp.parse(text) else { throw decodingError(text, "Date") }
        self = value
    }
}

/// Raw bytes, bound in binary format as `bytea` and decoded from its hex text form.
public struct PostgresBytes: PostgresEncodable, PostgresDecodable, Equatable {
    public var bytes: [UInt8]
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public func postgresBind() throws -> PostgresBind { PostgresBind(bytes: bytes, format: .binary, oid: OID.bytea) }
    public init(postgresText text: String) throws {
        guard text.hasPrefix("\\x"), text.utf8.count % 2 == 0 else { throw decodingError(text, "bytea") }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count / 2 - 1)
        var high: UInt8?
        for character in text.utf8.dropFirst(2) {
            guard let nibble = hexValue(character) else { throw decodingError(text, "bytea") }
            if let h = high {
                bytes.append(h << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        self.bytes = bytes
    }
}

private func hexValue(_ c: UInt8) -> UInt8? {
    switch c {
    case 0x30...0x39: c - 0x30
    case 0x61...0x66: c - 0x61 + 10
    case 0x41...0x46: c - 0x41 + 10
    default: nil
    }
}

/// JSON text bound as `jsonb`. The server validates it; it comes back normalized.
public struct PostgresJSONB: PostgresEncodable, PostgresDecodable, Equatable {
    public var text: String
    public init(_ text: String) { self.text = text }
    public init(_ bytes: [UInt8]) { self.text = String(decoding: bytes, as: UTF8.self) }
    public func postgresBind() throws -> PostgresBind { try .text(text, oid: OID.jsonb) }
    public init(postgresText text: String) { self.text = text }
}

extension Optional: PostgresEncodable where Wrapped: PostgresEncodable {
    public func postgresBind() throws -> PostgresBind {
        switch self {
        case .none: .null
        case .some(let value): try value.postgresBind()
        }
    }
}

extension Array: PostgresEncodable where Element: PostgresArrayElement {
    /// As a one-dimensional array literal, every element quoted and escaped.
    public func postgresBind() throws -> PostgresBind {
        // Built as bytes: Character by Character it was a tenth of a batch's binding cost.
        var literal: [UInt8] = [UInt8(ascii: "{")]
        literal.reserveCapacity(2 + count * 24)
        for (index, element) in enumerated() {
            if index > 0 { literal.append(UInt8(ascii: ",")) }
            literal.append(UInt8(ascii: "\""))
            for byte in try element.postgresArrayText().utf8 {
                if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { literal.append(UInt8(ascii: "\\")) }
                literal.append(byte)
            }
            literal.append(UInt8(ascii: "\""))
        }
        literal.append(UInt8(ascii: "}"))
        try PostgresBind.refuseNUL(literal)
        return PostgresBind(bytes: literal, oid: Element.postgresArrayOID)
    }
}

/// Ids in their text form bound as `uuid[]`, parsed once when the statement is bound.
///
/// Write `$1::uuid[]` for it, not `$1::text[]::uuid[]` with a `[String]`: PostgreSQL's generic
/// plan (a prepared statement's from its sixth run on) evaluates a cast of a parameter again
/// for every row a filter reads, so `feedback_id <> ALL($2::text[]::uuid[])` parsed the whole
/// array anew per row — a fifth of PostgreSQL's CPU at the benchmark's maximum load.
public struct PostgresUUIDArray: PostgresEncodable {
    public var ids: [String]

    public init(_ ids: some Sequence<String>) { self.ids = Array(ids) }

    public func postgresBind() throws -> PostgresBind {
        var bind = try ids.postgresBind()
        bind.oid = OID.uuidArray
        return bind
    }
}

extension Array: PostgresDecodable where Element: PostgresArrayElement {
    public init(postgresText text: String) throws {
        self = try PostgresArrayLiteral.parse(text).map { item in
            guard let item else { throw decodingError(text, "array without NULL") }
            return try Element(postgresText: item)
        }
    }
}

/// Element types of the arrays this binding binds and decodes.
public protocol PostgresArrayElement: PostgresDecodable, Sendable {
    static var postgresArrayOID: UInt32 { get }
    func postgresArrayText() throws -> String
}

extension String: PostgresArrayElement {
    public static var postgresArrayOID: UInt32 { OID.textArray }
    public func postgresArrayText() throws -> String {
        try PostgresBind.refuseNUL(utf8)
        return self
    }
}

extension Int: PostgresArrayElement {
    public static var postgresArrayOID: UInt32 { OID.int8Array }
    public func postgresArrayText() -> String { String(self) }
}

/// Parser for PostgreSQL's one-dimensional array text output: `{a,"b c",NULL}`.
enum PostgresArrayLiteral {
    static func parse(_ text: String) throws -> [String?] {
        let characters = Array(text)
        guard characters.first == "{", characters.last == "}" else { throw decodingError(text, "array") }
        var items: [String?] = []
        var index = 1
        let end = characters.count - 1
        if end == 1 { return [] }
        while index <= end {
            var item = ""
            var quoted = false
            if characters[index] == "\"" {
                quoted = true
                index += 1
                while index < end, characters[index] != "\"" {
                    if characters[index] == "\\" { index += 1 }
                    guard index < end else { throw decodingError(text, "array") }
                    item.append(characters[index])
                    index += 1
                }
                index += 1
            } else {
                while index < end, characters[index] != "," {
                    item.append(characters[index])
                    index += 1
                }
            }
            items.append(!quoted && item == "NULL" ? nil : item)
            guard index == end || characters[index] == "," else { throw decodingError(text, "array") }
            index += 1
        }
        return items
    }
}

/// `timestamptz` text in the ISO style the connection sets: `2026-11-28 07:23:24.123456+00`.
public enum PostgresTimestamp {
    public static func format(_ date: Date) -> String {
        let micros = (date.timeIntervalSince1970 * 1_000_000).rounded()
        let seconds = Int64((micros / 1_000_000).rounded(.down))
        let fraction = Int64(micros) - seconds * 1_000_000
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        // Built by hand: String(format:) showed up in the service's profile.
        var text: [UInt8] = []
        text.reserveCapacity(30)
        func digits(_ value: Int, _ width: Int) {
            var divisor = 1
            for _ in 1..<width { divisor *= 10 }
            var rest = value
            while divisor > 0 {
                text.append(UInt8(ascii: "0") + UInt8(rest / divisor % 10))
                rest %= divisor
                divisor /= 10
            }
        }
        digits(Int(parts.tm_year) + 1900, 4)
        text.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mon) + 1, 2)
        text.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mday), 2)
        text.append(UInt8(ascii: " "))
        digits(Int(parts.tm_hour), 2)
        text.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_min), 2)
        text.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_sec), 2)
        text.append(UInt8(ascii: "."))
        digits(Int(fraction), 6)
        text.append(contentsOf: "+00".utf8)
        return String(decoding: text, as: UTF8.self)
    }

    public static func parse(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[range] {
                guard byte >= 0x30, byte <= 0x39 else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            return value
        }
        guard bytes.count >= 22, let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
              let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19) else { return nil }
        var index = 19
        var fraction = 0.0
        if index < bytes.count, bytes[index] == 0x2E {
            index += 1
            var scale = 0.1
            while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 {
                fraction += Double(bytes[index] - 0x30) * scale
                scale /= 10
                index += 1
            }
        }
        guard index < bytes.count, bytes[index] == 0x2B || bytes[index] == 0x2D else { return nil }
        let sign = bytes[index] == 0x2B ? 1 : -1
        guard let offsetHours = number(index + 1..<index + 3) else { return nil }
        var offsetMinutes = 0
        if index + 6 <= bytes.count, bytes[index + 3] == 0x3A, let minutes = number(index + 4..<index + 6) { offsetMinutes = minutes }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        let utc = timegm(&parts)
        let offset = sign * (offsetHours * 3600 + offsetMinutes * 60)
        return Date(timeIntervalSince1970: Double(utc - offset) + fraction)
    }
}

/// A one-dimensional `text[]` bound in binary format: no quoting or escaping, `NULL` elements
/// allowed. Cast it in SQL for other element types (`$1::text[]::uuid[]`, `::jsonb[]`) where
/// the cast runs once per statement (a `VALUES` row, `unnest` in `FROM`, an index condition),
/// never in a filter (see ``PostgresUUIDArray``): one such array per column binds a whole batch of rows to `INSERT … SELECT … FROM unnest(…)`, the
/// cheapest way to insert many rows with one statement.
public struct PostgresTextArray: PostgresEncodable {
    /// The array as it goes on the wire (array_recv): a header — dimensions, has-null flag,
    /// element type, then length and lower bound of the one dimension — kept up to date as
    /// elements are appended, then each element as a 4-byte length (-1 for NULL) and its bytes.
    /// Bound as it is: a batch's columns are megabytes, and every copy of them is memory at peak.
    private var wire: [UInt8]
    public private(set) var count = 0

    /// Offsets of the header's has-null flag and element count.
    private static let hasNullOffset = 4, countOffset = 12

    public init() {
        wire = []
        for value in [1, 0, Int32(OID.text), 0, 1] as [Int32] { Self.append(value, to: &wire) }
    }

    public init(_ strings: [String?]) throws {
        self.init()
        for string in strings { try append(string) }
    }

    /// Appends an element (`nil` is NULL); text containing NUL is refused.
    public mutating func append(_ string: String?) throws {
        guard var string else { return appendNull() }
        try string.withUTF8 { try append(bytes: $0) }
    }

    /// Appends UTF-8 bytes as one element (`nil` is NULL); NUL is refused.
    public mutating func append(bytes: [UInt8]?) throws {
        guard let bytes else { return appendNull() }
        try bytes.withUnsafeBufferPointer { try append(bytes: $0) }
    }

    public mutating func append(bytes: UnsafeBufferPointer<UInt8>) throws {
        if let base = bytes.baseAddress, memchr(base, 0, bytes.count) != nil { throw PostgresBind.nulRefused }
        appendElement(length: Int32(bytes.count))
        wire.append(contentsOf: bytes)
    }

    private mutating func appendNull() {
        appendElement(length: -1)
        Self.store(1, at: Self.hasNullOffset, in: &wire)
    }

    /// An element's length (-1 for NULL), counted in the header.
    private mutating func appendElement(length: Int32) {
        Self.append(length, to: &wire)
        count += 1
        Self.store(Int32(count), at: Self.countOffset, in: &wire)
    }

    private static func append(_ value: Int32, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }

    private static func store(_ value: Int32, at offset: Int, in bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { $0.storeBytes(of: value.bigEndian, toByteOffset: offset, as: Int32.self) }
    }

    public func postgresBind() throws -> PostgresBind {
        PostgresBind(bytes: count == 0 ? Self.empty : wire, format: .binary, oid: OID.textArray)
    }

    /// An empty array has no dimension: zero dimensions, no NULL, the element type.
    private static let empty: [UInt8] = {
        var bytes: [UInt8] = []
        for value in [0, 0, Int32(OID.text)] as [Int32] { append(value, to: &bytes) }
        return bytes
    }()
}
