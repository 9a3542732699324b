import Foundation

/// Thresholds past which a build warns (`datasets.bias.*`; `docs/datasets.md#bias-report`).
public struct BiasThresholds: Sendable, Equatable {
    /// Largest share one contributor may have.
    public var topContributorShare = 0.05
    /// Largest share the ten largest contributors may have together.
    public var topTenShare = 0.5
    /// Largest Gini coefficient of examples per contributor.
    public var gini = 0.6
    /// Largest ratio of the largest to the smallest stratum.
    public var stratumImbalance = 10.0
    /// Largest ratio of the most to the least represented model version, and experiment arm.
    public var modelVersionSkew = 10.0
    public var armSkew = 1.5
    /// Largest share of examples with quality below 0.6.
    public var lowQualityShare = 0.25

    public init() {}
}

/// What a dataset version is made of, and where it leans: contributors, strata, model
/// versions, experiment arms, quality, languages (text). Computed from the selected rows; the
/// warnings compare it with ``BiasThresholds``.
public struct BiasReport: Sendable, Equatable {
    public var examples = 0
    public var contributors = 0
    public var topContributorShare = 0.0
    public var topTenShare = 0.0
    public var gini = 0.0
    /// Per stratum: rows available, rows selected.
    public var strata: [(name: String, available: Int, selected: Int)] = []
    public var stratumImbalance: Double?
    public var modelVersions: [(name: String, count: Int)] = []
    public var modelVersionSkew: Double?
    public var arms: [(name: String, count: Int)] = []
    public var armSkew: Double?
    /// Quality: ten bins of width 0.1, and summary figures.
    public var qualityHistogram = [Int](repeating: 0, count: 10)
    public var qualityMean = 0.0
    public var qualityMedian = 0.0
    public var lowQualityShare = 0.0
    /// Text only: languages of a uniform sample of the examples (`languageSample` of them).
    public var languages: [(name: String, count: Int)] = []
    public var languageSample = 0
    public var warnings: [String] = []

    public init() {}

    public static func == (lhs: BiasReport, rhs: BiasReport) -> Bool { lhs.json == rhs.json }

    /// Builds the report. `perContributor`: examples per contributor in the dataset.
    public static func make(perContributor: [Int], strata: [(name: String, available: Int, selected: Int)], modelVersions: [String: Int],
                            arms: [String: Int], qualities: [Double], languages: [String: Int], thresholds: BiasThresholds) -> BiasReport {
        var report = BiasReport()
        let total = perContributor.reduce(0, +)
        report.examples = total
        report.contributors = perContributor.filter { $0 > 0 }.count
        let sorted = perContributor.filter { $0 > 0 }.sorted(by: >)
        if total > 0 {
            report.topContributorShare = Double(sorted.first ?? 0) / Double(total)
            report.topTenShare = Double(sorted.prefix(10).reduce(0, +)) / Double(total)
            report.gini = gini(sorted)
        }
        report.strata = strata
        report.stratumImbalance = ratio(strata.map(\.selected))
        func ordered(_ counts: [String: Int]) -> [(name: String, count: Int)] {
            counts.map { (name: $0.key, count: $0.value) }.sorted { $0.count != $1.count ? $0.count > $1.count : $0.name < $1.name }
        }
        report.modelVersions = ordered(modelVersions)
        report.modelVersionSkew = ratio(Array(modelVersions.values))
        report.arms = ordered(arms)
        report.armSkew = ratio(Array(arms.values))
        if !qualities.isEmpty {
            for quality in qualities { report.qualityHistogram[min(9, max(0, Int(quality * 10)))] += 1 }
            report.qualityMean = qualities.reduce(0, +) / Double(qualities.count)
            let ranked = qualities.sorted()
            report.qualityMedian = ranked.count % 2 == 1 ? ranked[ranked.count / 2] : (ranked[ranked.count / 2 - 1] + ranked[ranked.count / 2]) / 2
            report.lowQualityShare = Double(qualities.filter { $0 < 0.6 }.count) / Double(qualities.count)
        }
        report.languages = ordered(languages)
        report.languageSample = languages.values.reduce(0, +)

        var warnings: [String] = []
        if report.topContributorShare > thresholds.topContributorShare {
            warnings.append("contributor_concentration: one contributor has \(percent(report.topContributorShare)) of the examples (threshold \(percent(thresholds.topContributorShare)))")
        }
        if report.topTenShare > thresholds.topTenShare {
            warnings.append("contributor_concentration: ten contributors have \(percent(report.topTenShare)) of the examples (threshold \(percent(thresholds.topTenShare)))")
        }
        if report.gini > thresholds.gini {
            warnings.append("contributor_inequality: Gini \(fixed(report.gini)) of examples per contributor (threshold \(fixed(thresholds.gini)))")
        }
        if let imbalance = report.stratumImbalance, imbalance > thresholds.stratumImbalance {
            warnings.append("stratum_imbalance: the largest stratum is \(fixed(imbalance))× the smallest (threshold \(fixed(thresholds.stratumImbalance)))")
        }
        if let skew = report.modelVersionSkew, skew > thresholds.modelVersionSkew {
            warnings.append("model_version_skew: \(fixed(skew))× between the most and least represented model versions (threshold \(fixed(thresholds.modelVersionSkew)))")
        }
        if let skew = report.armSkew, skew > thresholds.armSkew {
            warnings.append("arm_skew: \(fixed(skew))× between the most and least represented experiment arms (threshold \(fixed(thresholds.armSkew)))")
        }
        if report.lowQualityShare > thresholds.lowQualityShare {
            warnings.append("low_quality_mass: \(percent(report.lowQualityShare)) of the examples have quality below 0.6 (threshold \(percent(thresholds.lowQualityShare)))")
        }
        report.warnings = warnings
        return report
    }

