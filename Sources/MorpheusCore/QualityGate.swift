import Foundation

/// The verdict of the quality gate on one correction.
public struct QualityVerdict: Sendable, Equatable {
    /// Stable flag codes (`pii`, `prompt_injection`, …); non-empty means "hold for review".
    public var flags: [String]
    /// 0…1, how useful the correction looks as training data.
    public var quality: Double

    public init(flags: [String] = [], quality: Double = 1) {
        self.flags = flags
        self.quality = quality
    }
}

/// The stage that decides whether a correction becomes training data or waits for a person:
/// the content rules (``ContentRules``), the history rules (``HistoryRules``), and any extra
/// rules a deployment adds.
public struct QualityGate: Sendable {
    public typealias Rule = @Sendable (Correction) -> QualityVerdict?

    public var rules: [Rule]

    public init(rules: [Rule] = []) {
        self.rules = rules
    }

    /// Every rule's flags together (in the contract's order) and the quality score (see
    /// ``QualityScore``); an added rule may only lower the quality.
    public func evaluate(_ correction: Correction, history: some ContributorHistory, record: ContributorRecord? = nil) -> QualityVerdict {
        let input = GateInput(correction)
        var flags = ContentRules.flags(input).union(HistoryRules.flags(correction, history: history))
        var quality = QualityScore.score(input, flags: flags, record: record)
        for rule in rules {
            guard let found = rule(correction) else { continue }
            flags.formUnion(found.flags.compactMap(FlagCode.init(rawValue:)))
            quality = min(quality, found.quality)
        }
        return QualityVerdict(flags: flags.sorted().map(\.rawValue), quality: quality)
    }
}

/// What review tools receive on `review/flagged`: no free text of the user.
public enum ReviewItem {
    public static let schemaName = "morpheus.review-item/1"

    public static func json(for correction: Correction, verdict: QualityVerdict, flaggedAt: Date) -> JSONValue {
        .object([
            ("schema", .string(schemaName)), ("feedbackId", .string(correction.feedbackId)),
            ("modality", .string(correction.modality.rawValue)), ("correctionType", .string(correction.correctionType.rawValue)),
            ("flags", .array(verdict.flags.map(JSONValue.string))), ("quality", .number((verdict.quality * 1000).rounded() / 1000)),
            ("flaggedAt", .string(RFC3339.format(flaggedAt))),
        ])
    }
}
