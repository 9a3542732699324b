import Foundation

/// What became of a generation a user saw (contract v1 `morpheus.outcome/1`).
public struct Outcome: Sendable, Equatable {
    public static let schemaName = "morpheus.outcome/1"

    public enum Kind: String, Sendable, CaseIterable {
        case accepted, corrected, regenerated, discarded
    }

    public var outcomeId: String
    public var userId: String
    public var modality: Modality
    public var generation: Generation
    public var outcome: Kind
    public var occurredAt: Date
    /// SHA-256 of the canonical message, to tell a republish from a reused id.
    public var payloadHash: String
}

extension CorrectionValidator {
    /// Checks an Outcome that arrived on `outcomes/{topicModality}/{topicUserId}`, with the same
    /// rules and codes as a correction.
    public func validateOutcome(_ payload: [UInt8], topicModality: String, topicUserId: String, now: Date) -> Validated<Outcome> {
        let root: Fields, log: IssueLog
        switch Self.document(payload, schema: Outcome.schemaName, fields: [
            "schema", "outcomeId", "userId", "modality", "generation", "outcome", "occurredAt",
        ]) {
        case .stopped(let issues): return .invalid(issues)
        case .ready(let fields, let issues): (root, log) = (fields, issues)
        }
        let outcomeId = Self.uuid(root, "outcomeId")
        let (userId, modality) = Self.sender(root, topicModality: topicModality, topicUserId: topicUserId)
        let generation = Self.generation(root, promptRequired: false, promptAllowed: false)
        let kind = root.choice("outcome", Outcome.Kind.self, allowed: Outcome.Kind.allCases)
        let occurredAt = occurred(root, now: now)
        guard log.issues.isEmpty, let outcomeId, let userId, let modality, let generation, let kind, let occurredAt else {
            return .invalid(log.issues)
        }
        return .valid(Outcome(outcomeId: outcomeId, userId: userId, modality: modality, generation: generation, outcome: kind,
                              occurredAt: occurredAt, payloadHash: sha256Hex(JSONValue.object(root.members).canonicallySerialized())))
    }
}
