import Postgres

/// What a failed attempt to store a message means for the editor who sent it — decided here
/// and nowhere else.
///
/// Only PostgreSQL's verdict on the row's own content may turn into a `rejected` receipt:
/// `rejected` promises that this payload will never be accepted, so the service's own trouble
/// (a lost connection, a lock or statement timeout, a deadlock, a full disk, a missing table,
/// shutdown) must never produce one. Those hold the message and try again, or leave it
/// unacknowledged for the broker to deliver again.
public enum StoreFailure: Sendable, Equatable {
    /// The database refused the row's content (SQLSTATE class 22 data exception, class 23
    /// integrity constraint violation, or a value the binding cannot send): the same payload
    /// will fail the same way.
    case contentRefused(code: String, message: String)
    /// The service's own trouble: retry with backoff.
    case transient(String)
    /// The task was cancelled (shutdown): stop, acknowledge nothing.
    case cancelled

    /// Unique constraints that decide idempotency: a violation of one of them means a
    /// concurrent writer stored the same id or content first, and a retry answers `duplicate`.
    public static let idempotencyConstraints: Set<String> = ["feedback_pkey", "feedback_content_key", "outcomes_pkey"]

    public init(_ error: any Error) {
        if error is CancellationError {
            self = .cancelled
            return
        }
        guard let error = error as? PostgresError else {
            self = .transient(String(describing: error))
            return
        }
        switch error.code {
        case .invalidParameter:
            self = .contentRefused(code: "invalid_value", message: error.message)
        case .server:
            let state = error.sqlState ?? ""
            if state.hasPrefix("22") {
                // 22001: a value longer than its column allows.
                self = .contentRefused(code: state == "22001" ? "too_long" : "invalid_value", message: error.message)
            } else if state.hasPrefix("23"), !Self.idempotencyConstraints.contains(error.constraint ?? "") {
                self = .contentRefused(code: "invalid_value", message: error.message)
            } else {
                // 08 connection, 40 serialization failure / deadlock, 53 insufficient
                // resources, 55P03 lock not available, 57014 statement timeout, 57P0x
                // shutdown, 58 system error, XX internal, 42 a schema the code does not
                // expect, 25 transaction state — and anything PostgreSQL adds later.
                self = .transient(error.description)
            }
        case .connectionFailed, .connectionClosed, .poolUnavailable, .decoding, .protocolViolation:
            self = .transient(error.description)
        }
    }

    /// Whether the database is unreachable (as opposed to reachable but failing a statement).
    public static func isUnreachable(_ error: any Error) -> Bool {
        guard let error = error as? PostgresError else { return false }
        return error.isConnectionFailure || error.code == .poolUnavailable
    }
}
