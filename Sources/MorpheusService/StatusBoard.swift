import Foundation
import MorpheusCore
import NIOConcurrencyHelpers

/// The live counters and state an instance reports on its status topic.
public final class StatusBoard: Sendable {
    private let status: NIOLockedValueBox<ServiceStatus>

    public init(instanceID: String, version: String, startedAt: Date = Date()) {
        status = NIOLockedValueBox(ServiceStatus(instanceId: instanceID, state: .online, version: version, startedAt: startedAt, updatedAt: startedAt))
    }

    private let latencies = NIOLockedValueBox(LatencyWindow())

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

    /// Applies a change to the counters.
    public func count(_ change: (inout ServiceStatus.Counters) -> Void) {
        status.withLockedValue { change(&$0.counters) }
    }
}
