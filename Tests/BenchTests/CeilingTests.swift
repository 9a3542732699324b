@testable import morpheus_bench
import Testing

/// The throughput verdict: the service against the echo ceiling measured before and after it.
@Suite("Benchmark: the echo ceiling brackets the service")
struct CeilingTests {
    static func run(_ perSecond: Int) -> PhaseResult {
        var result = PhaseResult()
        result.windowSeconds = 10
        result.receivedInWindow = perSecond * 10
        result.sent = result.receivedInWindow
        result.received = result.receivedInWindow
        return result
    }

    /// A report whose 4-connection ceiling was 12,000/s before the service and 9,000/s after.
    static func report() -> Report {
        let plan = BenchPlan(connectionCounts: [4, 16], inFlight: 1024, loads: [1000], latencyConnections: 4,
                             warmup: .seconds(5), measure: .seconds(10), latencyWindow: .seconds(15), soak: .zero)
        var report = Report(plan: plan, nonce: "test")
        report.ceiling[4] = run(12_000)
        report.ceilingAfter[4] = run(9_000)
        return report
    }

    @Test("the ceiling is the mean of the runs before and after the service's; one run alone is the ceiling; none is none")
    func ceilingIsTheBracketsMean() {
        var report = Self.report()
        report.ceiling[16] = Self.run(10_000)
        #expect(report.ceilingThroughput(4) == 10_500)
        #expect(report.ceilingThroughput(16) == 10_000)
        #expect(report.ceilingThroughput(1) == nil)
    }

    @Test("the table shows both ceilings, and the ratio and the verdict are against their mean")
    func reportUsesTheMean() {
        var report = Self.report()
        report.service[4] = Self.run(5_400)
        let markdown = report.markdown
        #expect(markdown.contains("| 4 connections | 12000 / 9000 | 5400 | 51 % |"))
        #expect(markdown.contains("5400/s of 10500/s = 51 % | met |"))
        report.ceilingAfter[4] = Self.run(12_000)
        // 5,400 of 12,000 = 45 %: the same service run, a ceiling that did not drift.
        #expect(report.markdown.contains("5400/s of 12000/s = 45 % | **missed** |"))
    }
}
