/// A strict JSON parser for hostile input (RFC 8259), written for the contract's rules.
///
/// - The input must be valid UTF-8 without a BOM.
/// - Nesting deeper than `maxDepth` stops the parse (no deep recursion, no stack overflow).
/// - Numbers must be finite as doubles (`1e999` is refused).
/// - Duplicate object keys are refused: two values for one field are ambiguous.
/// - Strings containing NUL or an unpaired surrogate escape (`"\ud800"`) parse, but are reported
///   in `stringProblems` with their JSON pointer, so the validator can name the field.
public struct JSONParser {
    /// Why a document could not be parsed at all.
    public struct Failure: Error, Sendable, Equatable {
        public enum Kind: Sendable, Equatable { case malformed, tooDeep, duplicateKey, notFinite }
        public let kind: Kind
        public let path: JSONPointer
        public let message: String
    }

    /// A string that parsed but breaks the contract's string rules.
    public struct StringProblem: Sendable, Equatable {
        public enum Kind: Sendable, Equatable { case nul, unpairedSurrogate }
        public let kind: Kind
        public let path: JSONPointer
        public init(kind: Kind, path: JSONPointer) {
            self.kind = kind
            self.path = path
        }
    }

    public let maxDepth: Int
    private let bytes: [UInt8]
    private var index = 0
    private var path: [String] = []
    public private(set) var stringProblems: [StringProblem] = []

    public init(bytes: [UInt8], maxDepth: Int = 16) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    /// Parses the whole input as one JSON value.
    public mutating func parse() throws(Failure) -> JSONValue {
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { throw failure(.malformed, "a byte order mark is not allowed") }
        skipWhitespace()
        let value = try parseValue(depth: 0)
        skipWhitespace()
        guard index == bytes.count else { throw failure(.malformed, "unexpected data after the JSON value") }
        return value
    }

