import Foundation
import MorpheusCore
import MQTT
import NIOConcurrencyHelpers

/// Monotonic nanoseconds.
func monotonicNanos() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
}

/// What one measured phase came to.
struct PhaseResult: Sendable {
    var sent = 0
    var received = 0
    /// Receipts that arrived inside the measurement window.
    var receivedInWindow = 0
    var windowSeconds = 0.0
    /// Receipts for a correction that had already been answered.
    var duplicates = 0
    /// Receipts whose status was not `accepted` (service runs only).
    var notAccepted = 0
    /// Publish → receipt, nanoseconds, for corrections published inside the window.
    var latencies: [UInt64] = []
    /// When each of `latencies` was published, nanoseconds after the window opened.
    var sentOffsets: [UInt64] = []
    /// `monotonicNanos()` when the window opened (open-loop runs).
    var windowStart: UInt64 = 0
    /// The disk's stalls during the window (seconds after it opened, length), when watched.
    var diskStalls: [(offset: Double, ms: Double)]?
    /// Autovacuum and autoanalyze runs that ended during the run (warm-up included): what, and
    /// when it ended, seconds after the window opened.
    var maintenance: [(what: String, endedAt: Double)]?
    /// The service's commits from the window's opening until the receipts were in (its own
    /// `morpheus_commit_duration_seconds`), when read.
    var commits: CommitDurations?
    /// Those that ended after the window opened.
    var maintenanceInWindow: [(what: String, endedAt: Double)]? { maintenance?.filter { $0.endedAt >= 0 } }

    var throughput: Double { windowSeconds > 0 ? Double(receivedInWindow) / windowSeconds : 0 }
    var missing: Int { sent - received }

    func percentile(_ p: Double) -> Double {
        guard !latencies.isEmpty else { return 0 }
        let sorted = latencies.sorted()
        let rank = min(sorted.count - 1, Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1)
        return Double(sorted[max(0, rank)]) / 1_000_000
    }

    mutating func merge(_ other: PhaseResult) {
        sent += other.sent
        received += other.received
        receivedInWindow += other.receivedInWindow
        duplicates += other.duplicates
        notAccepted += other.notAccepted
        latencies += other.latencies
        sentOffsets += other.sentOffsets
    }

    /// p99 of each second of the window (by publish time): where a stall happened.
    var p99BySecond: [Double] {
        var seconds: [[UInt64]] = []
        for (latency, offset) in zip(latencies, sentOffsets) {
            let second = Int(offset / 1_000_000_000)
            while seconds.count <= second { seconds.append([]) }
            seconds[second].append(latency)
        }
        return seconds.map { PhaseResult(latencies: $0).percentile(99) }
    }
}

/// One MQTT 5 publisher connection of the load generator: publishes corrections with a response
/// topic and correlation data and matches the receipts that come back.
final class PublisherConnection: Sendable {
    enum Mode: Sendable {
        case idle
        /// Keep `window` corrections unanswered until `until`.
        case closedLoop(window: Int, until: UInt64)
        /// Paced by ``runOpenLoop``; receipts only get recorded.
        case openLoop
    }

    private struct State {
        var mode = Mode.idle
        var sentAt: [UInt64] = []
        var answered: [Bool] = []
        var phase = PhaseResult()
        var window: ClosedRange<UInt64> = 0...0
    }

