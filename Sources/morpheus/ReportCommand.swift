import ArgumentParser
import Foundation
import MorpheusCore
import MorpheusStorage

/// `morpheus report …`: how often people must correct each arm of an experiment, or each model
/// version (`docs/reports.md`).
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Correction rates per experiment arm or model version, with intervals and tests.",
        subcommands: [AB.self, Models.self]
    )

    struct Options: ParsableArguments {
        @OptionGroup var database: DatabaseOptions
        @Option(help: "Only text, image or layout.") var modality: String?
        @Option(help: "Only what occurred at or after this instant (RFC 3339).") var since: String?
        @Option(help: "Only what occurred before this instant (RFC 3339).") var until: String?
        @Option(help: "The group the others are compared with (default: the first by name).") var control: String?
        @Option(help: "Write the chart (rate per group with its 95 % interval) to this SVG file.") var svg: String?
        @Flag(help: "Print the report as JSON.") var json = false

        func filter() throws -> ReportStore.Filter {
            var filter = ReportStore.Filter()
            if let modality {
                guard let parsed = Modality(rawValue: modality) else { throw ValidationError("--modality is text, image or layout") }
                filter.modality = parsed
            }
            for (text, flag) in [(since, "--since"), (until, "--until")] {
                guard let text else { continue }
                guard let date = RFC3339.parse(text) else { throw ValidationError("\(flag) \(text.debugDescription) is not an RFC 3339 instant") }
                if flag == "--since" { filter.since = date } else { filter.until = date }
            }
            return filter
        }

        func present(_ report: CorrectionRateReport) throws {
            if let svg { try Data(report.svg.utf8).write(to: URL(fileURLWithPath: svg)) }
            if json {
                print(report.json.serializedString)
                return
            }
            func percent(_ value: Double) -> String { String(format: "%.2f %%", value * 100) }
            func points(_ value: Double) -> String { String(format: "%+.2f pp", value * 100) }
            // Below 1e-16 a double's p-value is noise around 0.
            func p(_ value: Double?) -> String {
                value.map { $0 < 1e-16 ? "< 1e-16" : $0 < 0.0001 ? String(format: "%.1e", $0) : String(format: "%.4f", $0) } ?? "-"
            }
            print("\(report.title) (control \(report.control))")
            func table(_ groups: [CorrectionRateReport.Group], _ comparisons: [CorrectionRateReport.Comparison], slice: String?) -> [[String]] {
                groups.map { group in
                    let comparison = comparisons.first { $0.group == group.name }
                    return (slice.map { [$0] } ?? []) + [
                        group.name, "\(group.seen)", "\(group.corrected)", percent(group.rate),
                        "[\(percent(group.interval.low)), \(percent(group.interval.high))]",
                        comparison.map { "\(points($0.difference)) [\(points($0.interval.low)), \(points($0.interval.high))]" } ?? "(control)",
                        p(comparison?.p),
                    ]
                }
            }
            let header = ["GROUP", "SEEN", "CORRECTED", "RATE", "95 % CI", "VS CONTROL (95 % CI)", "P"]
            printTable([header] + table(report.groups, report.comparisons, slice: nil))
            if let srm = report.sampleRatio {
                print("sample ratio: seen \(report.groups.map { "\($0.seen)" }.joined(separator: " / ")) against planned "
                      + "\(srm.planned.map { String(format: "%.3g", $0) }.joined(separator: " / ")): χ² = \(String(format: "%.3f", srm.statistic)), "
                      + "p = \(p(srm.p)) — \(srm.mismatch ? "MISMATCH (p < \(srm.alpha)): the assignment or the reporting is broken; do not trust the rates" : "ok")")
            }
            if !report.slices.isEmpty {
                print("")
                printTable([["SLICE"] + header] + report.slices.flatMap { table($0.groups, $0.comparisons, slice: $0.name) })
            }
            if let svg { print("chart: \(svg)") }
        }
    }

    struct AB: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ab", abstract: "Correction rate per arm of an experiment.")
        @OptionGroup var options: Options
        @Option(help: "The experiment id.") var experiment: String
        @Option(help: "Planned split, e.g. A=0.5,B=0.5 (default: equal); the SRM check tests the seen counts against it.") var planned: String?
        @Option(help: "Significance level of the SRM check.") var srmAlpha = 0.001

        func run() async throws {
            let filter = try options.filter()
            let (_, pool) = try await options.database.load()
            defer { Task { await pool.close() } }
            let counts = try await ReportStore(pool: pool).experiment(experiment, filter)
            let arms = Set(counts.byModality.keys.map(\.group)).sorted()
            guard !arms.isEmpty else {
                print("nothing reported for experiment \(experiment)")
                throw ExitCode(4)
            }
            var shares = Dictionary(uniqueKeysWithValues: arms.map { ($0, 1.0 / Double(arms.count)) })
            if let planned {
                shares = [:]
                for part in planned.split(separator: ",") {
                    let pair = part.split(separator: "=", maxSplits: 1)
                    guard pair.count == 2, let share = Double(pair[1]), share > 0 else { throw ValidationError("--planned is ARM=SHARE,…") }
                    shares[String(pair[0])] = share
                }
                guard Set(shares.keys) == Set(arms) else {
                    throw ValidationError("--planned names \(shares.keys.sorted().joined(separator: ", ")); the data has \(arms.joined(separator: ", "))")
                }
            }
            if let control = options.control, !arms.contains(control) { throw ValidationError("--control \(control) is not an arm: \(arms.joined(separator: ", "))") }
            try options.present(counts.report(title: "experiment \(experiment)", control: options.control, planned: arms.count > 1 ? shares : nil,
                                              srmAlpha: srmAlpha))
        }
    }

    struct Models: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "models", abstract: "Correction rate per model@modelVersion.")
        @OptionGroup var options: Options
        @Option(help: "Only this model's versions.") var model: String?

        func run() async throws {
            let filter = try options.filter()
            let (_, pool) = try await options.database.load()
            defer { Task { await pool.close() } }
            let counts = try await ReportStore(pool: pool).models(model, filter)
            guard !counts.byModality.isEmpty else {
                print("nothing reported\(model.map { " for model \($0)" } ?? "")")
                throw ExitCode(4)
            }
            // No planned split between model versions: no SRM check.
            try options.present(counts.report(title: model.map { "model \($0)" } ?? "models", control: options.control, planned: nil, srmAlpha: 0.001))
        }
    }
}
