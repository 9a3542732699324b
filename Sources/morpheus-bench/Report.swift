import Foundation
import MorpheusCore

struct Correctness {
    var sent: Int
    var receipts: Int
    var duplicateReceipts: Int
    var notAccepted: Int
    var rows: Int
    var distinctIds: Int
    var trainingExamples: Int
    var outboxLeft: Int

    /// Every correction has exactly one row, one training example and one accepted receipt.
    var ok: Bool {
        receipts == sent && duplicateReceipts == 0 && notAccepted == 0 && rows == sent && distinctIds == sent
            && trainingExamples == sent && outboxLeft == 0
    }
}

/// The benchmark's figures and their rendering as JSON, Markdown and an SVG chart.
struct Report {
    let plan: BenchPlan
    let nonce: String
    let startedAt = Date()
    /// As the run started.
    let writeback = Report.kernelWriteback
    var finishedAt = Date()
    var ceiling: [Int: PhaseResult] = [:]
    /// The same, measured again right after the service's throughput runs.
    var ceilingAfter: [Int: PhaseResult] = [:]
    var ceilingLatency: [Double: PhaseResult] = [:]
    var service: [Int: PhaseResult] = [:]
    var serviceCPUPer10k: [Int: Double] = [:]
    var cpuBreakdown: [Int: (CPUBreakdown, sent: Int)] = [:]
    /// Every latency run, per offered load, in order.
    var serviceLatencyRuns: [Double: [PhaseResult]] = [:]
    /// The same against PostgreSQL with its stock settings.
    var stockLatencyRuns: [Double: [PhaseResult]] = [:]
    var stockThroughput: [Int: PhaseResult] = [:]
    var footprints: [Footprint] = []
    /// The disk under PostgreSQL's WAL: its name, and how it flushed on its own.
    var disk = DiskReport()
    /// The runs of each load together (the chart and the summary table).
    var serviceLatency: [Double: PhaseResult] { Self.merged(serviceLatencyRuns) }
    var stockLatency: [Double: PhaseResult] { Self.merged(stockLatencyRuns) }

    static func merged(_ runs: [Double: [PhaseResult]]) -> [Double: PhaseResult] {
        runs.mapValues { results in
            var total = PhaseResult()
            for result in results { total.merge(result) }
            return total
        }
    }
    var soak: PhaseResult?
    var soakSeries: [(seconds: Double, rss: Double)] = []
    var peakRSS = 0.0
    var twoInstances: PhaseResult?
    var twoInstancesConnections = 0
    var twoInstancesCPUPer10k = 0.0
    /// What the quality gate costs: service CPU seconds per 10,000 corrections at one offered
    /// load, instances with the gate off and on, alternating (`gate.enabled`).
    var gateCost: (rate: Double, off: [Double], on: [Double])?
    /// On / off, medians of the same run.
    var gateCostRatio: Double? {
        guard let cost = gateCost, let off = median(cost.off), let on = median(cost.on), off > 0 else { return nil }
        return on / off
    }
    var correctness: Correctness?

    var correct: Bool { correctness?.ok ?? false }

    var allServiceResults: [PhaseResult] {
        Array(service.values) + serviceLatencyRuns.values.flatMap { $0 } + [soak, twoInstances].compactMap { $0 }
    }

    /// The echo ceiling at `count` connections the service is judged against: the mean of the
    /// runs before and after the service's (the one there is, when only one is).
    func ceilingThroughput(_ count: Int) -> Double? {
        let runs = ceilings(count).map(\.throughput)
        return runs.isEmpty ? nil : runs.reduce(0, +) / Double(runs.count)
    }

    /// The echo's runs at `count` connections: before the service's, then after.
    func ceilings(_ count: Int) -> [PhaseResult] { [ceiling[count], ceilingAfter[count]].compactMap { $0 } }

