import Foundation

/// A contributor's record with the reviewers: the reward/penalty signal of the quality score.
public struct ContributorRecord: Sendable, Equatable {
    public var approvals: Int
    public var rejections: Int
    public init(approvals: Int = 0, rejections: Int = 0) {
        self.approvals = approvals
        self.rejections = rejections
    }

    /// The smoothed approval rate: the mean of a Beta(4 + approvals, 1 + rejections). A new
    /// contributor starts at 0.8, and one decision moves that by at most 0.13.
    public var reputation: Double { (4 + Double(approvals)) / (5 + Double(approvals + rejections)) }
}

/// `quality` in 0…1 of a correction as training data (`docs/quality.md` gives the reasons):
/// the edit itself × the weight of the contributor's record, and at most 0.3 when flagged.
public enum QualityScore {
    public static func score(_ input: GateInput, flags: Set<FlagCode>, record: ContributorRecord? = nil) -> Double {
        let reputation = (record ?? ContributorRecord()).reputation
        var quality = edit(input) * weight(reputation: reputation)
        if !flags.isEmpty { quality = min(quality, 0.3) * max(0.2, 1 - 0.15 * Double(flags.count - 1)) }
        return (min(1, max(0, quality)) * 1000).rounded() / 1000
    }

    /// How much the contributor's record counts: 0.85 for a new contributor (reputation 0.8),
    /// 1 for a perfect record, 0.25 for none approved. Steep enough that a record sunk to one
    /// approval in four pulls even a good-looking edit under the expert-review threshold.
    public static func weight(reputation: Double) -> Double { 0.25 + 0.75 * reputation }

    /// The lowest score an edit can get on its own: a one-word fix in a very long text, pasted
    /// and sent within a third of a second (`edit` below).
    public static let lowestEdit = 0.75 * 0.85 * 0.8

    /// How useful the edit looks on its own.
    static func edit(_ input: GateInput) -> Double {
        let correction = input.correction
        switch (correction.original, correction.corrected) {
        case let (.text, .text(corrected)):
            let change = input.textDiff?.change ?? 1
            // A one-word fix is real but small; a full rewrite may drift; between is best.
            var score = change < 0.02 ? 0.75 : (change <= 0.9 ? 0.95 : 0.85)
            if MassDeletion.trimmedLength(corrected) < 3 { score *= 0.8 }
            if let duration = correction.editDurationMs {
                let added = input.textDiff?.addedCharacters ?? 0
                let seconds = max(Double(duration) / 1000, 0.001)
                // Hundreds of characters at more than 40 a second were pasted, not written.
                if added > 200 && Double(added) / seconds > 40 { score *= 0.85 }
                // A substantial edit in under a third of a second was not looked at.
                if added > 20 && duration < 300 { score *= 0.8 }
            }
            return score
        case let (.image(original), .image(corrected)):
            if corrected.mask != nil && corrected.instruction != nil { return 0.95 }
            if corrected.prompt != nil { return 0.9 }
            return corrected.uri != original.uri ? 0.85 : 0.7
        case (.layout, .layout):
            return 0.9
        default:
            return 0.5
        }
    }
}
