import Foundation

/// The statistics of the A/B reports (`docs/reports.md`), written out so that each figure can be
/// checked against a reference (statsmodels and scipy, in the test suite, to 1e-9).
public enum Statistics {
    /// The two-sided 95 % normal quantile, Φ⁻¹(0.975), as scipy's `norm.isf(0.025)` gives it.
    public static let z95 = 1.959963984540054

    /// Wilson score interval of `successes` in `trials` (statsmodels `proportion_confint`,
    /// method `wilson`). (0, 0) for no trials.
    public static func wilson(_ successes: Int, _ trials: Int, z: Double = z95) -> (low: Double, high: Double) {
        guard trials > 0 else { return (0, 0) }
        let n = Double(trials), p = Double(successes) / n, z2 = z * z
        let denominator = 1 + z2 / n
        let center = (p + z2 / (2 * n)) / denominator
        let half = z / denominator * (p * (1 - p) / n + z2 / (4 * n * n)).squareRoot()
        return (center - half, center + half)
    }

    /// Newcombe's hybrid score interval for p₁ − p₂ (statsmodels `confint_proportions_2indep`,
    /// method `newcomb`): from the two Wilson intervals, good where the Wald interval is not
    /// (small counts, rates near 0 or 1).
    public static func newcombe(_ successes1: Int, _ trials1: Int, _ successes2: Int, _ trials2: Int, z: Double = z95) -> (low: Double, high: Double) {
        let p1 = Double(successes1) / Double(max(trials1, 1)), p2 = Double(successes2) / Double(max(trials2, 1))
        let (l1, u1) = wilson(successes1, trials1, z: z), (l2, u2) = wilson(successes2, trials2, z: z)
        let difference = p1 - p2
        return (difference - ((p1 - l1) * (p1 - l1) + (u2 - p2) * (u2 - p2)).squareRoot(),
                difference + ((u1 - p1) * (u1 - p1) + (p2 - l2) * (p2 - l2)).squareRoot())
    }

    /// Two-proportion z-test with the pooled proportion, two-sided (statsmodels
    /// `proportions_ztest`). `nil` when the pooled variance is 0 (all or none succeeded).
    public static func twoProportionZTest(_ successes1: Int, _ trials1: Int, _ successes2: Int, _ trials2: Int) -> (z: Double, p: Double)? {
        guard trials1 > 0, trials2 > 0 else { return nil }
        let n1 = Double(trials1), n2 = Double(trials2)
        let pooled = Double(successes1 + successes2) / (n1 + n2)
        let variance = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
        guard variance > 0 else { return nil }
        let z = (Double(successes1) / n1 - Double(successes2) / n2) / variance.squareRoot()
        return (z, erfc(abs(z) / 2.0.squareRoot()))
    }

    /// Pearson's chi-square goodness of fit of `observed` against `expectedShares` (scipy
    /// `chisquare` with f_exp = shares × total): statistic and p-value with k − 1 degrees of
    /// freedom.
    public static func chiSquare(observed: [Int], expectedShares: [Double]) -> (statistic: Double, p: Double)? {
        let total = Double(observed.reduce(0, +))
        let shareSum = expectedShares.reduce(0, +)
        guard observed.count >= 2, observed.count == expectedShares.count, total > 0, shareSum > 0, expectedShares.allSatisfy({ $0 > 0 }) else { return nil }
        var statistic = 0.0
        for (count, share) in zip(observed, expectedShares) {
            let expected = total * share / shareSum
            statistic += (Double(count) - expected) * (Double(count) - expected) / expected
        }
        return (statistic, chiSquareSurvival(statistic, degreesOfFreedom: observed.count - 1))
    }

    /// P(X ≥ x) for X ~ χ²(k): the regularized upper incomplete gamma function Q(k/2, x/2).
    public static func chiSquareSurvival(_ x: Double, degreesOfFreedom k: Int) -> Double {
        guard x > 0 else { return 1 }
        return upperRegularizedGamma(Double(k) / 2, x / 2)
    }

