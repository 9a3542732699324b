import MorpheusCore
import Testing

/// Stratified allocation, the contributor cap, and the bias report's figures.
@Suite("Sampling and bias report")
struct SamplingTests {
    @Test("proportional allocation follows the strata's sizes, largest remainder first; floors come first")
    func proportional() {
        #expect(Sampling.quotas(available: [600, 300, 100], target: 100, allocation: .proportional) == [60, 30, 10])
        #expect(Sampling.quotas(available: [600, 300, 100], target: 100, allocation: .proportional, floor: 20) == [45, 32, 23])
        #expect(Sampling.quotas(available: [5, 3], target: 100, allocation: .proportional) == [5, 3], "a target above the total takes everything")
        #expect(Sampling.quotas(available: [1, 1, 1], target: 2, allocation: .proportional) == [1, 1, 0], "ties go to the lower index")
    }

    @Test("equal allocation fills every stratum alike as far as each has rows")
    func equal() {
        #expect(Sampling.quotas(available: [600, 300, 5], target: 100, allocation: .equal) == [48, 47, 5])
        #expect(Sampling.quotas(available: [10, 10], target: 7, allocation: .equal) == [4, 3])
        // Floors that the target cannot pay for: an equal share of the target instead.
        #expect(Sampling.quotas(available: [50, 50, 50], target: 30, allocation: .proportional, floor: 20) == [10, 10, 10])
    }

    @Test("for random inputs: quotas stay within what strata have, add up to the target, and keep the floors")
    func quotaInvariants() {
        var random = SplitMix(seed: 7)
        for _ in 0..<500 {
            let available = (0..<Int(random.next() % 6 + 1)).map { _ in Int(random.next() % 200) }
            let target = Int(random.next() % 400) + 1
            let floor = Int(random.next() % 10)
            for allocation in Sampling.Allocation.allCases {
                let quotas = Sampling.quotas(available: available, target: target, allocation: allocation, floor: floor)
                #expect(zip(quotas, available).allSatisfy { $0 >= 0 && $0 <= $1 })
                #expect(quotas.reduce(0, +) == min(target, available.reduce(0, +)))
                if available.map({ min($0, floor) }).reduce(0, +) <= target {
                    #expect(zip(quotas, available).allSatisfy { $0 >= min($1, floor) }, "\(available) \(target) \(floor) \(allocation) → \(quotas)")
                }
            }
        }
    }

    @Test("the contributor cap holds for the dataset as it comes out; capped rows are replaced from the same stratum")
    func contributorCap() {
        // Contributor 0 wrote half of stratum 0.
        var rows: [(stratum: Int32, contributor: Int32)] = []
        for index in 0..<1000 {
            let contributor: Int32 = index % 4 == 0 ? 0 : Int32(index % 97 + 1)
            rows.append((Int32(index % 2), contributor))
        }
        let quotas = [100, 100]
        let free = Sampling.select(rows: rows, quotas: quotas, maxContributorShare: nil)
        #expect(free.count == 200 && free.cap == nil)
        let capped = Sampling.select(rows: rows, quotas: quotas, maxContributorShare: 0.05)
        #expect(capped.count == 200, "other contributors' rows of the stratum fill the places")
        #expect(capped.largestContribution <= 10 && capped.cap == 10)
        #expect(capped.cappedRows > 0)
        // Per stratum never more than its quota.
        let perStratum = rows.indices.filter { capped.selected[$0] }.reduce(into: [Int32: Int]()) { $0[rows[$1].stratum, default: 0] += 1 }
        #expect(perStratum == [0: 100, 1: 100])
        #expect(Sampling.select(rows: rows, quotas: quotas, maxContributorShare: 0.05) == capped, "deterministic")
    }

