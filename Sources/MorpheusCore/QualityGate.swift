import Foundation

/// The verdict of the quality gate on one correction.
public struct QualityVerdict: Sendable, Equatable {
    /// Stable flag codes (`pii`, `prompt_injection`, …); non-empty means "hold for review".
    public var flags: [String]
    /// 0…1, how useful the correction looks as training data.
    public var quality: Double
    /// ``ReviewReason`` codes: why a correction is held for expert review without a flag.
    public var reasons: [String]

    public init(flags: [String] = [], quality: Double = 1, reasons: [String] = []) {
        self.flags = flags
        self.quality = quality
        self.reasons = reasons
    }

    /// Whether the correction waits for a reviewer (answered `flagged`) instead of becoming
    /// training data.
    public var isHeld: Bool { !flags.isEmpty || !reasons.isEmpty }
}

/// The stage that decides whether a correction becomes training data or waits for a person:
/// the content rules (``ContentRules``), the history rules (``HistoryRules``), and any extra
/// rules a deployment adds.
public struct QualityGate: Sendable {
    public typealias Rule = @Sendable (Correction) -> QualityVerdict?

    public var rules: [Rule]
    /// When a clean correction still goes to a reviewer.
    public var expertReview: ExpertReviewPolicy

    public init(rules: [Rule] = [], expertReview: ExpertReviewPolicy = ExpertReviewPolicy()) {
        self.rules = rules
        self.expertReview = expertReview
    }

    /// Every rule's flags together (in the contract's order), the quality score (see
    /// ``QualityScore``; an added rule may only lower it) and the expert-review reasons.
    ///
    /// Without `history` only what the correction shows on its own is judged: the service
    /// judges the history rules inside the batch's transaction, against PostgreSQL.
    public func evaluate(_ correction: Correction, history: (any ContributorHistory)?, record: ContributorRecord? = nil) -> QualityVerdict {
        let input = GateInput(correction)
        var flags = ContentRules.flags(input)
        var reasons = Set<ReviewReason>()
        if let history {
            flags.formUnion(HistoryRules.flags(correction, history: history))
            reasons = expertReview.reasons(correction, history: history)
        }
        var quality = QualityScore.score(input, flags: flags, record: record)
        for rule in rules {
            guard let found = rule(correction) else { continue }
            flags.formUnion(found.flags.compactMap(FlagCode.init(rawValue:)))
            quality = min(quality, found.quality)
        }
        reasons.formUnion(expertReview.reasons(quality: quality, flags: flags))
        return QualityVerdict(flags: flags.sorted().map(\.rawValue), quality: quality, reasons: reasons.sorted().map(\.rawValue))
    }
}

/// What review tools receive on `review/flagged`: no free text of the user.
public enum ReviewItem {
    public static let schemaName = "morpheus.review-item/1"

    public static func json(for correction: Correction, verdict: QualityVerdict, flaggedAt: Date) -> JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            ("schema", .string(schemaName)), ("feedbackId", .string(correction.feedbackId)),
            ("modality", .string(correction.modality.rawValue)), ("correctionType", .string(correction.correctionType.rawValue)),
            ("flags", .array(verdict.flags.map(JSONValue.string))),
        ]
        // As on the receipt: present only when an expert-review rule held it.
        if !verdict.reasons.isEmpty { members.append(("reviewReasons", .array(verdict.reasons.map(JSONValue.string)))) }
        members += [("quality", .number((verdict.quality * 1000).rounded() / 1000)), ("flaggedAt", .string(RFC3339.format(flaggedAt)))]
        return .object(members)
    }
}
