import Foundation
@testable import morpheus_bench
import Testing

/// The benchmark's attribution of a latency run's tail: the disk's stalls, the service's slow
/// commits. Pure parsing and the stall rule; the sampling itself runs in `scripts/bench.sh`.
@Suite("Benchmark: disk stalls and slow commits")
struct DiskWatchTests {
    // Two kernels' formats: 17 counters (5.5+, with discards and flushes), 11 (before 4.18).
    static let diskstats = """
         253       0 vda 1000 10 80000 500 2000 20 160000 900 3 1200 1400 40 0 320 5 70 8
         253       1 vda1 900 9 72000 450 1900 19 150000 850 1 1100 1300 30 0 300 4 60 7
           7       0 loop0 12 0 24 1 0 0 0 0 0 4 1 0 0 0 0 0 0
           8      16 sdb 100 0 800 50 200 0 1600 90 2 120 140

        """

    func counters(_ device: String) -> (completed: UInt64, inFlight: UInt64)? {
        Array(Self.diskstats.utf8).withUnsafeBufferPointer { DiskStatsReader.counters(in: $0, device: Array(device.utf8)) }
    }

    @Test("a device's completed I/Os are its reads, writes, discards and flushes; in flight is its ninth counter; a partition is not its disk")
    func diskstatsLine() {
        let vda = counters("vda")
        #expect(vda?.completed == 1000 + 2000 + 40 + 70)
        #expect(vda?.inFlight == 3)
        let partition = counters("vda1")
        #expect(partition?.completed == 900 + 1900 + 30 + 60)
        #expect(partition?.inFlight == 1)
        #expect(counters("sdb")?.completed == 300)
        #expect(counters("sdb")?.inFlight == 2)
        #expect(counters("vd") == nil)
        #expect(counters("nvme0n1") == nil)
    }

    @Test("a stall is the time between two samples with progress while I/O waited and none completed, from the threshold up")
    func stallRule() {
        let ms: UInt64 = 1_000_000
        var detector = StallDetector(threshold: 10 * ms)
        #expect(detector.observe(at: 0, completed: 100, inFlight: 1) == nil)
        // Completions every 2 ms: no stall, however long I/O stays in flight.
        for step in UInt64(1)...20 { #expect(detector.observe(at: step * 2 * ms, completed: 100 + step, inFlight: 1) == nil) }
        // Idle: nothing in flight, nothing completing — no stall either.
        for step in UInt64(21)...40 { #expect(detector.observe(at: step * 2 * ms, completed: 120, inFlight: 0) == nil) }
        // 30 ms with one I/O in flight and none completing, then it completes.
        for step in UInt64(41)...55 { #expect(detector.observe(at: step * 2 * ms, completed: 120, inFlight: 1) == nil) }
        let stall = detector.observe(at: 110 * ms, completed: 121, inFlight: 0)
        #expect(stall?.start == 80 * ms)
        #expect(stall?.nanoseconds == 30 * ms)
        // 8 ms without progress is an ordinary slow I/O.
        for step in UInt64(56)...58 { #expect(detector.observe(at: step * 2 * ms, completed: 121, inFlight: 2) == nil) }
        #expect(detector.observe(at: 118 * ms, completed: 122, inFlight: 1) == nil)
    }

    @Test("slow commits are read from the service's commit-duration histogram; without its buckets there is no figure")
    func commitHistogram() {
        let metrics = """
            # TYPE morpheus_commit_duration_seconds histogram
            morpheus_commit_duration_seconds_bucket{le="0.001"} 10
            morpheus_commit_duration_seconds_bucket{le="0.005"} 80
            morpheus_commit_duration_seconds_bucket{le="0.01"} 95
            morpheus_commit_duration_seconds_bucket{le="0.02"} 97
            morpheus_commit_duration_seconds_bucket{le="0.05"} 99
            morpheus_commit_duration_seconds_bucket{le="+Inf"} 100
            morpheus_commit_duration_seconds_sum 0.8
            morpheus_commit_duration_seconds_count 100
            morpheus_receipt_latency_seconds_bucket{le="0.01"} 3
            """
        let read = CommitDurations.parse(metrics)
        #expect(read?.total == 100)
        #expect(read?.over10ms == 5)
        #expect(read?.over50ms == 1)
        let later = CommitDurations.parse(metrics.replacingOccurrences(of: "{le=\"+Inf\"} 100", with: "{le=\"+Inf\"} 130"))
        #expect(later.map { $0 - read! }?.total == 30)
        #expect(CommitDurations.parse("morpheus_receipt_latency_seconds_bucket{le=\"+Inf\"} 3") == nil)
    }
}