    /// Gini coefficient of non-negative counts (0: all equal; towards 1: one has everything).
    public static func gini(_ counts: [Int]) -> Double {
        let values = counts.sorted()
        let total = values.reduce(0, +)
        guard values.count > 1, total > 0 else { return 0 }
        // G = Σ (2i − n − 1) x_i / (n Σ x), i = 1…n over ascending values.
        var weighted = 0.0
        for (index, value) in values.enumerated() { weighted += Double(2 * (index + 1) - values.count - 1) * Double(value) }
        return weighted / (Double(values.count) * Double(total))
    }

    /// Largest over smallest of the non-empty groups (nil with fewer than two).
    static func ratio(_ counts: [Int]) -> Double? {
        let present = counts.filter { $0 > 0 }
        guard present.count > 1, let low = present.min(), let high = present.max() else { return nil }
        return Double(high) / Double(low)
    }

    static func percent(_ value: Double) -> String { String(format: "%.1f %%", value * 100) }
    static func fixed(_ value: Double) -> String { String(format: "%.2f", value) }

    public var json: JSONValue {
        func counts(_ list: [(name: String, count: Int)]) -> JSONValue {
            .object(list.map { ($0.name, .number(Double($0.count))) })
        }
        func optional(_ value: Double?) -> JSONValue { value.map { .number(Self.round($0)) } ?? .null }
        return .object([
            ("examples", .number(Double(examples))),
            ("contributors", .object([("count", .number(Double(contributors))), ("topShare", .number(Self.round(topContributorShare))),
                                      ("topTenShare", .number(Self.round(topTenShare))), ("gini", .number(Self.round(gini)))])),
            ("strata", .object([
                ("counts", .object(strata.map { ($0.name, .object([("available", .number(Double($0.available))), ("selected", .number(Double($0.selected)))])) })),
                ("imbalance", optional(stratumImbalance)),
            ])),
            ("modelVersions", .object([("counts", counts(modelVersions)), ("skew", optional(modelVersionSkew))])),
            ("experimentArms", .object([("counts", counts(arms)), ("skew", optional(armSkew))])),
            ("quality", .object([("histogram", .array(qualityHistogram.map { .number(Double($0)) })), ("mean", .number(Self.round(qualityMean))),
                                 ("median", .number(Self.round(qualityMedian))), ("lowShare", .number(Self.round(lowQualityShare)))])),
            ("languages", .object([("sample", .number(Double(languageSample))), ("counts", counts(languages))])),
            ("warnings", .array(warnings.map(JSONValue.string))),
        ])
    }

    /// Six decimals: the report is part of byte-identical builds, so no float noise.
    static func round(_ value: Double) -> Double { (value * 1_000_000).rounded() / 1_000_000 }

