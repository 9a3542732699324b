import Foundation

/// Why a correction without a flag is held for a person: the expert review of high-impact
/// corrections. Stable codes, listed in a `flagged` receipt's `reviewReasons` and on the review
/// item; not flag codes, since nothing is wrong with the content.
public enum ReviewReason: String, Sendable, CaseIterable, Comparable {
    /// The quality score is below ``ExpertReviewPolicy/minQuality``.
    case lowQuality = "low_quality"
    /// One of the contributor's first ``ExpertReviewPolicy/firstCorrections`` corrections.
    case newContributor = "new_contributor"
    /// A change to a generation that at least ``ExpertReviewPolicy/audience`` users saw.
    case wideAudience = "wide_audience"

    public static func < (lhs: ReviewReason, rhs: ReviewReason) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// When a clean correction still waits for a reviewer. Each rule is off at 0.
///
/// The defaults come from the labelled public set (`docs/quality.md`): its clean corrections
/// are a careful reviewer's `accepted`, from contributors seen for the first time and on
/// generations nobody else corrected, so holding first corrections or widely seen generations
/// by default would hold corrections the reviewer passed. Only the quality rule is on, below
/// the lowest score a contributor with a new contributor's record (or better) can get: it holds
/// the clean-looking corrections of contributors whose record with the reviewers has sunk.
public struct ExpertReviewPolicy: Sendable, Equatable {
    /// Hold an unflagged correction whose quality is below this.
    public var minQuality: Double
    /// Hold a contributor's first N corrections (counted in PostgreSQL, across instances).
    public var firstCorrections: Int
    /// Hold a change to a generation that this many distinct users saw (corrected it or
    /// reported an outcome for it), counting the correction's own user.
    public var audience: Int

    public static let defaultMinQuality = 0.4

    public init(minQuality: Double = defaultMinQuality, firstCorrections: Int = 0, audience: Int = 0) {
        self.minQuality = minQuality
        self.firstCorrections = firstCorrections
        self.audience = audience
    }

    /// No rule: nothing is held without a flag.
    public static let off = ExpertReviewPolicy(minQuality: 0)

    /// Whether a rule depends on stored history (the store then asks PostgreSQL).
    public var needsHistory: Bool { firstCorrections > 0 || audience > 0 }

    /// The reasons that depend only on the correction's own verdict.
    public func reasons(quality: Double, flags: Set<FlagCode>) -> Set<ReviewReason> {
        flags.isEmpty && quality < minQuality ? [.lowQuality] : []
    }

    /// The reasons that depend on what was stored before the correction.
    public func reasons(_ correction: Correction, history: some ContributorHistory) -> Set<ReviewReason> {
        var reasons = Set<ReviewReason>()
        if firstCorrections > 0 && history.corrections(user: correction.userId, limit: firstCorrections) < firstCorrections {
            reasons.insert(.newContributor)
        }
        if audience > 0 {
            let seen = history.audience(generation: correction.generation.id, limit: audience)
            let count = seen.count + (seen.contains(correction.userId) ? 0 : 1)
            if count >= audience { reasons.insert(.wideAudience) }
        }
        return reasons
    }
}
