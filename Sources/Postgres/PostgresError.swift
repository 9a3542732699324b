import CLibPQ

/// An error from the PostgreSQL binding.
///
/// `description` is deliberately terse (code, SQLSTATE, primary message) and never contains
/// connection parameters or bound values; `debugDescription` adds detail, hint, constraint
/// and the SQL text, for diagnostics.
public struct PostgresError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// What kind of failure this is.
    public enum Code: String, Sendable, Equatable {
        /// The connection could not be established.
        case connectionFailed
        /// The connection broke while in use (server restart, network); the next use reconnects.
        case connectionClosed
        /// The server rejected a statement; see `sqlState`.
        case server
        /// A bound value cannot be sent (e.g. text containing NUL).
        case invalidParameter
        /// A column could not be decoded as the requested type.
        case decoding
        /// The pool is closed, or a wait for a connection ran out.
        case poolUnavailable
        /// libpq was in a state the binding does not expect on a healthy connection (no result
        /// where one was due, a COPY, pipeline mode still on). The connection is discarded;
        /// the same work on a fresh one can succeed.
        case protocolViolation
    }

    public let code: Code
    /// The five-character SQLSTATE (e.g. `23505`), for `.server` errors.
    public let sqlState: String?
    public let message: String
    public let detail: String?
    public let hint: String?
    public let constraint: String?
    public let table: String?
    /// The statement that failed, without its bound values.
    public let query: String?

    public init(
        _ code: Code, message: String, sqlState: String? = nil, detail: String? = nil, hint: String? = nil,
        constraint: String? = nil, table: String? = nil, query: String? = nil
    ) {
        self.code = code
        self.message = message
        self.sqlState = sqlState
        self.detail = detail
        self.hint = hint
        self.constraint = constraint
        self.table = table
        self.query = query
    }

    /// `true` for SQLSTATE 23505: a unique constraint rejected the row.
    public var isUniqueViolation: Bool { sqlState == "23505" }
    /// `true` when retrying on a fresh connection can succeed.
    public var isConnectionFailure: Bool { code == .connectionFailed || code == .connectionClosed }

    public var description: String {
        if let sqlState { return "PostgreSQL \(code.rawValue) \(sqlState): \(message)" }
        return "PostgreSQL \(code.rawValue): \(message)"
    }

    public var debugDescription: String {
        var parts = [description]
        if let detail { parts.append("detail: \(detail)") }
        if let hint { parts.append("hint: \(hint)") }
        if let constraint { parts.append("constraint: \(constraint)") }
        if let table { parts.append("table: \(table)") }
        if let query { parts.append("query: \(query)") }
        return parts.joined(separator: "; ")
    }

    /// Builds the error for a failed result, reading libpq's diagnostic fields.
    static func from(result: OpaquePointer?, connection: OpaquePointer, query: String?) -> PostgresError {
        func field(_ code: Int32) -> String? {
            guard let result, let value = PQresultErrorField(result, code) else { return nil }
            return String(cString: value)
        }
        if PQstatus(connection) != CONNECTION_OK {
            return PostgresError(.connectionClosed, message: connectionMessage(connection), query: query)
        }
        guard let sqlState = field(CLibPQ_DIAG_SQLSTATE) else {
            // The connection is fine but there is no server verdict: a missing result or one
            // of an unexpected kind. Not a lost connection: retrying on this one would fail
            // the same way for ever.
            let status = result.map { String(cString: PQresStatus(PQresultStatus($0))) } ?? "no result"
            return PostgresError(.protocolViolation, message: "unexpected \(status): \(connectionMessage(connection))", query: query)
        }
        return PostgresError(
            .server,
            message: field(CLibPQ_DIAG_MESSAGE_PRIMARY) ?? connectionMessage(connection),
            sqlState: sqlState,
            detail: field(CLibPQ_DIAG_MESSAGE_DETAIL),
            hint: field(CLibPQ_DIAG_MESSAGE_HINT),
            constraint: field(CLibPQ_DIAG_CONSTRAINT_NAME),
            table: field(CLibPQ_DIAG_TABLE_NAME),
            query: query
        )
    }

    static func connectionMessage(_ connection: OpaquePointer?) -> String {
        guard let connection, let text = PQerrorMessage(connection) else { return "no connection" }
        let message = String(cString: text).trimmingCharacters(in: .whitespacesAndNewlines)
        return message.isEmpty ? "connection lost" : message
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: Set<Character>) -> String {
        var slice = Substring(self)
        while let first = slice.first, set.contains(first) { slice.removeFirst() }
        while let last = slice.last, set.contains(last) { slice.removeLast() }
        return String(slice)
    }
}

extension Set where Element == Character {
    fileprivate static let whitespacesAndNewlines: Set<Character> = [" ", "\n", "\t", "\r"]
}
