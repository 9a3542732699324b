import Foundation
import MorpheusCore
import Testing
import TestSupport
#if canImport(FoundationXML)
import FoundationXML
#endif

/// The A/B report's statistics: known values, edge cases, and agreement with statsmodels and
/// scipy on fixed inputs.
@Suite("Statistics of the A/B reports")
struct StatisticsTests {
    @Test("known values: χ² quantiles give p = 0.05, Wilson at the edges, Newcombe around zero")
    func knownValues() {
        #expect(abs(Statistics.chiSquareSurvival(3.841458820694124, degreesOfFreedom: 1) - 0.05) < 1e-12)
        #expect(abs(Statistics.chiSquareSurvival(5.991464547107979, degreesOfFreedom: 2) - 0.05) < 1e-12)
        #expect(abs(Statistics.chiSquareSurvival(30.57791416689249, degreesOfFreedom: 15) - 0.01) < 1e-12)
        #expect(Statistics.chiSquareSurvival(0, degreesOfFreedom: 3) == 1)
        let none = Statistics.wilson(0, 10)
        #expect(none.low == 0 && abs(none.high - 0.27753279986288454) < 1e-12)
        let all = Statistics.wilson(10, 10)
        #expect(abs(all.low - 0.7224672001371155) < 1e-12 && abs(all.high - 1) < 1e-12)
        #expect(Statistics.wilson(0, 0) == (0, 0))
        let same = Statistics.newcombe(50, 100, 50, 100)
        #expect(abs(same.low + same.high) < 1e-12 && same.low < 0)
        #expect(Statistics.twoProportionZTest(0, 10, 0, 10) == nil, "no variance, no test")
        #expect(Statistics.chiSquare(observed: [10], expectedShares: [1]) == nil)
    }

    /// Fixed inputs: typical, small, lopsided and large counts, a perfect split, a broken one.
    static var cases: [[String: Any]] { [
        ["c1": 120, "n1": 1000, "c2": 98, "n2": 1010, "observed": [1000, 1010], "shares": [0.5, 0.5]],
        ["c1": 3, "n1": 17, "c2": 0, "n2": 21, "observed": [17, 21], "shares": [0.5, 0.5]],
        ["c1": 47, "n1": 50, "c2": 50, "n2": 50, "observed": [50, 50], "shares": [0.5, 0.5]],
        ["c1": 51_234, "n1": 1_000_000, "c2": 50_012, "n2": 998_765, "observed": [1_000_000, 998_765, 500_900], "shares": [0.4, 0.4, 0.2]],
        ["c1": 1, "n1": 2, "c2": 1, "n2": 3, "observed": [2, 3], "shares": [1, 1]],
        ["c1": 400, "n1": 5000, "c2": 300, "n2": 5000, "observed": [5000, 4200], "shares": [0.5, 0.5]],
        ["c1": 7, "n1": 9000, "c2": 19, "n2": 8800, "observed": [9000, 8800, 8900, 9100], "shares": [1, 1, 1, 1]],
    ] }

    @Test("Wilson, Newcombe, the z-test and the χ² SRM check agree with statsmodels and scipy to 1e-9")
    func agreesWithReference() async throws {
        let python = try #require(TestEnvironment.python, "the reference Python (scripts/test.sh makes it: MORPHEUS_PYTHON or .local/venv)")
        let script = TestEnvironment.repositoryRoot.appendingPathComponent("Tests/python/reference_statistics.py")
        let input = try JSONSerialization.data(withJSONObject: Self.cases)
        let process = Process()
        process.executableURL = python
        process.arguments = [script.path]
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        stdin.fileHandleForWriting.write(input)
        try stdin.fileHandleForWriting.close()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let references = try #require(try JSONSerialization.jsonObject(with: output) as? [[String: Any]])
        #expect(references.count == Self.cases.count)
        func close(_ a: Double, _ b: Any?, _ what: String) {
            guard let b = (b as? NSNumber)?.doubleValue else { Issue.record("\(what): no reference"); return }
            #expect(abs(a - b) <= 1e-9, "\(what): ours \(a), reference \(b)")
        }
        for reference in references {
            let c1 = reference["c1"] as! Int, n1 = reference["n1"] as! Int, c2 = reference["c2"] as! Int, n2 = reference["n2"] as! Int
            let label = "\(c1)/\(n1) vs \(c2)/\(n2)"
            let w1 = Statistics.wilson(c1, n1), w2 = Statistics.wilson(c2, n2)
            let r1 = reference["wilson1"] as! [Any], r2 = reference["wilson2"] as! [Any]
            close(w1.low, r1[0], "\(label) wilson1 low")
            close(w1.high, r1[1], "\(label) wilson1 high")
            close(w2.low, r2[0], "\(label) wilson2 low")
            close(w2.high, r2[1], "\(label) wilson2 high")
            let newcombe = Statistics.newcombe(c1, n1, c2, n2), rn = reference["newcombe"] as! [Any]
            close(newcombe.low, rn[0], "\(label) newcombe low")
            close(newcombe.high, rn[1], "\(label) newcombe high")
            if let test = Statistics.twoProportionZTest(c1, n1, c2, n2) {
                close(test.z, reference["z"], "\(label) z")
                close(test.p, reference["p"], "\(label) p")
            } else {
                Issue.record("\(label): no z-test")
            }
            let observed = reference["observed"] as! [Int], shares = (reference["shares"] as! [NSNumber]).map(\.doubleValue)
            let chi = try #require(Statistics.chiSquare(observed: observed, expectedShares: shares))
            close(chi.statistic, reference["chi2"], "\(label) χ²")
            close(chi.p, reference["chi2p"], "\(label) χ² p")
        }
    }

    @Test("a report compares every arm with the control, flags a sample ratio mismatch, and draws well-formed SVG")
    func report() throws {
        let groups = [CorrectionRateReport.Group(name: "A", seen: 5000, corrected: 400), .init(name: "B", seen: 4200, corrected: 300)]
        let report = CorrectionRateReport(title: "experiment exp-7 <test>", groups: groups, control: "A", planned: [0.5, 0.5], srmAlpha: 0.001)
        #expect(report.comparisons.count == 1 && report.comparisons[0].group == "B")
        #expect(abs(report.comparisons[0].difference - (300.0 / 4200 - 400.0 / 5000)) < 1e-15)
        #expect(report.sampleRatio?.mismatch == true)
        let balanced = CorrectionRateReport(title: "t", groups: [.init(name: "A", seen: 1000, corrected: 100), .init(name: "B", seen: 1010, corrected: 90)],
                                            planned: [0.5, 0.5])
        #expect(balanced.sampleRatio?.mismatch == false && balanced.control == "A")
        let svg = report.svg
        #expect(svg.contains("&lt;test&gt;") && svg.contains(">A</text>") && svg.contains(">B</text>"))
        let parser = XMLParser(data: Data(svg.utf8))
        #expect(parser.parse(), "the chart is well-formed XML")
    }
}
