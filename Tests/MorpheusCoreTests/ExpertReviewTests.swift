import Foundation
import MorpheusCore
import Testing
import TestSupport

/// Expert review: clean corrections that still go to a reviewer, with a reason and no flag.
@Suite("Expert review rules")
struct ExpertReviewTests {
    static func correction(user: String = "alice.w_1", generation: String = "g-1", text: String = "MARA: We ride at first light. Travel light, and keep that lantern shuttered.") throws -> Correction {
        let document = Samples.text.setting("/feedbackId", to: .string(UUID().uuidString)).setting("/userId", to: .string(user))
            .setting("/generation/id", to: .string(generation)).setting("/corrected/text", to: .string(text))
        guard case .valid(let correction) = validate(document) else { throw InvalidSample() }
        return correction
    }
    struct InvalidSample: Error {}

    @Test("low quality: a new contributor's clean rewrite passes; the same from a contributor reviewers keep rejecting is held; a flagged one gets no reason")
    func lowQuality() throws {
        let gate = QualityGate()
        let clean = try Self.correction()
        let fresh = gate.evaluate(clean, history: InMemoryHistory())
        #expect(!fresh.isHeld && fresh.reasons.isEmpty)
        let established = gate.evaluate(clean, history: InMemoryHistory(), record: ContributorRecord(approvals: 40, rejections: 2))
        #expect(!established.isHeld)
        let distrusted = gate.evaluate(clean, history: InMemoryHistory(), record: ContributorRecord(approvals: 1, rejections: 30))
        #expect(distrusted.isHeld && distrusted.flags.isEmpty && distrusted.reasons == ["low_quality"])
        let flagged = gate.evaluate(try Self.correction(text: "MARA: Mail me at jonas.weber@gmx.de tonight."), history: InMemoryHistory())
        #expect(flagged.flags == ["pii"] && flagged.reasons.isEmpty)
        // Off: nothing held without a flag.
        #expect(!QualityGate(expertReview: .off).evaluate(clean, history: InMemoryHistory(), record: ContributorRecord(rejections: 100)).isHeld)
    }

    @Test("the default threshold lies below any quality a contributor with a new contributor's record can get, and above a sunk record's good edit")
    func defaultThreshold() {
        let floor = QualityScore.lowestEdit * QualityScore.weight(reputation: ContributorRecord().reputation)
        #expect(ExpertReviewPolicy.defaultMinQuality < floor)
        // One approval in four (3 approvals, 13 rejections): a good rewrite (0.95) is held.
        #expect(0.95 * QualityScore.weight(reputation: ContributorRecord(approvals: 0, rejections: 13).reputation) < ExpertReviewPolicy.defaultMinQuality)
    }

    @Test("first corrections: a contributor's first N are held, then not; counted per user")
    func firstCorrections() throws {
        let gate = QualityGate(expertReview: ExpertReviewPolicy(firstCorrections: 2))
        var history = InMemoryHistory()
        var held: [Bool] = []
        for user in ["ann", "ann", "bea", "ann", "bea", "bea"] {
            let correction = try Self.correction(user: user, generation: UUID().uuidString)
            held.append(gate.evaluate(correction, history: history).reasons == ["new_contributor"])
            history.record(HistoryEntry(correction))
        }
        #expect(held == [true, true, true, false, true, false])
        // Counts read from storage count as well.
        let stored = InMemoryHistory(stored: [], counts: ["ann": 2])
        #expect(gate.evaluate(try Self.correction(user: "ann"), history: stored).reasons.isEmpty)
        // Without a history (the service before its transaction) the rule is not judged.
        #expect(gate.evaluate(try Self.correction(user: "zed"), history: nil).reasons.isEmpty)
    }

    @Test("wide audience: held once N distinct users saw the generation, counting the correcting user; repeat viewers count once")
    func wideAudience() throws {
        let gate = QualityGate(expertReview: ExpertReviewPolicy(audience: 3))
        var history = InMemoryHistory(stored: [], viewers: ["popular": ["outcome.only"]])
        var held: [Bool] = []
        for user in ["ann", "ann", "bea", "cid"] {
            let correction = try Self.correction(user: user, generation: "popular")
            held.append(gate.evaluate(correction, history: history).reasons.contains("wide_audience"))
            history.record(HistoryEntry(correction))
        }
        #expect(held == [false, false, true, true])
        #expect(!gate.evaluate(try Self.correction(user: "dan", generation: "quiet"), history: history).isHeld)
        // The count is bounded: the store reads at most N viewers.
        #expect(history.audience(generation: "popular", limit: 2).count == 2)
    }

    @Test("a held receipt says why: flagged, no flags, reviewReasons; an accepted one has no reviewReasons member")
    func receipt() {
        var receipt = Receipt(feedbackId: "f", status: .flagged, receivedAt: Date(timeIntervalSince1970: 0))
        receipt.reviewReasons = ["new_contributor"]
        let json = receipt.json.serializedString
        #expect(json.contains("\"flags\":[]") && json.contains("\"reviewReasons\":[\"new_contributor\"]"))
        #expect(!Receipt(feedbackId: "f", status: .accepted, receivedAt: Date()).json.serializedString.contains("reviewReasons"))
    }
}