    @Test("when the cap shrinks the dataset, the cap is recomputed for the smaller size")
    func capOnShrunkDataset() {
        // Two contributors only: a 10 % cap can never be met by 2 contributors; one example each is the floor of a cap.
        let rows: [(stratum: Int32, contributor: Int32)] = (0..<100).map { (0, Int32($0 % 2)) }
        let selection = Sampling.select(rows: rows, quotas: [100], maxContributorShare: 0.1)
        #expect(selection.count == 2 && selection.largestContribution == 1)
        // Random populations: no contributor above the share of what was selected (or above one example).
        var random = SplitMix(seed: 11)
        for _ in 0..<200 {
            let count = Int(random.next() % 500) + 1, contributors = Int(random.next() % 40) + 1
            let rows: [(stratum: Int32, contributor: Int32)] = (0..<count).map { _ in
                let u = Double(random.next() % 10_000) / 10_000
                return (Int32(random.next() % 3), Int32(u * u * Double(contributors)))
            }
            let share = [0.02, 0.05, 0.2, 0.5][Int(random.next() % 4)]
            let available = (0..<3).map { s in rows.filter { $0.stratum == Int32(s) }.count }
            let selection = Sampling.select(rows: rows, quotas: Sampling.quotas(available: available, target: count / 2 + 1, allocation: .equal),
                                            maxContributorShare: share)
            #expect(selection.largestContribution <= max(1, Int(share * Double(selection.count))))
        }
    }

    @Test("Gini, concentration and imbalance figures, and warnings past the thresholds")
    func biasFigures() {
        #expect(BiasReport.gini([5, 5, 5, 5]) == 0)
        #expect(abs(BiasReport.gini([0, 0, 0, 10]) - 0.75) < 1e-12)
        #expect(abs(BiasReport.gini([1, 2, 3, 4]) - 0.25) < 1e-12)
        let report = BiasReport.make(perContributor: [50, 10, 10, 10, 10, 10], strata: [("a", 100, 90), ("b", 10, 10)],
                                     modelVersions: ["m@1": 80, "m@2": 20], arms: ["exp:A": 60, "exp:B": 40], qualities: [0.5, 0.7, 0.9, 0.95],
                                     languages: ["en": 3, "de": 1], thresholds: BiasThresholds())
        #expect(report.examples == 100 && report.contributors == 6)
        #expect(report.topContributorShare == 0.5 && report.topTenShare == 1)
        #expect(report.stratumImbalance == 9 && report.modelVersionSkew == 4 && report.armSkew == 1.5)
        #expect(report.qualityHistogram == [0, 0, 0, 0, 0, 1, 0, 1, 0, 2] && report.qualityMedian == 0.8 && report.lowQualityShare == 0.25)
        let codes = report.warnings.map { $0.split(separator: ":")[0] }
        #expect(codes == ["contributor_concentration", "contributor_concentration"])
        var strict = BiasThresholds()
        strict.stratumImbalance = 5
        strict.armSkew = 1.2
        let flagged = BiasReport.make(perContributor: [1, 1], strata: [("a", 9, 9), ("b", 1, 1)], modelVersions: [:], arms: ["x:A": 3, "x:B": 1],
                                      qualities: [0.1, 0.2], languages: [:], thresholds: strict)
        #expect(flagged.warnings.map { String($0.split(separator: ":")[0]) } == ["contributor_concentration", "contributor_concentration", "stratum_imbalance", "arm_skew", "low_quality_mass"])
        #expect(report.markdown.contains("## Bias report") && report.markdown.contains("Languages (a sample of 4): en 75.0 %"))
    }

    @Test("a rough language guess: the script, and for Latin script the language of the common words")
    func languages() {
        #expect(LanguageGuess.guess("The keeper climbs the stairs and looks at the sea.") == "en")
        #expect(LanguageGuess.guess("Der Wärter steigt die Treppe hinauf und sieht auf das Meer.") == "de")
        #expect(LanguageGuess.guess("Le gardien monte les marches et regarde la mer dans la nuit.") == "fr")
        #expect(LanguageGuess.guess("Смотритель поднимается по лестнице.") == "ru")
        #expect(LanguageGuess.guess("灯台守は階段を上る。") == "ja")
        #expect(LanguageGuess.guess("BOOM! KRAK!") == "und")
    }
}

/// A small seeded generator for the property checks (the same inputs on every run).
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