    /// Mean RSS over the soak's first and last minute (or fifth, for short soaks), in MiB.
    var soakDrift: (early: Double, late: Double)? {
        guard soakSeries.count >= 4, let end = soakSeries.last?.seconds else { return nil }
        let span = min(60, end / 5)
        let early = soakSeries.filter { $0.seconds <= span }.map(\.rss)
        let late = soakSeries.filter { $0.seconds >= end - span }.map(\.rss)
        guard !early.isEmpty, !late.isEmpty else { return nil }
        return (early.reduce(0, +) / Double(early.count), late.reduce(0, +) / Double(late.count))
    }

    static var machine: String {
        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("model name") }?
            .split(separator: ":", maxSplits: 1).last?.trimmingCharacters(in: .whitespaces) ?? "unknown CPU"
        return "\(ProcessInfo.processInfo.activeProcessorCount) cores, \(cpu), \(ProcessInfo.processInfo.physicalMemory / 1_073_741_824) GiB"
    }

    /// The kernel's writeback of dirty pages, which decides whether PostgreSQL's commits meet a
    /// burst of data-file writes every 30 s (docs/operations.md, "Disk writeback").
    static var kernelWriteback: String {
        func setting(_ name: String) -> String {
            (try? String(contentsOfFile: "/proc/sys/vm/" + name, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
        }
        let bytes = setting("dirty_background_bytes")
        let threshold = bytes == "0" ? "dirty_background_ratio \(setting("dirty_background_ratio")) %" : "dirty_background_bytes \(bytes)"
        return "\(threshold), dirty_expire_centisecs \(setting("dirty_expire_centisecs"))"
    }

    // MARK: JSON

    func json() -> JSONValue {
        func phase(_ result: PhaseResult) -> JSONValue {
            .object([
                ("sent", .number(Double(result.sent))), ("receipts", .number(Double(result.received))),
                ("throughputPerSecond", .number(result.throughput.rounded())),
                ("p50Ms", .number(round3(result.percentile(50)))), ("p99Ms", .number(round3(result.percentile(99)))),
                ("p999Ms", .number(round3(result.percentile(99.9)))), ("maxMs", .number(round3(result.percentile(100)))),
                ("duplicates", .number(Double(result.duplicates))), ("notAccepted", .number(Double(result.notAccepted))),
            ])
        }
        var members: [(key: String, value: JSONValue)] = [
            ("schema", .string("morpheus.bench/1")), ("run", .string(nonce)),
            ("startedAt", .string(RFC3339.format(startedAt))), ("finishedAt", .string(RFC3339.format(finishedAt))),
            ("machine", .string(Self.machine)), ("writeback", .string(writeback)), ("disk", disk.json),
            ("plan", .object([
                ("inFlight", .number(Double(plan.inFlight))), ("measureSeconds", .number(Double(plan.measure.components.seconds))),
                ("latencySeconds", .number(Double(plan.latencyWindow.components.seconds))),
                ("soakSeconds", .number(Double(plan.soak.components.seconds))),
                ("latencyConnections", .number(Double(plan.latencyConnections))),
            ])),
        ]
        members.append(("throughput", .array(plan.connectionCounts.map { count in
            var entry: [(key: String, value: JSONValue)] = [("connections", .number(Double(count)))]
            if let echo = ceiling[count] { entry.append(("ceiling", phase(echo))) }
            if let echo = ceilingAfter[count] { entry.append(("ceilingAfter", phase(echo))) }
            if let svc = service[count] {
                entry.append(("service", phase(svc)))
                entry.append(("serviceCpuSecondsPer10k", .number(round3(serviceCPUPer10k[count] ?? 0))))
                if let echo = ceilingThroughput(count), echo > 0 { entry.append(("ratio", .number(round3(svc.throughput / echo)))) }
            }
            if let (breakdown, sent) = cpuBreakdown[count], sent > 0 {
                entry.append(("cpuSecondsPer10kByProcess", .object(CPUBreakdown.parts.map { ($0, .number(round3((breakdown.seconds[$0] ?? 0) / Double(sent) * 10_000))) })))
            }
            return .object(entry)
        })))
        members.append(("latency", .array(plan.loads.map { load in
            var entry: [(key: String, value: JSONValue)] = [("offeredPerSecond", .number(load))]
            if let echo = ceilingLatency[load] { entry.append(("ceiling", phase(echo))) }
            if let svc = serviceLatency[load] { entry.append(("service", phase(svc))) }
            return .object(entry)
        })))
        func runs(_ all: [Double: [PhaseResult]]) -> JSONValue {
            .array(all.keys.sorted().map { load in
                .object([("offeredPerSecond", .number(load)), ("runs", .array(all[load]!.map { run in
                    var entry = phase(run)
                    if case .object(var members) = entry {
                        members.append(("p99MsBySecond", .array(run.p99BySecond.map { .number(round3($0)) })))
                        if let stalls = run.diskStalls {
                            members.append(("diskStalls", .array(stalls.map { .object([("atSecond", .number(round3($0.offset))), ("ms", .number(round3($0.ms)))]) })))
                        }
                        if let commits = run.commits {
                            members.append(("commits", .object([("total", .number(commits.total)), ("over10ms", .number(commits.over10ms)),
                                                                ("over50ms", .number(commits.over50ms))])))
                        }
                        if let maintenance = run.maintenance {
                            members.append(("autovacuum", .array(maintenance.map { .object([("what", .string($0.what)), ("endedAtSecond", .number(round3($0.endedAt)))]) })))
                        }
                        entry = .object(members)
                    }
                    return entry
                }))])
            })
        }
        members.append(("latencyRuns", runs(serviceLatencyRuns)))
        if !stockLatencyRuns.isEmpty {
            members.append(("stockPostgres", .object([
                ("latencyRuns", runs(stockLatencyRuns)),
                ("throughput", .array(stockThroughput.keys.sorted().map { .object([("connections", .number(Double($0))), ("service", phase(stockThroughput[$0]!))]) })),
            ])))
        }
        members.append(("footprints", .array(footprints.map(\.json))))
        members.append(("baseline", .object([
            ("commit", .string(FootprintBaseline.commit)),
            ("instructionsPerCorrection", FootprintBaseline.instructionsPerCorrection.map { .number($0) } ?? .null),
            ("walBytesPerCorrection", FootprintBaseline.walBytesPerCorrection.map { .number($0) } ?? .null),
        ])))
        var memory: [(key: String, value: JSONValue)] = [("peakRssMiB", .number(round3(peakRSS)))]
        if let drift = soakDrift {
            memory.append(("soakEarlyRssMiB", .number(round3(drift.early))))
            memory.append(("soakLateRssMiB", .number(round3(drift.late))))
        }
        if let soak { memory.append(("soak", phase(soak))) }
        memory.append(("soakSeries", .array(soakSeries.map { .array([.number(round3($0.seconds)), .number(round3($0.rss))]) })))
        members.append(("memory", .object(memory)))
        if let two = twoInstances {
            members.append(("twoInstances", .object([
                ("connections", .number(Double(twoInstancesConnections))), ("result", phase(two)),
                ("cpuSecondsPer10k", .number(round3(twoInstancesCPUPer10k))),
            ])))
        }
        if let cost = gateCost {
            members.append(("gateCost", .object([
                ("offeredLoad", .number(cost.rate)), ("cpuSecondsPer10kOff", .array(cost.off.map { .number(round3($0)) })),
                ("cpuSecondsPer10kOn", .array(cost.on.map { .number(round3($0)) })), ("ratio", gateCostRatio.map { .number(round3($0)) } ?? .null),
            ])))
        }
        if let c = correctness {
            members.append(("correctness", .object([
                ("ok", .bool(c.ok)), ("sent", .number(Double(c.sent))), ("receipts", .number(Double(c.receipts))),
                ("duplicateReceipts", .number(Double(c.duplicateReceipts))), ("notAccepted", .number(Double(c.notAccepted))),
                ("rows", .number(Double(c.rows))), ("distinctIds", .number(Double(c.distinctIds))),
                ("trainingExamples", .number(Double(c.trainingExamples))), ("outboxLeft", .number(Double(c.outboxLeft))),
            ])))
        }
        return .object(members)
    }

    // MARK: Markdown

    var markdown: String {
        var lines: [String] = []
        func verdict(_ ok: Bool) -> String { ok ? "met" : "**missed**" }
        lines.append("## morpheus-bench \(RFC3339.format(startedAt)) (run \(nonce))")
        lines.append("")
        lines.append("Machine: \(Self.machine); broker, database, service and load generator on it. Corrections unanswered at once: \(plan.inFlight).")
        lines.append("Kernel writeback: \(writeback).")
        lines.append(disk.markdown)
        lines.append("")
        lines.append("| throughput | ceiling (echo) round trips/s, before / after the service | service receipts/s | service / ceiling (their mean) | service p50 / p99 / p99.9 ms | service CPU s per 10k |")
        lines.append("|---|---:|---:|---:|---:|---:|")
        for count in plan.connectionCounts {
            let svc = service[count]
            let echo = ceilingThroughput(count) ?? 0
            let ratio = echo > 0 ? (svc?.throughput ?? 0) / echo : 0
            let echoes = ceilings(count).map { int($0.throughput) }.joined(separator: " / ")
            lines.append("| \(count) connections | \(echoes.isEmpty ? "–" : echoes) | \(int(svc?.throughput)) | \(percent(ratio)) | "
                + "\(percentiles(svc)) | \(fixed(serviceCPUPer10k[count])) |")
        }
        lines.append("")
        lines.append("| offered load | ceiling p50 / p99 / p99.9 ms | service p50 / p99 / p99.9 ms | service receipts |")
        lines.append("|---:|---:|---:|---:|")
        for load in plan.loads {
            let echo = ceilingLatency[load]
            let svc = serviceLatency[load]
            lines.append("| \(Int(load))/s | \(percentiles(echo)) | \(percentiles(svc)) | \(svc?.received ?? 0) of \(svc?.sent ?? 0) |")
        }
        lines.append("")
        if let (breakdown, sent) = cpuBreakdown[plan.connectionCounts.max() ?? 0], sent > 0 {
            let parts = CPUBreakdown.parts.map { "\($0 == "morpheus-feedba" ? "service" : $0) \(fixed((breakdown.seconds[$0] ?? 0) / Double(sent) * 10_000))" }
            lines.append("CPU seconds per 10,000 corrections at maximum load, by process: " + parts.joined(separator: ", ") + ".")
            lines.append("")
        }
        // Every latency run on its own: a target must hold in each, not on average.
        // Next to each run, what the disk did in its window: a commit waits for its WAL flush.
        lines.append("| PostgreSQL | offered load | run | p50 / p99 / p99.9 / max ms | worst second's p99 | commits > 10 ms (> 50 ms) | disk stalls ≥ 10 ms (longest) | autovacuum ended (second) | receipts |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|---|---:|")
        for (name, all) in [("tuned", serviceLatencyRuns), ("stock", stockLatencyRuns)] {
            for load in all.keys.sorted() {
                for (index, run) in all[load]!.enumerated() {
                    let seconds = run.p99BySecond
                    let worst = seconds.indices.max { seconds[$0] < seconds[$1] }
                    let stalls = run.diskStalls.map { $0.isEmpty ? "0" : "\($0.count) (\(ms($0.map(\.ms).max())) ms)" } ?? "–"
                    let vacuums = run.maintenanceInWindow.map { $0.isEmpty ? "–" : $0.map { "\($0.what) (\(Int($0.endedAt) + 1))" }.joined(separator: ", ") } ?? "?"
                    lines.append("| \(name) | \(Int(load))/s | \(index + 1) | \(percentiles(run)) / \(ms(run.percentile(100))) | "
                        + "\(worst.map { "\(ms(seconds[$0])) ms (second \($0 + 1))" } ?? "–") | \(run.commits.map { "\(Int($0.over10ms)) (\(Int($0.over50ms)))" } ?? "–") | "
                        + "\(stalls) | \(vacuums) | \(run.received) of \(run.sent) |")
                }
            }
        }
        lines.append("")
        if !stockThroughput.isEmpty {
            for count in stockThroughput.keys.sorted() {
                lines.append("Stock PostgreSQL, maximum throughput with \(count) connections: \(int(stockThroughput[count]?.throughput)) receipts/s "
                    + "(tuned: \(int(service[count]?.throughput))/s).")
            }
            lines.append("")
        }
        for footprint in footprints {
            lines.append(footprint.markdown)
        }
        // The best the service did against the best the echo did, whatever the connection count.
        let best = plan.connectionCounts.compactMap { service[$0]?.throughput }.max() ?? 0
        let bestEcho = plan.connectionCounts.compactMap { ceilingThroughput($0) }.max() ?? 0
        let bestCeiling = bestEcho > 0 ? best / bestEcho : 0
        lines.append("| target | measured | verdict |")
        lines.append("|---|---|---|")
        if let tuned = footprints.first(where: { $0.label == "tuned" }) {
            if let ipc = tuned.instructionsPerCorrection {
                if let base = FootprintBaseline.instructionsPerCorrection {
                    lines.append("| service instructions per correction ≤ half of \(FootprintBaseline.commit)'s | \(grouped(Int(ipc.rounded()))) vs \(grouped(Int(base))): \(percent(ipc / base)) | \(verdict(ipc <= base / 2)) |")
                } else {
                    lines.append("| service instructions per correction | \(grouped(Int(ipc.rounded()))) (no baseline recorded) | – |")
                }
            }
            if let ipc = tuned.instructionsPerCorrection,
               let other = footprints.first(where: { $0.label == "multilingual" })?.instructionsPerCorrection {
                lines.append("| service instructions per correction, texts in four other languages | \(grouped(Int(other.rounded()))): \(String(format: "%.1f", other / ipc)) × the English workload's | – |")
            }
            if let base = FootprintBaseline.walBytesPerCorrection {
                let wal = tuned.walBytesPerCorrection
                lines.append("| WAL bytes per correction ≥ 30 % below \(FootprintBaseline.commit)'s | \(grouped(Int(wal.rounded()))) vs \(grouped(Int(base))): \(percent(wal / base)) | \(verdict(wal <= base * 0.7)) |")
            }
        }
        for (name, all) in [("tuned", serviceLatencyRuns), ("stock", stockLatencyRuns)] {
            guard let runs = all[1000], !runs.isEmpty else { continue }
            let p99s = runs.map { $0.percentile(99) }, p50s = runs.map { $0.percentile(50) }
            lines.append("| p99 publish → receipt ≤ 10 ms at 1,000/s in every run (\(name) PostgreSQL) | \(p99s.map { ms($0) }.joined(separator: ", ")) ms | \(verdict(p99s.allSatisfy { $0 <= 10 })) |")
            lines.append("| p50 ≤ 3 ms at 1,000/s in every run (\(name) PostgreSQL) | \(p50s.map { ms($0) }.joined(separator: ", ")) ms | \(verdict(p50s.allSatisfy { $0 <= 3 })) |")
            // Attribution, not the target: the runs in which the disk never stopped answering
            // and no autovacuum ran.
            if runs.allSatisfy({ $0.diskStalls != nil && $0.maintenance != nil }) {
                let calm = runs.indices.filter { runs[$0].diskStalls!.isEmpty && runs[$0].maintenanceInWindow!.isEmpty }
                let measured = calm.isEmpty ? "no run without either"
                    : calm.map { "run \($0 + 1): \(ms(p99s[$0]))" }.joined(separator: ", ") + " ms (\(runs.count - calm.count) of \(runs.count) runs had one)"
                lines.append("| the same, in the runs without a disk stall ≥ 10 ms or an autovacuum (\(name) PostgreSQL) | \(measured) | "
                    + "\(calm.isEmpty ? "–" : verdict(calm.allSatisfy { p99s[$0] <= 10 })) |")
            }
        }
        lines.append("| maximum throughput ≥ 50 % of the echo ceiling (best vs best, same run; the ceiling the mean of before and after) | \(int(best))/s of \(int(bestEcho))/s = \(percent(bestCeiling)) | \(verdict(bestCeiling >= 0.5)) |")
        let drift = soakDrift
        let flat = drift.map { $0.late - $0.early <= max(5, 0.05 * $0.early) } ?? false
        lines.append("| service RSS ≤ 64 MB at maximum load | peak \(fixed(peakRSS)) MiB | \(verdict(peakRSS > 0 && peakRSS * 1.048576 <= 64)) |")
        if let drift {
            lines.append("| RSS flat over the \(plan.soak.components.seconds) s soak | first \(fixed(drift.early)) MiB → last \(fixed(drift.late)) MiB | \(verdict(flat)) |")
        }
        if let two = twoInstances, let one = service[twoInstancesConnections] {
            lines.append("| two instances ≥ one (\(twoInstancesConnections) connections) | \(int(two.throughput))/s vs \(int(one.throughput))/s | \(verdict(two.throughput >= one.throughput)) |")
        }
        if let cost = gateCost, let ratio = gateCostRatio {
            let runs = { (values: [Double]) in values.map { fixed($0) }.joined(separator: ", ") }
            lines.append("| service CPU with the gate < 110 % of without (\(Int(cost.rate))/s offered) | on \(runs(cost.on)) s/10k vs off \(runs(cost.off)) s/10k: \(percent(ratio)) | \(verdict(ratio < 1.1)) |")
        }
        if let c = correctness {
            lines.append("| one row and one receipt per correction | \(c.sent) sent, \(c.receipts) receipts (\(c.duplicateReceipts) duplicate, \(c.notAccepted) not accepted), \(c.rows) rows, \(c.trainingExamples) training examples, outbox \(c.outboxLeft) | \(verdict(c.ok)) |")
        }
        let stockRuns = stockLatencyRuns.values.flatMap { $0 } + Array(stockThroughput.values)
        if !stockRuns.isEmpty {
            let sent = stockRuns.reduce(0) { $0 + $1.sent }, received = stockRuns.reduce(0) { $0 + $1.received }
            let refused = stockRuns.reduce(0) { $0 + $1.notAccepted }
            lines.append("| every correction answered `accepted` (stock PostgreSQL) | \(received) of \(sent), \(refused) not accepted | \(verdict(received == sent && refused == 0)) |")
        }
        if footprints.contains(where: { !$0.complete }) {
            lines.append("| work per correction: every correction answered `accepted` | incomplete | **missed** |")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    // MARK: Chart

    /// Latency percentiles against offered load, log-log, service and ceiling.
    var svg: String {
        let width = 720.0, height = 440.0, left = 70.0, right = 200.0, top = 40.0, bottom = 60.0
        let loads = plan.loads.sorted()
        var values: [Double] = []
        for load in loads {
            for result in [serviceLatency[load], ceilingLatency[load]].compactMap({ $0 }) {
                values += [50, 99, 99.9].map { result.percentile($0) }.filter { $0 > 0 }
            }
        }
        let yMin = pow(10, floor(log10(values.min() ?? 0.1)))
        let yMax = pow(10, ceil(log10(values.max() ?? 10)))
        let xMin = log10(loads.first ?? 100), xMax = log10(loads.last ?? 1000)
        func x(_ load: Double) -> Double { left + (xMax > xMin ? (log10(load) - xMin) / (xMax - xMin) : 0.5) * (width - left - right) }
        func y(_ value: Double) -> Double {
            top + (1 - (log10(max(value, yMin)) - log10(yMin)) / max(1e-9, log10(yMax) - log10(yMin))) * (height - top - bottom)
        }
        var out = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(left)" y="22" font-size="15">Publish → receipt latency against offered load (run \(nonce))</text>

            """
        var decade = yMin
        while decade <= yMax * 1.0001 {
            out += "<line x1=\"\(left)\" x2=\"\(width - right)\" y1=\"\(y(decade))\" y2=\"\(y(decade))\" stroke=\"#ddd\"/>"
            out += "<text x=\"\(left - 8)\" y=\"\(y(decade) + 4)\" text-anchor=\"end\">\(decade < 1 ? String(format: "%g", decade) : String(Int(decade))) ms</text>\n"
            decade *= 10
        }
        for load in loads {
            out += "<line x1=\"\(x(load))\" x2=\"\(x(load))\" y1=\"\(top)\" y2=\"\(height - bottom)\" stroke=\"#ddd\"/>"
            out += "<text x=\"\(x(load))\" y=\"\(height - bottom + 18)\" text-anchor=\"middle\">\(Int(load))/s</text>\n"
        }
        out += "<text x=\"\((left + width - right) / 2)\" y=\"\(height - 16)\" text-anchor=\"middle\">offered load (corrections per second)</text>\n"
        let series: [(String, String, String, [Double: PhaseResult], Double)] = [
            ("service p50", "#1f77b4", "", serviceLatency, 50), ("service p99", "#d62728", "", serviceLatency, 99),
            ("service p99.9", "#9467bd", "", serviceLatency, 99.9),
            ("echo p50", "#1f77b4", "5,4", ceilingLatency, 50), ("echo p99", "#d62728", "5,4", ceilingLatency, 99),
            ("echo p99.9", "#9467bd", "5,4", ceilingLatency, 99.9),
        ]
        for (index, (name, color, dash, results, percentile)) in series.enumerated() {
            let points = loads.compactMap { load in results[load].map { (x(load), y($0.percentile(percentile))) } }
            guard !points.isEmpty else { continue }
            let path = points.map { "\($0.0),\($0.1)" }.joined(separator: " ")
            out += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" stroke-dasharray=\"\(dash)\" points=\"\(path)\"/>\n"
            for point in points { out += "<circle cx=\"\(point.0)\" cy=\"\(point.1)\" r=\"3\" fill=\"\(color)\"/>" }
            let legendY = top + 20 + Double(index) * 20
            out += "<line x1=\"\(width - right + 15)\" x2=\"\(width - right + 45)\" y1=\"\(legendY)\" y2=\"\(legendY)\" stroke=\"\(color)\" stroke-width=\"2\" stroke-dasharray=\"\(dash)\"/>"
            out += "<text x=\"\(width - right + 52)\" y=\"\(legendY + 4)\">\(name)</text>\n"
        }
        out += "<line x1=\"\(left)\" x2=\"\(width - right)\" y1=\"\(y(10))\" y2=\"\(y(10))\" stroke=\"#2ca02c\" stroke-dasharray=\"2,3\"/>"
        out += "<text x=\"\(width - right - 4)\" y=\"\(y(10) - 5)\" text-anchor=\"end\" fill=\"#2ca02c\">p99 target 10 ms</text>\n"
        return out + "</svg>\n"
    }

    /// p99 of each second of every 1,000/s run: a stall shows as a spike at its second.
    var timelineSVG: String {
        let width = 720.0, height = 360.0, left = 60.0, right = 170.0, top = 40.0, bottom = 50.0
        let series = [("tuned", serviceLatencyRuns[1000] ?? []), ("stock", stockLatencyRuns[1000] ?? [])]
            .flatMap { name, runs in runs.enumerated().map { ("\(name) run \($0.offset + 1)", $0.element.p99BySecond) } }
        let seconds = max(1, series.map(\.1.count).max() ?? 1)
        let yMax = max(10, (series.flatMap(\.1).max() ?? 10) * 1.1)
        func x(_ second: Int) -> Double { left + Double(second) / Double(max(1, seconds - 1)) * (width - left - right) }
        func y(_ value: Double) -> Double { top + (1 - value / yMax) * (height - top - bottom) }
        var out = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(left)" y="22" font-size="15">p99 per second at 1,000 corrections/s, every run (run \(nonce))</text>

            """
        for step in 0...4 {
            let value = yMax * Double(step) / 4
            out += "<line x1=\"\(left)\" x2=\"\(width - right)\" y1=\"\(y(value))\" y2=\"\(y(value))\" stroke=\"#ddd\"/>"
            out += "<text x=\"\(left - 6)\" y=\"\(y(value) + 4)\" text-anchor=\"end\">\(Int(value.rounded())) ms</text>\n"
        }
        out += "<text x=\"\((left + width - right) / 2)\" y=\"\(height - 14)\" text-anchor=\"middle\">second of the measured window</text>\n"
        out += "<line x1=\"\(left)\" x2=\"\(width - right)\" y1=\"\(y(10))\" y2=\"\(y(10))\" stroke=\"#2ca02c\" stroke-dasharray=\"2,3\"/>\n"
        let colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
        for (index, (name, values)) in series.enumerated() where !values.isEmpty {
            let color = colors[index % colors.count]
            let dash = name.hasPrefix("stock") ? "5,4" : ""
            let path = values.enumerated().map { "\(x($0.offset)),\(y($0.element))" }.joined(separator: " ")
            out += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" stroke-dasharray=\"\(dash)\" points=\"\(path)\"/>\n"
            let legendY = top + 16 + Double(index) * 18
            out += "<line x1=\"\(width - right + 12)\" x2=\"\(width - right + 40)\" y1=\"\(legendY)\" y2=\"\(legendY)\" stroke=\"\(color)\" stroke-width=\"2\" stroke-dasharray=\"\(dash)\"/>"
            out += "<text x=\"\(width - right + 46)\" y=\"\(legendY + 4)\">\(name)</text>\n"
        }
        return out + "</svg>\n"
    }

    func write(to folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Data(timelineSVG.utf8).write(to: folder.appendingPathComponent("timeline.svg"))
        try Data(json().serialized()).write(to: folder.appendingPathComponent("result.json"))
        try Data(markdown.utf8).write(to: folder.appendingPathComponent("result.md"))
        try Data(svg.utf8).write(to: folder.appendingPathComponent("latency.svg"))
    }
}

private func round3(_ value: Double) -> Double { (value * 1000).rounded() / 1000 }
private func int(_ value: Double?) -> String { value.map { String(Int($0.rounded())) } ?? "–" }
private func ms(_ value: Double?) -> String { value.map { String(format: $0 < 10 ? "%.2f" : "%.1f", $0) } ?? "–" }
private func fixed(_ value: Double?) -> String { value.map { String(format: "%.1f", $0) } ?? "–" }
/// `p50 / p99 / p99.9` in milliseconds.
private func percentiles(_ result: PhaseResult?) -> String {
    [50, 99, 99.9].map { ms(result?.percentile($0)) }.joined(separator: " / ")
}
private func percent(_ value: Double) -> String { String(format: "%.0f %%", value * 100) }

func median(_ values: [Double]) -> Double? {
    guard !values.isEmpty else { return nil }
    let sorted = values.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}
