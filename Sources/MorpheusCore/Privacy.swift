import Foundation

/// A user's request about their own data (contract v1 `morpheus.privacy/1`, on `privacy/{userId}`).
public struct PrivacyRequest: Sendable, Equatable {
    public static let schemaName = "morpheus.privacy/1"

    public enum Action: String, Sendable, CaseIterable {
        /// From the request's commit on, the user's corrections and outcomes are refused.
        case optOut = "opt_out"
        /// Collection resumes.
        case optIn = "opt_in"
        /// Stored feedback rewritten under the keyed pseudonym, personal data scrubbed.
        case anonymize
        /// Future feedback stored under the real id again.
        case identify
        /// Everything of the user deleted; an erasure log keeps counts.
        case erase
        /// Added: answers the user's current settings, changes nothing.
        case status
    }

    /// The idempotency key (lower-case UUID).
    public var requestId: String
    public var userId: String
    public var action: Action
    /// SHA-256 of the canonical request, to tell a replay from a reused id.
    public var payloadHash: String

    public init(requestId: String, userId: String, action: Action, payloadHash: String) {
        self.requestId = requestId
        self.userId = userId
        self.action = action
        self.payloadHash = payloadHash
    }
}

/// What the service holds about a user's privacy choices.
public struct PrivacySettings: Sendable, Equatable {
    public var optedOut: Bool
    public var anonymized: Bool
    /// Messages refused since the opt-out (a count; nothing of their content is kept).
    public var refused: Int
    public var updatedAt: Date?

    public init(optedOut: Bool = false, anonymized: Bool = false, refused: Int = 0, updatedAt: Date? = nil) {
        self.optedOut = optedOut
        self.anonymized = anonymized
        self.refused = refused
        self.updatedAt = updatedAt
    }

    public var json: JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            ("optedOut", .bool(optedOut)), ("anonymized", .bool(anonymized)), ("refusedSinceOptOut", .number(Double(refused))),
        ]
        if let updatedAt { members.append(("updatedAt", .string(RFC3339.format(updatedAt)))) }
        return .object(members)
    }
}

extension CorrectionValidator {
    /// Checks a PrivacyRequest that arrived on `privacy/{topicUserId}`, with the same rules and
    /// codes as a correction (`topic_mismatch` for another user than the topic's).
    public func validatePrivacy(_ payload: [UInt8], topicUserId: String) -> Validated<PrivacyRequest> {
        let root: Fields, log: IssueLog
        switch Self.document(payload, schema: PrivacyRequest.schemaName, fields: ["schema", "requestId", "userId", "action"]) {
        case .stopped(let issues): return .invalid(issues)
        case .ready(let fields, let issues): (root, log) = (fields, issues)
        }
        let requestId = Self.uuid(root, "requestId")
        let userId = Self.userId(root, "userId")
        if let userId, userId != topicUserId {
            log.add("/userId", .topicMismatch, "userId \(userId.debugDescription) differs from the topic's \(topicUserId.debugDescription)")
        }
        let action = root.choice("action", PrivacyRequest.Action.self, allowed: PrivacyRequest.Action.allCases)
        guard log.issues.isEmpty, let requestId, let userId, let action else { return .invalid(log.issues) }
        return .valid(PrivacyRequest(requestId: requestId, userId: userId, action: action,
                                     payloadHash: sha256Hex(JSONValue.object(root.members).canonicallySerialized())))
    }
}
