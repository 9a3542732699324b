import Foundation
import MorpheusCore
import NIOConcurrencyHelpers
import Postgres

/// Moments when the disk under PostgreSQL's data directory did not answer: sampled from
/// `/proc/diskstats` every few milliseconds, a stall is a span in which I/O was in flight and
/// none completed. A commit waits for its WAL flush, so every receipt behind a stalled flush
/// waits with it; the latency runs report the stalls in their window next to their p99.
final class DiskWatch: Sendable {
    struct Stall: Sendable {
        /// `monotonicNanos()` when the disk last made progress before the stall.
        var start: UInt64
        var nanoseconds: UInt64
        var milliseconds: Double { Double(nanoseconds) / 1e6 }
    }

    /// The block device's name as in `/proc/diskstats` (e.g. `vda`, `nvme0n1p1`).
    let device: String
    private let interval: UInt32
    private let threshold: UInt64
    /// `generation` ends a sampling thread when a later `start()` or `stop()` came.
    private let state = NIOLockedValueBox<(generation: UInt64, running: Bool, stalls: [Stall])>((0, false, []))

    /// Samples every `intervalMicroseconds` while started; a stall shorter than
    /// `thresholdMilliseconds` is an ordinary slow I/O and not recorded.
    init(device: String, intervalMicroseconds: UInt32 = 2_000, thresholdMilliseconds: UInt64 = 10) {
        self.device = device
        interval = intervalMicroseconds
        threshold = thresholdMilliseconds * 1_000_000
    }

    /// Watches until ``stop()`` (only around the latency runs: the sampling thread costs the
    /// load generator's process a little CPU, which the throughput runs should not pay).
    func start() {
        let generation = state.withLockedValue { state -> UInt64 in
            state.generation += 1
            state.running = true
            return state.generation
        }
        Thread.detachNewThread { [self] in sample(generation) }
    }

    func stop() {
        state.withLockedValue {
            $0.generation += 1
            $0.running = false
        }
    }

    /// The stalls that overlap `window` (monotonic nanoseconds).
    func stalls(in window: ClosedRange<UInt64>) -> [Stall] {
        state.withLockedValue { state in
            state.stalls.filter { $0.start <= window.upperBound && $0.start + $0.nanoseconds >= window.lowerBound }
        }
    }

    private func sample(_ generation: UInt64) {
        var reader = DiskStatsReader(device: device)
        var detector = StallDetector(threshold: threshold)
        while state.withLockedValue({ $0.running && $0.generation == generation }) {
            usleep(interval)
            let now = monotonicNanos()
            guard let counters = reader.read(),
                  let stall = detector.observe(at: now, completed: counters.completed, inFlight: counters.inFlight) else { continue }
            state.withLockedValue { $0.stalls.append(stall) }
        }
    }

    /// The block device that holds `path`, or nil (a file system without one, e.g. tmpfs).
    static func device(holding path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        let dev = UInt64(info.st_dev)
        let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & ~UInt64(0xfff))
        let minor = (dev & 0xff) | ((dev >> 12) & ~UInt64(0xff))
        guard major != 0, let uevent = try? String(contentsOfFile: "/sys/dev/block/\(major):\(minor)/uevent", encoding: .utf8) else { return nil }
        return uevent.split(separator: "\n").first { $0.hasPrefix("DEVNAME=") }.map { String($0.dropFirst("DEVNAME=".count)) }
    }
}

/// The stall rule, fed one sample at a time: the disk made progress when nothing was waiting or
/// something completed since the last sample; a stall is the time between two samples with
/// progress, when it is at least `threshold`.
struct StallDetector {
    let threshold: UInt64
    private var lastProgress: UInt64?
    private var completed: UInt64?

    init(threshold: UInt64) {
        self.threshold = threshold
    }

    /// The stall that `now`'s progress ended, if any.
    mutating func observe(at now: UInt64, completed: UInt64, inFlight: UInt64) -> DiskWatch.Stall? {
        defer { self.completed = completed }
        guard let lastProgress, self.completed != nil else {
            self.lastProgress = now
            return nil
        }
        guard inFlight == 0 || completed != self.completed else { return nil }
        self.lastProgress = now
        return now - lastProgress >= threshold ? DiskWatch.Stall(start: lastProgress, nanoseconds: now - lastProgress) : nil
    }
}

/// Reads one device's line of `/proc/diskstats` into a reused buffer, without allocating: it
/// runs every 2 ms beside the load generator.
struct DiskStatsReader {
    private let name: [UInt8]
    private var buffer = [UInt8](repeating: 0, count: 16_384)

    init(device: String) {
        name = Array(device.utf8)
    }