    private func failure(_ kind: Failure.Kind, _ message: String) -> Failure {
        Failure(kind: kind, path: JSONPointer(path), message: message)
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            let byte = bytes[index]
            guard byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 else { return }
            index += 1
        }
    }

    private mutating func parseValue(depth: Int) throws(Failure) -> JSONValue {
        guard index < bytes.count else { throw failure(.malformed, "unexpected end of input") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw failure(.malformed, "unexpected character at byte \(index)")
        }
    }

    private mutating func expectLiteral(_ literal: String) throws(Failure) {
        let expected = Array(literal.utf8)
        guard bytes.count - index >= expected.count, Array(bytes[index..<index + expected.count]) == expected else {
            throw failure(.malformed, "invalid literal at byte \(index)")
        }
        index += expected.count
    }

    private mutating func parseObject(depth: Int) throws(Failure) -> JSONValue {
        guard depth <= maxDepth else { throw failure(.tooDeep, "nesting deeper than \(maxDepth) levels") }
        index += 1
        var members: [(key: String, value: JSONValue)] = []
        members.reserveCapacity(8)
        // Duplicates are looked for by scanning the few members so far; a set only for large
        // objects (it was a quarter of the parser's cost on every message).
        var keys = Set<String>()
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object([])
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw failure(.malformed, "expected a member name at byte \(index)") }
            let key = try parseString()
            let duplicate: Bool
            if members.count < 16 {
                duplicate = members.contains { $0.key == key }
            } else {
                if keys.isEmpty { keys = Set(members.map(\.key)) }
                duplicate = !keys.insert(key).inserted
            }
            guard !duplicate else {
                path.append(key)
                defer { path.removeLast() }
                throw failure(.duplicateKey, "the member \(key.debugDescription) appears twice")
            }
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw failure(.malformed, "expected ':' at byte \(index)") }
            index += 1
            skipWhitespace()
            path.append(key)
            let value = try parseValue(depth: depth)
            path.removeLast()
            members.append((key, value))
            skipWhitespace()
            guard index < bytes.count else { throw failure(.malformed, "unterminated object") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(members) }
            throw failure(.malformed, "expected ',' or '}' at byte \(index)")
        }
    }

    private mutating func parseArray(depth: Int) throws(Failure) -> JSONValue {
        guard depth <= maxDepth else { throw failure(.tooDeep, "nesting deeper than \(maxDepth) levels") }
        index += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array([])
        }
        while true {
            skipWhitespace()
            path.append(String(elements.count))
            let value = try parseValue(depth: depth)
            path.removeLast()
            elements.append(value)
            skipWhitespace()
            guard index < bytes.count else { throw failure(.malformed, "unterminated array") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(elements) }
            throw failure(.malformed, "expected ',' or ']' at byte \(index)")
        }
    }

    private mutating func parseNumber() throws(Failure) -> Double {
        let start = index
        func digits() -> Int {
            let begin = index
            while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 { index += 1 }
            return index - begin
        }
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count else { throw failure(.malformed, "incomplete number") }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else if digits() == 0 {
            throw failure(.malformed, "invalid number at byte \(start)")
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard digits() > 0 else { throw failure(.malformed, "invalid number at byte \(start)") }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard digits() > 0 else { throw failure(.malformed, "invalid number at byte \(start)") }
        }
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        guard let value = Double(text), value.isFinite else { throw failure(.notFinite, "the number \(text.prefix(32)) is not finite") }
        return value
    }

    private mutating func parseString() throws(Failure) -> String {
        index += 1
        // Fast path: a run of printable ASCII up to the closing quote (nearly every key and
        // most values) becomes the string in one step.
        let end = plainRunEnd(from: index)
        if end < bytes.count, bytes[end] == UInt8(ascii: "\"") {
            let text = String(decoding: bytes[index..<end], as: UTF8.self)
            index = end + 1
            return text
        }
        // The rest is written into a byte buffer: runs that need no decoding copied whole, a
        // validated multi-byte sequence as it stands (the strict decoder admits only the
        // shortest form, which is that scalar's UTF-8), escapes as their scalar's UTF-8. The
        // buffer is valid UTF-8, so making the string repairs nothing.
        var utf8: [UInt8] = []
        utf8.reserveCapacity(end - index + 64)
        utf8.append(contentsOf: bytes[index..<end])
        index = end
        var sawNUL = false
        var sawLoneSurrogate = false
        func append(_ scalar: Unicode.Scalar) { utf8.append(contentsOf: UTF8.encode(scalar)!) }
        while true {
            guard index < bytes.count else { throw failure(.malformed, "unterminated string") }
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                if sawNUL { stringProblems.append(StringProblem(kind: .nul, path: JSONPointer(path))) }
                if sawLoneSurrogate { stringProblems.append(StringProblem(kind: .unpairedSurrogate, path: JSONPointer(path))) }
                return String(decoding: utf8, as: UTF8.self)
            case UInt8(ascii: "\\"):
                index += 1
                guard index < bytes.count else { throw failure(.malformed, "unterminated escape") }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(escape)
                case UInt8(ascii: "b"): utf8.append(0x08)
                case UInt8(ascii: "f"): utf8.append(0x0C)
                case UInt8(ascii: "n"): utf8.append(0x0A)
                case UInt8(ascii: "r"): utf8.append(0x0D)
                case UInt8(ascii: "t"): utf8.append(0x09)
                case UInt8(ascii: "u"):
                    let unit = try parseHex4()
                    if (0xD800...0xDBFF).contains(unit) {
                        // A high surrogate counts only when a low surrogate escape follows at once.
                        if index + 6 <= bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") {
                            let saved = index
                            index += 2
                            let low = try parseHex4()
                            if (0xDC00...0xDFFF).contains(low) {
                                append(Unicode.Scalar(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))!)
                                continue
                            }
                            index = saved
                        }
                        sawLoneSurrogate = true
                        append("\u{FFFD}")
                    } else if (0xDC00...0xDFFF).contains(unit) {
                        sawLoneSurrogate = true
                        append("\u{FFFD}")
                    } else {
                        if unit == 0 { sawNUL = true }
                        append(Unicode.Scalar(unit)!)
                    }
                default:
                    throw failure(.malformed, "invalid escape at byte \(index - 1)")
                }
            case 0x00..<0x20:
                throw failure(.malformed, "unescaped control character in a string at byte \(index)")
            case 0x20..<0x80:
                let runEnd = plainRunEnd(from: index)
                utf8.append(contentsOf: bytes[index..<runEnd])
                index = runEnd
            default:
                let start = index
                _ = try decodeUTF8()
                utf8.append(contentsOf: bytes[start..<index])
            }
        }
    }

    /// Where the run of printable ASCII that needs no decoding (no `\\`, no `"`) starting at
    /// `start` ends.
    private func plainRunEnd(from start: Int) -> Int {
        var end = start
        while end < bytes.count {
            let byte = bytes[end]
            guard byte >= 0x20, byte < 0x80, byte != UInt8(ascii: "\\"), byte != UInt8(ascii: "\"") else { break }
            end += 1
        }
        return end
    }

    private mutating func parseHex4() throws(Failure) -> UInt32 {
        guard index + 4 <= bytes.count else { throw failure(.malformed, "incomplete \\u escape") }
        var value: UInt32 = 0
        for byte in bytes[index..<index + 4] {
            let nibble: UInt8
            switch byte {
            case 0x30...0x39: nibble = byte - 0x30
            case 0x61...0x66: nibble = byte - 0x61 + 10
            case 0x41...0x46: nibble = byte - 0x41 + 10
            default: throw failure(.malformed, "invalid \\u escape at byte \(index)")
            }
            value = value << 4 | UInt32(nibble)
        }
        index += 4
        return value
    }

    /// One multi-byte UTF-8 sequence, strictly (no overlongs, no surrogates, ≤ U+10FFFF).
    private mutating func decodeUTF8() throws(Failure) -> Unicode.Scalar {
        let lead = bytes[index]
        let (count, minimum, initial): (Int, UInt32, UInt32) = switch lead {
        case 0xC2...0xDF: (2, 0x80, UInt32(lead & 0x1F))
        case 0xE0...0xEF: (3, 0x800, UInt32(lead & 0x0F))
        case 0xF0...0xF4: (4, 0x10000, UInt32(lead & 0x07))
        default: (0, 0, 0)
        }
        guard count > 0, index + count <= bytes.count else { throw failure(.malformed, "invalid UTF-8 at byte \(index)") }
        var value = initial
        for offset in 1..<count {
            let byte = bytes[index + offset]
            guard byte & 0xC0 == 0x80 else { throw failure(.malformed, "invalid UTF-8 at byte \(index)") }
            value = value << 6 | UInt32(byte & 0x3F)
        }
        guard value >= minimum, let scalar = Unicode.Scalar(value) else { throw failure(.malformed, "invalid UTF-8 at byte \(index)") }
        index += count
        return scalar
    }
}
