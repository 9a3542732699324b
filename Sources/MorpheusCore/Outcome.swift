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
        guard payload.count <= Self.maxPayloadBytes else {
            return .invalid([ValidationIssue("", .payloadTooLarge, "the payload has \(payload.count) bytes; at most \(Self.maxPayloadBytes) are allowed")])
        }
        var parser = JSONParser(bytes: payload)
        let document: JSONValue
        do {
            document = try parser.parse()
        } catch {
            return .invalid([Self.issue(for: error)])
        }
        let log = IssueLog()
        for problem in parser.stringProblems {
            log.add(problem.path, .invalidValue, problem.kind == .nul ? "strings must not contain NUL (U+0000)" : "strings must not contain unpaired surrogate escapes")
        }
        guard let root = log.object(document, at: "") else { return .invalid(log.issues) }
        guard let schema = root.string("schema", maximum: 128) else { return .invalid(log.issues) }
        guard schema == Outcome.schemaName else {
            return .invalid(log.issues + [ValidationIssue("/schema", .unsupportedSchema, "schema must be \(Outcome.schemaName)")])
        }
        root.rejectUnknown(["schema", "outcomeId", "userId", "modality", "generation", "outcome", "occurredAt"])
        let outcomeId = Self.uuid(root, "outcomeId")
        let userId = Self.userId(root, "userId")
        if let userId, userId != topicUserId {
            log.add("/userId", .topicMismatch, "userId \(userId.debugDescription) differs from the topic's \(topicUserId.debugDescription)")
        }
        let modality = root.choice("modality", Modality.self, allowed: Modality.allCases)
        if let modality, modality.rawValue != topicModality {
            log.add("/modality", .topicMismatch, "modality \(modality.rawValue) differs from the topic's \(topicModality.debugDescription)")
        }
        let generation = Self.generation(root, promptRequired: false, promptAllowed: false)
        let kind = root.choice("outcome", Outcome.Kind.self, allowed: Outcome.Kind.allCases)
        let occurredAt = occurred(root, now: now)
        guard log.issues.isEmpty, let outcomeId, let userId, let modality, let generation, let kind, let occurredAt else {
            return .invalid(log.issues)
        }
        return .valid(Outcome(outcomeId: outcomeId, userId: userId, modality: modality, generation: generation, outcome: kind,
                              occurredAt: occurredAt, payloadHash: sha256Hex(document.canonicalized().serialized())))
    }
}
