import Foundation
import MorpheusCore
import NIOConcurrencyHelpers

/// The live counters and state an instance reports on its status topic.
public final class StatusBoard: Sendable {
    private let status: NIOLockedValueBox<ServiceStatus>
    /// The same events for Prometheus.
    let metrics: ServiceMetrics

    public init(instanceID: String, version: String, startedAt: Date = Date(), metrics: ServiceMetrics = ServiceMetrics()) {
        status = NIOLockedValueBox(ServiceStatus(instanceId: instanceID, state: .online, version: version, startedAt: startedAt, updatedAt: startedAt))
        self.metrics = metrics
    }

    private let latencies = NIOLockedValueBox(LatencyWindow())
    private let changeStream = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))

    /// Yields whenever something operators must see at once changed (the database state), so
    /// the status is published on change and not only every interval.
    public var changes: AsyncStream<Void> { changeStream.stream }

    /// Records that storing works (again).
    public func databaseAvailable() {
        let changed = status.withLockedValue { status -> Bool in
            defer { status.database = .available; status.databaseError = nil }
            return status.database != .available
        }
        if changed { changeStream.continuation.yield() }
    }

    /// Records a failed attempt to store that will be retried, and why.
    public func databaseFailed(_ reason: String, retried: Bool = true) {
        let changed = status.withLockedValue { status -> Bool in
            defer {
                status.database = .unavailable
                status.databaseError = String(reason.prefix(300))
                if retried { status.counters.retries += 1 }
            }
            return status.database != .unavailable
        }
        if retried { metrics.retries.increment() }
        if changed { changeStream.continuation.yield() }
    }

    public var databaseState: ServiceStatus.DatabaseState { status.withLockedValue { $0.database } }

    private let lifecycle = NIOLockedValueBox<ServiceStatus.State>(.online)

    /// The state to publish when `requested` is asked for: states only move forward
    /// (online → draining → offline), so a late periodic `online` cannot undo a `draining`.
    public func settle(_ requested: ServiceStatus.State) -> ServiceStatus.State {
        lifecycle.withLockedValue { current in
            let order: [ServiceStatus.State] = [.online, .draining, .offline]
            if order.firstIndex(of: requested)! > order.firstIndex(of: current)! { current = requested }
            return current
        }
    }

    /// A copy stamped with the current time and `state`, with the latency percentiles.
    public func snapshot(state: ServiceStatus.State, at now: Date = Date()) -> ServiceStatus {
        let (p50, p99) = latencies.withLockedValue { ($0.percentile(0.5), $0.percentile(0.99)) }
        return status.withLockedValue { status in
            status.state = state
            status.updatedAt = now
            status.latencyMs = .init(p50: (p50 * 1000).rounded() / 1000, p99: (p99 * 1000).rounded() / 1000)
            return status
        }
    }

    /// Counts one answered message and its receive → receipt latency.
    public func record(latency: Duration, status outcome: Receipt.Status) {
        let (seconds, attoseconds) = latency.components
        latencies.withLockedValue { $0.record(milliseconds: Double(seconds) * 1000 + Double(attoseconds) / 1e15) }
        metrics.receiptLatency.recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        metrics.messages[outcome]?.increment()
        count { counters in
            switch outcome {
            case .accepted: counters.accepted += 1
            case .flagged: counters.flagged += 1
            case .duplicate: counters.duplicate += 1
            case .rejected: counters.rejected += 1
            case .applied: break
            }
        }
    }

    /// A chunk committed: its size and how long its transaction took.
    public func committed(messages: Int, in duration: Duration) {
        metrics.batchSize.record(messages)
        let (seconds, attoseconds) = duration.components
        metrics.commitDuration.recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    /// A batch given back to the broker unacknowledged (database down past its deadline).
    public func released() {
        count { $0.released += 1 }
        metrics.released.increment()
    }

    public func deadLettered(_ count: Int) {
        guard count > 0 else { return }
        self.count { $0.deadLettered += count }
        metrics.deadLetters.increment(by: count)
    }

    /// Applies a change to the counters.
    public func count(_ change: (inout ServiceStatus.Counters) -> Void) {
        status.withLockedValue { change(&$0.counters) }
    }
}
