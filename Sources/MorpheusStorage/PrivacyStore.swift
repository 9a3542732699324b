import Foundation
import MorpheusCore
import Postgres

/// A privacy request with who asked for it, as applied by ``PrivacyStore``.
public struct PrivacyWork: Sendable {
    public var request: PrivacyRequest
    /// `user` (over MQTT) or `operator:<name>` (the CLI).
    public var requestedBy: String
    public var reason: String?
    /// The user's keyed pseudonym: the audit log's subject.
    public var subject: String

    public init(request: PrivacyRequest, requestedBy: String, reason: String? = nil, subject: String) {
        self.request = request
        self.requestedBy = requestedBy
        self.reason = reason
        self.subject = subject
    }
}

/// What applying a privacy request came to.
public enum PrivacyResult: Sendable, Equatable {
    /// Applied now, or earlier under the same id (a replay gets the first answer's counts).
    case applied(counts: [String: Int], settings: PrivacySettings, appliedAt: Date)
    /// The request id is stored with a different request.
    case conflict
    /// This version cannot carry out the action yet; nothing was recorded.
    case notImplemented
}

/// Privacy settings and requests in PostgreSQL (`docs/privacy.md`).
///
/// Requests and correction batches take the same per-user advisory lock inside their
/// transactions, so for any user they are applied one after the other in commit order, across
/// instances: a correction whose batch commits after an opt-out is refused.
public struct PrivacyStore: Sendable {
    public let pool: PostgresPool

    public init(pool: PostgresPool) {
        self.pool = pool
    }

    /// Applies one request in a transaction of its own (the CLI's path; the service applies
    /// requests inside its batch transactions with the same code).
    public func apply(_ work: PrivacyWork) async throws -> PrivacyResult {
        try await pool.transaction { connection in
            try Self.lock(users: [work.request.userId], connection)
            return try Self.apply(work, connection)
        }
    }

    /// The user's current settings (defaults for a user never seen).
    public func settings(of user: String) async throws -> PrivacySettings {
        try await pool.withConnection { try Self.settings(of: user, $0) }
    }

    /// Transaction-scoped advisory locks on users, in key order (no deadlock between batches).
    static func lock(users: [String], _ connection: PostgresConnection) throws {
        guard !users.isEmpty else { return }
        try connection.query("""
            SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT hashtextextended('morpheus/user/' || u, 0) AS k FROM unnest($1::text[]) AS u) keys ORDER BY k
            """, [users], prepared: true)
    }

    /// Which of `users` have opted out (run after their locks).
    static func optedOut(_ users: [String], _ connection: PostgresConnection) throws -> Set<String> {
        guard !users.isEmpty else { return [] }
        return Set(try connection.query(
            "SELECT user_id FROM privacy_settings WHERE opted_out AND user_id = ANY($1::text[])", [users], prepared: true
        ).map { try $0.decode("user_id", as: String.self) })
    }

    /// Counts refused messages per user; nothing else of them is kept.
    static func countRefused(_ counts: [String: Int], _ connection: PostgresConnection) throws {
        guard !counts.isEmpty else { return }
        let users = Array(counts.keys)
        try connection.query("""
            UPDATE privacy_settings s SET refused = s.refused + r.n FROM unnest($1::text[], $2::text[]::int8[]) AS r (user_id, n) WHERE s.user_id = r.user_id
            """, [users, users.map { String(counts[$0]!) }])
    }

    static func settings(of user: String, _ connection: PostgresConnection) throws -> PrivacySettings {
        guard let row = try connection.query(
            "SELECT opted_out, anonymized, refused, updated_at FROM privacy_settings WHERE user_id = $1", [user]
        ).first else { return PrivacySettings() }
        return PrivacySettings(optedOut: try row.decode("opted_out", as: Bool.self), anonymized: try row.decode("anonymized", as: Bool.self),
                               refused: try row.decode("refused", as: Int.self), updatedAt: try row.decode("updated_at", as: Date.self))
    }

    /// Applies a request under its user's lock, inside the caller's transaction.
    static func apply(_ work: PrivacyWork, _ connection: PostgresConnection) throws -> PrivacyResult {
        let request = work.request
        if let row = try connection.query(
            "SELECT payload_hash, counts::text AS counts, applied_at FROM privacy_requests WHERE request_id = $1::uuid", [request.requestId]
        ).first {
            // A replay: the first answer again, nothing applied twice.
            guard try row.decode("payload_hash", as: String.self) == request.payloadHash else { return .conflict }
            return .applied(counts: try Self.counts(row.decode("counts", as: String.self)), settings: try settings(of: request.userId, connection),
                            appliedAt: try row.decode("applied_at", as: Date.self))
        }
        var counts: [String: Int] = [:]
        switch request.action {
        case .optOut:
            // refused restarts with each opt-out.
            counts["settings"] = try connection.query("""
                INSERT INTO privacy_settings (user_id, opted_out, refused) VALUES ($1, true, 0)
                ON CONFLICT (user_id) DO UPDATE SET opted_out = true, refused = 0, updated_at = now() WHERE NOT privacy_settings.opted_out
                RETURNING 1
                """, [request.userId]).count
            // Stored corrections stay (erase removes them) but leave every dataset built from now on.
            counts["storedCorrections"] = try connection.query("SELECT count(*) AS n FROM feedback WHERE user_id = $1", [request.userId])
                .first?.decode("n", as: Int.self) ?? 0
        case .optIn:
            counts["settings"] = try connection.query("""
                UPDATE privacy_settings SET opted_out = false, updated_at = now() WHERE user_id = $1 AND opted_out RETURNING 1
                """, [request.userId]).count
        case .status:
            break
        case .anonymize, .identify, .erase:
            return .notImplemented
        }
        let applied = try connection.query("""
            INSERT INTO privacy_requests (request_id, subject, action, requested_by, reason, payload_hash, counts)
            VALUES ($1::uuid, $2, $3, $4, $5, $6, $7::jsonb) RETURNING applied_at
            """, [request.requestId, work.subject, request.action.rawValue, work.requestedBy, work.reason, request.payloadHash,
                  JSONValue.object(counts.sorted { $0.key < $1.key }.map { ($0.key, .number(Double($0.value))) }).serializedString])
            .first?.decode("applied_at", as: Date.self) ?? Date()
        return .applied(counts: counts, settings: try settings(of: request.userId, connection), appliedAt: applied)
    }

    static func counts(_ json: String) throws -> [String: Int] {
        var parser = JSONParser(bytes: Array(json.utf8))
        guard case .object(let members) = try parser.parse() else { return [:] }
        var counts: [String: Int] = [:]
        for (key, value) in members {
            if case .number(let number) = value { counts[key] = Int(number) }
        }
        return counts
    }
}
