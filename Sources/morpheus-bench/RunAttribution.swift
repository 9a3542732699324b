import Foundation
import Postgres
import TestSupport

// Besides the disk (DiskWatch.swift), what else a latency run's tail is put next to: the
// database's housekeeping and the service's own commit times.

/// PostgreSQL's autovacuum and autoanalyze runs per table (`pg_stat_user_tables`): a vacuum
/// of a growing table competes with the commits for the two cores and the disk.
struct Maintenance {
    struct Table {
        var vacuums: Int, analyzes: Int
        var lastVacuum: Date?, lastAnalyze: Date?
    }
    var tables: [String: Table]

    static func snapshot(_ url: String) throws -> Maintenance {
        let connection = try PostgresConnection(configuration: PostgresConfiguration(url: url, applicationName: "morpheus-bench"))
        defer { connection.close() }
        var tables: [String: Table] = [:]
        for row in try connection.query("""
            SELECT relname::text AS name, autovacuum_count AS vacuums, autoanalyze_count AS analyzes,
                   last_autovacuum AS last_vacuum, last_autoanalyze AS last_analyze FROM pg_stat_user_tables
            """) {
            tables[try row.decode("name", as: String.self)] = Table(
                vacuums: try row.decode("vacuums", as: Int.self), analyzes: try row.decode("analyzes", as: Int.self),
                lastVacuum: try row.decodeIfPresent("last_vacuum", as: Date.self), lastAnalyze: try row.decodeIfPresent("last_analyze", as: Date.self))
        }
        return Maintenance(tables: tables)
    }

    /// What ran since `earlier`, by table, with when it (last) ended.
    func since(_ earlier: Maintenance) -> [(what: String, finished: Date)] {
        tables.keys.sorted().flatMap { name -> [(what: String, finished: Date)] in
            let now = tables[name]!, before = earlier.tables[name] ?? Table(vacuums: 0, analyzes: 0)
            var runs: [(what: String, finished: Date)] = []
            if now.vacuums > before.vacuums, let at = now.lastVacuum { runs.append(("vacuum \(name)", at)) }
            if now.analyzes > before.analyzes, let at = now.lastAnalyze { runs.append(("analyze \(name)", at)) }
            return runs
        }
    }
}

/// The service's own `/metrics`, read over plain HTTP/1.0 (the benchmark links no HTTP
/// client): how many of its commits took long, from `morpheus_commit_duration_seconds`.
struct CommitDurations {
    /// Commits so far, and those that took longer than 10 and 50 ms.
    var total = 0.0, over10ms = 0.0, over50ms = 0.0

    static func read(port: Int) -> CommitDurations? {
        fetch(port: port, path: "/metrics").flatMap(parse)
    }

    /// From the Prometheus text format; nil without the histogram or its 10 and 50 ms buckets.
    static func parse(_ text: String) -> CommitDurations? {
        var buckets: [(le: Double, count: Double)] = []
        let prefix = "morpheus_commit_duration_seconds_bucket{le=\""
        for line in text.split(separator: "\n") where line.hasPrefix(prefix) {
            let rest = line.dropFirst(prefix.count)
            guard let quote = rest.firstIndex(of: "\""), let count = Double(rest[rest.index(after: quote)...].drop { $0 == "}" || $0 == " " }) else { continue }
            let bound = rest[..<quote] == "+Inf" ? Double.infinity : Double(rest[..<quote]) ?? .nan
            buckets.append((bound, count))
        }
        func upTo(_ seconds: Double) -> Double? { buckets.first { abs($0.le - seconds) < 1e-9 }?.count }
        guard let all = buckets.first(where: { $0.le == .infinity })?.count,
              let within10 = upTo(0.01), let within50 = upTo(0.05) else { return nil }
        return CommitDurations(total: all, over10ms: all - within10, over50ms: all - within50)
    }

    static func - (later: CommitDurations, earlier: CommitDurations) -> CommitDurations {
        CommitDurations(total: later.total - earlier.total, over10ms: later.over10ms - earlier.over10ms, over50ms: later.over50ms - earlier.over50ms)
    }

    private static func fetch(port: Int, path: String) -> String? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard TestEnvironment.withLoopbackAddress(port: port, { connect(fd, $0, $1) }) == 0 else { return nil }
        let request = Array("GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        guard send(fd, request, request.count, 0) == request.count else { return nil }
        var response: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { break }
            response += chunk[..<n]
        }
        let text = String(decoding: response, as: UTF8.self)
        guard text.hasPrefix("HTTP/1.") && text.contains(" 200 "), let body = text.range(of: "\r\n\r\n") else { return nil }
        return String(text[body.upperBound...])
    }
}