    /// Position among its siblings (selects its users).
    let index: Int
    /// Unique over the run (ids and reply topics never collide between connection sets).
    let id: Int
    let client: MQTTClient
    private let factory: CorrectionFactory
    private let users: [String]
    private let prefix: String
    private let checkStatus: Bool
    private let state = NIOLockedValueBox(State())
    private static let accepted = Array(#""status":"accepted""#.utf8)

    init(index: Int, of count: Int, id: Int, host: String, port: Int, prefix: String, factory: CorrectionFactory, checkStatus: Bool) throws {
        self.index = index
        self.id = id
        self.prefix = prefix
        self.factory = factory
        self.checkStatus = checkStatus
        users = factory.users.indices.filter { $0 % count == index }.map { factory.users[$0] }
        client = try MQTTClient(configuration: MQTTClientConfiguration(
            host: host, port: port, clientID: "bench-\(factory.nonce)-\(id)",
            cleanStart: true, receiveMaximum: 4000, maxBatchSize: 4000
        ))
    }

    /// Connects, starts matching receipts and subscribes to this connection's reply topics.
    func start() async throws {
        client.start()
        try await client.waitUntilConnected(timeout: .seconds(10))
        Task { [self] in
            for await batch in client.batches {
                receive(batch)
            }
        }
        try await client.subscribe("\(prefix)/replies/+/c\(id)", qos: .atLeastOnce)
    }

    func stop() async {
        await client.shutdown()
    }

    /// Starts a phase: counters reset, receipts inside `window` measured.
    func begin(mode: Mode, window: ClosedRange<UInt64>) {
        state.withLockedValue {
            $0.mode = mode
            $0.phase = PhaseResult()
            $0.window = window
        }
    }

    /// Ends the phase and returns its counters.
    func finish() -> PhaseResult {
        state.withLockedValue {
            $0.mode = .idle
            var result = $0.phase
            result.windowSeconds = Double($0.window.upperBound - $0.window.lowerBound) / 1e9
            return result
        }
    }

    /// Corrections published in the current phase and still unanswered.
    var outstanding: Int { state.withLockedValue { $0.phase.sent - $0.phase.received } }

    /// Publishes `count` corrections.
    func publish(_ count: Int) {
        guard count > 0 else { return }
        let occurredAt = RFC3339.format(Date())
        for _ in 0..<count {
            let sequence = state.withLockedValue { state -> UInt64 in
                state.sentAt.append(monotonicNanos())
                state.answered.append(false)
                state.phase.sent += 1
                return UInt64(state.sentAt.count - 1)
            }
            let user = users[Int(sequence % UInt64(users.count))]
            let (modality, payload) = factory.correction(sequence: sequence, connection: id, user: user, occurredAt: occurredAt)
            var correlation = [UInt8](repeating: 0, count: 8)
            for byte in 0..<8 { correlation[byte] = UInt8(truncatingIfNeeded: sequence >> (56 - 8 * UInt64(byte))) }
            do {
                try client.enqueue(MQTTOutgoingMessage(
                    topic: "\(prefix)/corrections/\(modality)/\(user)", payload: payload, qos: .atLeastOnce,
                    properties: MQTTPublishProperties(responseTopic: "\(prefix)/replies/\(user)/c\(id)", correlationData: correlation,
                                                      contentType: "application/json", payloadIsUTF8: true)
                ))
            } catch {
                FileHandle.standardError.write(Data("publish failed: \(error)\n".utf8))
            }
        }
    }

    private func receive(_ batch: MQTTBatch) {
        let now = monotonicNanos()
        let refill = state.withLockedValue { state -> Int in
            var answeredNow = 0
            for message in batch.messages {
                guard let data = message.properties.correlationData, data.count == 8 else { continue }
                let sequence = data.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                guard sequence < UInt64(state.answered.count) else { continue }
                if state.answered[Int(sequence)] {
                    state.phase.duplicates += 1
                    continue
                }
                state.answered[Int(sequence)] = true
                state.phase.received += 1
                answeredNow += 1
                if checkStatus, !Self.contains(message.payload, Self.accepted) { state.phase.notAccepted += 1 }
                if state.window.contains(now) { state.phase.receivedInWindow += 1 }
                let sentAt = state.sentAt[Int(sequence)]
                if state.window.contains(sentAt) {
                    state.phase.latencies.append(now - sentAt)
                    state.phase.sentOffsets.append(sentAt - state.window.lowerBound)
                }
            }
            if case .closedLoop(_, let until) = state.mode, now < until { return answeredNow }
            return 0
        }
        batch.acknowledge()
        publish(refill)
    }

    private static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard haystack.count >= needle.count else { return false }
        let first = needle[0]
        var index = 0
        while index <= haystack.count - needle.count {
            if haystack[index] == first, haystack[index..<index + needle.count].elementsEqual(needle) { return true }
            index += 1
        }
        return false
    }
}

/// Drives a set of publisher connections through measured phases.
struct LoadGenerator {
    let connections: [PublisherConnection]

    /// Closed loop: `inFlight` corrections unanswered across all connections for
    /// `warmup + measure`; throughput and latency are taken over the `measure` part.
    func closedLoop(inFlight: Int, warmup: Duration, measure: Duration) async throws -> PhaseResult {
        let start = monotonicNanos()
        let windowStart = start + UInt64(warmup.nanoseconds)
        let windowEnd = windowStart + UInt64(measure.nanoseconds)
        let perConnection = max(1, inFlight / connections.count)
        for connection in connections {
            connection.begin(mode: .closedLoop(window: perConnection, until: windowEnd), window: windowStart...windowEnd)
        }
        for connection in connections { connection.publish(perConnection) }
        try await Task.sleep(for: warmup + measure)
        return try await drain()
    }

    /// Open loop: `rate` corrections per second spread evenly over the connections, whatever
    /// the answers do, for `warmup + measure`.
    func openLoop(rate: Double, warmup: Duration, measure: Duration) async throws -> PhaseResult {
        let start = monotonicNanos()
        let windowStart = start + UInt64(warmup.nanoseconds)
        let end = windowStart + UInt64(measure.nanoseconds)
        for connection in connections { connection.begin(mode: .openLoop, window: windowStart...end) }
        let perConnection = rate / Double(connections.count)
        await withTaskGroup(of: Void.self) { group in
            for (offset, connection) in connections.enumerated() {
                group.addTask {
                    // Stagger the connections so their sends interleave.
                    let first = start + UInt64(Double(offset) / rate * 1e9)
                    var sent = 0
                    while true {
                        let now = monotonicNanos()
                        guard now < end else { break }
                        let due = now < first ? 0 : Int(Double(now - first) / 1e9 * perConnection) + 1
                        connection.publish(due - sent)
                        sent = max(sent, due)
                        try? await Task.sleep(for: .microseconds(200))
                    }
                }
            }
        }
        var result = try await drain()
        result.windowStart = windowStart
        return result
    }

    /// Waits (bounded) for every outstanding receipt, then collects the phase's counters.
    private func drain() async throws -> PhaseResult {
        let deadline = monotonicNanos() + 60_000_000_000
        while connections.contains(where: { $0.outstanding > 0 }) && monotonicNanos() < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        var total = PhaseResult()
        var windowSeconds = 0.0
        for connection in connections {
            let result = connection.finish()
            windowSeconds = result.windowSeconds
            total.merge(result)
        }
        total.windowSeconds = windowSeconds
        return total
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