    /// Q(a, x), by its series for x < a + 1 and its continued fraction (modified Lentz)
    /// otherwise, each to double precision.
    static func upperRegularizedGamma(_ a: Double, _ x: Double) -> Double {
        let logPrefix = a * log(x) - x - lgamma(a)
        if x < a + 1 {
            // P(a, x) = e^(−x) x^a / Γ(a+1) Σ xⁿ / ((a+1)…(a+n)).
            var term = 1 / a, sum = term, denominator = a
            for _ in 0..<10_000 {
                denominator += 1
                term *= x / denominator
                sum += term
                if abs(term) < abs(sum) * 1e-17 { break }
            }
            return max(0, 1 - sum * exp(logPrefix))
        }
        let tiny = 1e-300
        var b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d
        for i in 1...10_000 {
            let an = -Double(i) * (Double(i) - a)
            b += 2
            d = an * d + b
            if abs(d) < tiny { d = tiny }
            c = b + an / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            h *= delta
            if abs(delta - 1) < 1e-17 { break }
        }
        return exp(logPrefix) * h
    }
}

/// An A/B (or model-version) comparison of correction rates (`docs/reports.md`).
public struct CorrectionRateReport: Sendable {
    /// One arm (or model version): generations seen and corrected.
    public struct Group: Sendable, Equatable {
        public var name: String
        public var seen: Int
        public var corrected: Int
        public var rate: Double { seen > 0 ? Double(corrected) / Double(seen) : 0 }
        public var interval: (low: Double, high: Double) { Statistics.wilson(corrected, seen) }

        public init(name: String, seen: Int, corrected: Int) {
            self.name = name
            self.seen = seen
            self.corrected = corrected
        }

        public static func == (lhs: Group, rhs: Group) -> Bool { lhs.name == rhs.name && lhs.seen == rhs.seen && lhs.corrected == rhs.corrected }
    }

    /// A group against the control: rate difference (group − control), its Newcombe interval,
    /// the z-test.
    public struct Comparison: Sendable {
        public var group: String
        public var control: String
        public var difference: Double
        public var interval: (low: Double, high: Double)
        public var z: Double?
        public var p: Double?
    }

    /// The sample-ratio-mismatch check: seen per group against the planned split.
    public struct SampleRatio: Sendable {
        public var planned: [Double]
        public var statistic: Double
        public var p: Double
        public var alpha: Double
        public var mismatch: Bool { p < alpha }
    }

    /// A breakdown (per modality, per correction type): the same groups within one slice.
    public struct Slice: Sendable {
        public var name: String
        public var groups: [Group]
        public var comparisons: [Comparison]
    }

    public var title: String
    public var groups: [Group]
    public var control: String
    public var comparisons: [Comparison]
    public var sampleRatio: SampleRatio?
    public var slices: [Slice]

    /// Compares every group with `control` (by default the first). `planned`: the planned share
    /// of each group, for the SRM check (nil: no check).
    public init(title: String, groups: [Group], control: String? = nil, planned: [Double]? = nil, srmAlpha: Double = 0.001,
                slices: [(name: String, groups: [Group])] = []) {
        self.title = title
        self.groups = groups
        let control = control ?? groups.first?.name ?? ""
        self.control = control
        comparisons = Self.compare(groups, control: control)
        if let planned, let test = Statistics.chiSquare(observed: groups.map(\.seen), expectedShares: planned) {
            sampleRatio = SampleRatio(planned: planned, statistic: test.statistic, p: test.p, alpha: srmAlpha)
        }
        self.slices = slices.map { Slice(name: $0.name, groups: $0.groups, comparisons: Self.compare($0.groups, control: control)) }
    }

    static func compare(_ groups: [Group], control: String) -> [Comparison] {
        guard let base = groups.first(where: { $0.name == control }) else { return [] }
        return groups.filter { $0.name != control }.map { group in
            let test = Statistics.twoProportionZTest(group.corrected, group.seen, base.corrected, base.seen)
            return Comparison(group: group.name, control: control, difference: group.rate - base.rate,
                              interval: Statistics.newcombe(group.corrected, group.seen, base.corrected, base.seen), z: test?.z, p: test?.p)
        }
    }

