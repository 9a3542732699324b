import Foundation

/// Collects validation issues while a document is checked, so that all of them are reported.
final class IssueLog {
    private(set) var issues: [ValidationIssue] = []

    func add(_ path: JSONPointer, _ code: RejectionCode, _ message: String) {
        issues.append(ValidationIssue(path, code, message))
    }

    /// The members of `value` as an object, or an `invalid_type` issue.
    func object(_ value: JSONValue, at path: JSONPointer) -> Fields? {
        guard case .object(let members) = value else {
            add(path, .invalidType, "expected an object, found \(value.typeName)")
            return nil
        }
        return Fields(members: members, path: path, log: self)
    }
}

/// Typed, rule-checked access to the members of one JSON object. Every accessor reports what
/// is wrong to the log and returns `nil`; `finish(allowing:)` reports members nobody asked for.
struct Fields {
    let members: [(key: String, value: JSONValue)]
    let path: JSONPointer
    let log: IssueLog

    func value(_ key: String) -> JSONValue? { members.first { $0.key == key }?.value }

    /// Reports every member whose name is not in `known` as `unknown_field`. (An array: the
    /// lists are short, and building a Set per object hashed every name on the hot path.)
    func rejectUnknown(_ known: [String]) {
        for member in members where !known.contains(member.key) {
            log.add(path.appending(member.key), .unknownField, "unknown field \(member.key.debugDescription)")
        }
    }

    private func present(_ key: String, required: Bool) -> JSONValue? {
        guard let value = value(key) else {
            if required { log.add(path.appending(key), .missingField, "\(key) is required") }
            return nil
        }
        return value
    }

    /// A string of `minimum`…`maximum` Unicode scalars.
    func string(_ key: String, required: Bool = true, minimum: Int = 1, maximum: Int) -> String? {
        guard let value = present(key, required: required) else { return nil }
        guard case .string(let text) = value else {
            log.add(path.appending(key), .invalidType, "\(key) must be a string, found \(value.typeName)")
            return nil
        }
        // Scalars are 1…4 UTF-8 bytes: most strings are judged by their byte count alone.
        let bytes = text.utf8.count
        if bytes <= maximum, bytes >= 4 * minimum || (minimum <= 1 && bytes >= minimum) { return text }
        let length = text.unicodeScalars.count
        if length > maximum {
            log.add(path.appending(key), .tooLong, "\(key) has \(length) characters; at most \(maximum) are allowed")
            return nil
        }
        if length < minimum {
            log.add(path.appending(key), .invalidValue, minimum == 1 ? "\(key) must not be empty" : "\(key) needs at least \(minimum) characters")
            return nil
        }
        return text
    }

    /// A whole number within `range`.
    func integer(_ key: String, required: Bool = true, in range: ClosedRange<Int>) -> Int? {
        guard let value = present(key, required: required) else { return nil }
        guard case .number(let number) = value, number == number.rounded(), abs(number) < 9.0e15 else {
            log.add(path.appending(key), .invalidType, "\(key) must be a whole number")
            return nil
        }
        let integer = Int(number)
        guard range.contains(integer) else {
            log.add(path.appending(key), .invalidValue, "\(key) must be between \(range.lowerBound) and \(range.upperBound)")
            return nil
        }
        return integer
    }

    /// A finite number within `range`.
    func number(_ key: String, required: Bool = true, in range: ClosedRange<Double>) -> Double? {
        guard let value = present(key, required: required) else { return nil }
        guard case .number(let number) = value else {
            log.add(path.appending(key), .invalidType, "\(key) must be a number, found \(value.typeName)")
            return nil
        }
        guard range.contains(number) else {
            let upper = range.upperBound == .greatestFiniteMagnitude ? "" : " and at most \(JSONValue.format(range.upperBound))"
            log.add(path.appending(key), .invalidValue, "\(key) must be at least \(JSONValue.format(range.lowerBound))\(upper)")
            return nil
        }
        return number
    }

    func object(_ key: String, required: Bool = true) -> Fields? {
        guard let value = present(key, required: required) else { return nil }
        return log.object(value, at: path.appending(key))
    }

    func array(_ key: String, required: Bool = true) -> [JSONValue]? {
        guard let value = present(key, required: required) else { return nil }
        guard case .array(let elements) = value else {
            log.add(path.appending(key), .invalidType, "\(key) must be an array, found \(value.typeName)")
            return nil
        }
        return elements
    }

    /// A string that must be one of `choices`.
    func choice<T: RawRepresentable & Equatable>(_ key: String, _ type: T.Type, allowed: [T]) -> T? where T.RawValue == String {
        guard let text = string(key, maximum: 64) else { return nil }
        guard let value = T(rawValue: text), allowed.contains(value) else {
            log.add(path.appending(key), .invalidValue, "\(key) must be one of \(allowed.map(\.rawValue).joined(separator: ", "))")
            return nil
        }
        return value
    }
}
