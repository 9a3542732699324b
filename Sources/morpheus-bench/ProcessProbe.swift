import Foundation

/// Memory and CPU of a process, read from /proc.
struct ProcessProbe {
    let pid: Int32

    /// Resident set size now and at its peak (VmHWM), in MiB.
    func memory() -> (rss: Double, peak: Double) {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return (0, 0) }
        func kib(_ key: String) -> Double {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(key + ":") }) else { return 0 }
            return Double(line.split(separator: " ").dropFirst().first.flatMap { Double($0) } ?? 0)
        }
        return (kib("VmRSS") / 1024, kib("VmHWM") / 1024)
    }

    /// User + system CPU seconds so far.
    func cpuSeconds() -> Double { Self.cpuSeconds(pid: pid) }

    static func cpuSeconds(pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return 0 }
        // Fields after the command name: state is field 3; utime and stime are 14 and 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// CPU seconds of every process whose command name is `name` (e.g. all PostgreSQL backends).
    static func cpuSeconds(command name: String) -> Double {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return 0 }
        var total = 0.0
        for entry in entries {
            guard let pid = Int32(entry),
                  let comm = try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8),
                  comm.trimmingCharacters(in: .whitespacesAndNewlines) == name else { continue }
            total += cpuSeconds(pid: pid)
        }
        return total
    }
}

/// CPU seconds spent by each part of the system over an interval.
struct CPUBreakdown: Sendable {
    static let parts = ["morpheus-feedba", "mosquitto", "postgres", "morpheus-bench"]
    var seconds: [String: Double] = [:]

    static func sample() -> CPUBreakdown {
        var breakdown = CPUBreakdown()
        for part in parts { breakdown.seconds[part] = ProcessProbe.cpuSeconds(command: part) }
        return breakdown
    }

    static func - (lhs: CPUBreakdown, rhs: CPUBreakdown) -> CPUBreakdown {
        var result = CPUBreakdown()
        for part in parts { result.seconds[part] = (lhs.seconds[part] ?? 0) - (rhs.seconds[part] ?? 0) }
        return result
    }
}