    public var json: JSONValue {
        func groups(_ list: [Group]) -> JSONValue {
            .array(list.map { group in
                .object([("name", .string(group.name)), ("seen", .number(Double(group.seen))), ("corrected", .number(Double(group.corrected))),
                         ("rate", .number(group.rate)), ("low", .number(group.interval.low)), ("high", .number(group.interval.high))])
            })
        }
        func comparisons(_ list: [Comparison]) -> JSONValue {
            .array(list.map { c in
                .object([("group", .string(c.group)), ("control", .string(c.control)), ("difference", .number(c.difference)),
                         ("low", .number(c.interval.low)), ("high", .number(c.interval.high)),
                         ("z", c.z.map(JSONValue.number) ?? .null), ("p", c.p.map(JSONValue.number) ?? .null)])
            })
        }
        return .object([
            ("title", .string(title)), ("control", .string(control)), ("groups", groups(self.groups)), ("comparisons", comparisons(self.comparisons)),
            ("sampleRatio", sampleRatio.map { srm in
                .object([("planned", .array(srm.planned.map(JSONValue.number))), ("chiSquare", .number(srm.statistic)), ("p", .number(srm.p)),
                         ("alpha", .number(srm.alpha)), ("mismatch", .bool(srm.mismatch))])
            } ?? .null),
            ("slices", .array(slices.map { slice in
                .object([("name", .string(slice.name)), ("groups", groups(slice.groups)), ("comparisons", comparisons(slice.comparisons))])
            })),
        ])
    }

    /// The rates with their intervals as an SVG bar chart (one bar per group, whiskers for
    /// the Wilson interval).
    public var svg: String {
        let width = 640.0, height = 360.0, left = 70.0, right = 20.0, top = 40.0, bottom = 60.0
        let top95 = max(0.05, (groups.map { $0.interval.high }.max() ?? 0) * 1.15)
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        func y(_ rate: Double) -> Double { top + plotHeight * (1 - rate / top95) }
        func f(_ value: Double) -> String { String(format: "%.1f", value) }
        func escape(_ text: String) -> String {
            text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
        }
        var parts = [
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">",
            "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
            "<text x=\"\(f(width / 2))\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">\(escape(title)): correction rate with 95 % interval</text>",
        ]
        for step in 0...4 {
            let rate = top95 * Double(step) / 4
            parts.append("<line x1=\"\(f(left))\" x2=\"\(f(width - right))\" y1=\"\(f(y(rate)))\" y2=\"\(f(y(rate)))\" stroke=\"#ddd\"/>")
            parts.append("<text x=\"\(f(left - 6))\" y=\"\(f(y(rate) + 4))\" text-anchor=\"end\">\(String(format: "%.1f", rate * 100)) %</text>")
        }
        let slot = plotWidth / Double(max(groups.count, 1))
        for (index, group) in groups.enumerated() {
            let center = left + slot * (Double(index) + 0.5), barWidth = min(80, slot * 0.5)
            let colour = group.name == control ? "#8aa4c8" : "#e39b55"
            parts.append("<rect x=\"\(f(center - barWidth / 2))\" y=\"\(f(y(group.rate)))\" width=\"\(f(barWidth))\" height=\"\(f(y(0) - y(group.rate)))\" fill=\"\(colour)\"/>")
            let (low, high) = group.interval
            parts.append("<line x1=\"\(f(center))\" x2=\"\(f(center))\" y1=\"\(f(y(low)))\" y2=\"\(f(y(high)))\" stroke=\"black\" stroke-width=\"1.5\"/>")
            for end in [low, high] {
                parts.append("<line x1=\"\(f(center - 8))\" x2=\"\(f(center + 8))\" y1=\"\(f(y(end)))\" y2=\"\(f(y(end)))\" stroke=\"black\" stroke-width=\"1.5\"/>")
            }
            parts.append("<text x=\"\(f(center))\" y=\"\(f(height - bottom + 18))\" text-anchor=\"middle\">\(escape(group.name))</text>")
            parts.append("<text x=\"\(f(center))\" y=\"\(f(height - bottom + 34))\" text-anchor=\"middle\" fill=\"#555\">\(String(format: "%.2f", group.rate * 100)) % of \(group.seen)</text>")
        }
        parts.append("<line x1=\"\(f(left))\" x2=\"\(f(width - right))\" y1=\"\(f(y(0)))\" y2=\"\(f(y(0)))\" stroke=\"black\"/>")
        parts.append("</svg>")
        return parts.joined(separator: "\n") + "\n"
    }
}
