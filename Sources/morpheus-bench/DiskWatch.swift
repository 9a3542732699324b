import Foundation
import MorpheusCore
import NIOConcurrencyHelpers

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
    /// A sampling thread runs while `generation` is the one it was started with: a later
    /// `start()` or `stop()` ends it.
    private let state = NIOLockedValueBox<(generation: UInt64, stalls: [Stall])>((0, []))

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
            return state.generation
        }
        Thread.detachNewThread { [self] in sample(generation) }
    }

    func stop() {
        state.withLockedValue { $0.generation += 1 }
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
        while state.withLockedValue({ $0.generation == generation }) {
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
        guard let lastProgress else {
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