    /// I/Os completed so far (reads, writes, discards, flushes) and in flight now.
    mutating func read() -> (completed: UInt64, inFlight: UInt64)? {
        let fd = open("/proc/diskstats", O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        let count = buffer.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        return buffer.withUnsafeBufferPointer { Self.counters(in: UnsafeBufferPointer(rebasing: $0[..<count]), device: name) }
    }

    /// The device's counters in the text of `/proc/diskstats`.
    static func counters(in bytes: UnsafeBufferPointer<UInt8>, device name: [UInt8]) -> (completed: UInt64, inFlight: UInt64)? {
        let count = bytes.count
        var index = 0
        while index < count {
            // One line: major, minor, name, then the counters.
            var field = 0, completed: UInt64 = 0, inFlight: UInt64 = 0
            var matched = false
            while index < count && bytes[index] != UInt8(ascii: "\n") {
                while index < count && bytes[index] == UInt8(ascii: " ") { index += 1 }
                let start = index
                var number: UInt64 = 0
                while index < count && bytes[index] != UInt8(ascii: " ") && bytes[index] != UInt8(ascii: "\n") {
                    number = number &* 10 &+ UInt64(bytes[index] &- UInt8(ascii: "0"))
                    index += 1
                }
                guard index > start else { continue }
                if field == 2 {
                    matched = index - start == name.count && name.indices.allSatisfy { bytes[start + $0] == name[$0] }
                    if !matched { while index < count && bytes[index] != UInt8(ascii: "\n") { index += 1 } }
                } else if field > 2 {
                    // reads, writes, then (kernel ≥ 4.18) discards and (≥ 5.5) flushes completed.
                    switch field - 3 {
                    case 0, 4, 11, 15: completed += number
                    case 8: inFlight = number
                    default: break
                    }
                }
                field += 1
            }
            if matched && field >= 14 { return (completed, inFlight) }
            index += 1
        }
        return nil
    }
}

/// The disk on its own: 8 KiB written and `fdatasync`ed at a fixed rate (what a commit asks of
/// it), with nothing else of the benchmark running. Its tail is the floor under the service's.
struct DiskProbe {
    struct Result: Sendable {
        var count: Int
        var p50: Double, p99: Double, max: Double
        /// Flushes that took 10 ms or more.
        var slow: Int
    }

    let directory: URL
    var rate = 400.0
    var duration: Duration = .seconds(20)

    func run() throws -> Result {
        let path = directory.appendingPathComponent(".disk-probe-\(getpid())").path
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw ProbeFailed(reason: "cannot create \(path): errno \(errno)") }
        defer {
            close(fd)
            unlink(path)
        }
        // Written out and synced first, so the probe rewrites allocated blocks as the WAL does.
        let span = 16 << 20
        let block = [UInt8](repeating: 0x5a, count: 8192)
        for offset in stride(from: 0, to: span, by: block.count) { _ = pwrite(fd, block, block.count, off_t(offset)) }
        guard fsync(fd) == 0 else { throw ProbeFailed(reason: "fsync failed: errno \(errno)") }
        var latencies: [UInt64] = []
        let start = monotonicNanos(), end = start + UInt64(duration.nanoseconds)
        var offset = 0
        while true {
            let due = start + UInt64(Double(latencies.count) / rate * 1e9)
            let now = monotonicNanos()
            guard now < end else { break }
            if due > now { usleep(UInt32((due - now) / 1000)) }
            let began = monotonicNanos()
            guard pwrite(fd, block, block.count, off_t(offset)) == block.count, fdatasync(fd) == 0 else {
                throw ProbeFailed(reason: "write or fdatasync failed: errno \(errno)")
            }
            latencies.append(monotonicNanos() - began)
            offset = (offset + block.count) % span
        }
        let sorted = latencies.sorted()
        func ms(_ p: Double) -> Double { Double(sorted[min(sorted.count - 1, Int(p * Double(sorted.count)))]) / 1e6 }
        return Result(count: sorted.count, p50: ms(0.5), p99: ms(0.99), max: Double(sorted.last ?? 0) / 1e6,
                      slow: sorted.filter { $0 >= 10_000_000 }.count)
    }

    struct ProbeFailed: Error, CustomStringConvertible {
        let reason: String
        var description: String { "disk probe: \(reason)" }
    }
}

/// What the report says about the disk under the WAL.
struct DiskReport {
    var device: String?
    var walDirectory: String?
    var probe: DiskProbe.Result?
    /// The device the probe wrote to (the WAL's unless it could not write there).
    var probeDevice: String?

    var json: JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            ("device", device.map(JSONValue.string) ?? .null), ("walDirectory", walDirectory.map(JSONValue.string) ?? .null),
        ]
        if let probe {
            members.append(("probe", .object([
                ("flushes", .number(Double(probe.count))), ("p50Ms", .number(probe.p50)), ("p99Ms", .number(probe.p99)),
                ("maxMs", .number(probe.max)), ("atLeast10Ms", .number(Double(probe.slow))), ("device", probeDevice.map(JSONValue.string) ?? .null),
            ])))
        }
        return .object(members)
    }

    var markdown: String {
        guard let device else { return "Disk: not watched (PostgreSQL's data directory is on no block device this process can see)." }
        var line = "Disk under PostgreSQL's WAL: \(device), watched during the latency runs (a stall: I/O in flight, none completing, for 10 ms or more)."
        if let probe {
            line += " On its own (8 KiB written and fdatasynced 400 times a second, \(probe.count) times, on \(probeDevice ?? "an unknown device"), "
                + String(format: "nothing else of the benchmark running): p50 %.2f / p99 %.2f / max %.1f ms, %d of them 10 ms or more.",
                         probe.p50, probe.p99, probe.max, probe.slow)
        }
        return line
    }
}

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
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return nil }
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