    /// The card's section.
    public var markdown: String {
        var lines = ["## Bias report", ""]
        lines.append("- Contributors: \(contributors); the largest has \(Self.percent(topContributorShare)), the ten largest \(Self.percent(topTenShare)); Gini \(Self.fixed(gini)).")
        if !strata.isEmpty {
            lines.append("- Strata (available → selected): " + strata.map { "\($0.name) \($0.available) → \($0.selected)" }.joined(separator: ", ")
                         + (stratumImbalance.map { "; largest/smallest \(Self.fixed($0))" } ?? "") + ".")
        }
        if !modelVersions.isEmpty {
            lines.append("- Model versions: " + modelVersions.map { "\($0.name) \($0.count)" }.joined(separator: ", ") + ".")
        }
        if !arms.isEmpty {
            lines.append("- Experiment arms: " + arms.map { "\($0.name) \($0.count)" }.joined(separator: ", ") + ".")
        }
        lines.append("- Quality: mean \(Self.fixed(qualityMean)), median \(Self.fixed(qualityMedian)); below 0.6: \(Self.percent(lowQualityShare)); "
                     + "per 0.1 from 0: \(qualityHistogram.map(String.init).joined(separator: " ")).")
        if languageSample > 0 {
            lines.append("- Languages (a sample of \(languageSample)): " + languages.map { "\($0.name) \(Self.percent(Double($0.count) / Double(languageSample)))" }.joined(separator: ", ") + ".")
        }
        lines.append(warnings.isEmpty ? "- No warnings." : "- Warnings:")
        lines += warnings.map { "  - \($0)" }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// A rough language guess for the bias report's language mix: the writing system, and for
/// Latin script the language whose common words occur most. Good enough to see that a dataset
/// is 97 % English; not a language identifier.
public enum LanguageGuess {
    static let words: [(language: String, words: Set<String>)] = [
        ("en", ["the", "and", "of", "to", "is", "in", "it", "you", "that", "on", "with", "we", "his", "her", "a", "at", "as", "are", "for"]),
        ("de", ["der", "die", "das", "und", "ist", "nicht", "ich", "sie", "wir", "ein", "eine", "mit", "auf", "zu", "den", "im"]),
        ("fr", ["le", "la", "les", "et", "est", "une", "des", "nous", "vous", "dans", "pas", "que", "il", "elle", "du", "sur"]),
        ("es", ["el", "los", "las", "y", "es", "una", "del", "que", "en", "por", "con", "no", "su", "se", "al", "lo"]),
        ("it", ["il", "gli", "che", "di", "non", "una", "sono", "per", "con", "della", "nel", "è", "lo", "ci"]),
        ("pt", ["o", "os", "as", "que", "não", "uma", "do", "da", "em", "com", "para", "é", "se", "no", "na"]),
        ("nl", ["de", "het", "een", "en", "van", "niet", "ik", "je", "wij", "met", "op", "zijn", "dat", "is"]),
    ]

    public static func guess(_ text: String) -> String {
        var latin = 0, cyrillic = 0, han = 0, kana = 0, hangul = 0, arabic = 0, other = 0
        for scalar in text.unicodeScalars.prefix(400) where scalar.properties.isAlphabetic {
            switch scalar.value {
            case 0x41...0x24F: latin += 1
            case 0x400...0x4FF: cyrillic += 1
            case 0x3040...0x30FF: kana += 1
            case 0x4E00...0x9FFF, 0x3400...0x4DBF: han += 1
            case 0xAC00...0xD7AF, 0x1100...0x11FF: hangul += 1
            case 0x600...0x6FF: arabic += 1
            default: other += 1
            }
        }
        let scripts = [("latin", latin), ("ru", cyrillic), ("ja", kana), ("zh", han), ("ko", hangul), ("ar", arabic), ("other", other)]
        guard let (script, count) = scripts.max(by: { $0.1 < $1.1 }), count > 0 else { return "und" }
        if script == "zh" && kana > 0 { return "ja" }
        guard script == "latin" else { return script }
        let tokens = text.lowercased().split { !$0.isLetter }.prefix(80).map(String.init)
        let scores = words.map { entry in (entry.language, tokens.filter { entry.words.contains($0) }.count) }
        guard let best = scores.max(by: { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 > $1.0 }), best.1 >= 2 else { return "und" }
        return best.0
    }
}
