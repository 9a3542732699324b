import Foundation
import MorpheusCore
import Synchronization

/// The live counters and state an instance reports on its status topic.
public final class StatusBoard: Sendable {
    private let status: Mutex<ServiceStatus>

    public init(instanceID: String, version: String, startedAt: Date = Date()) {
        status = Mutex(ServiceStatus(instanceId: instanceID, state: .online, version: version, startedAt: startedAt, updatedAt: startedAt))
    }

    /// A copy stamped with the current time and `state`.
    public func snapshot(state: ServiceStatus.State, at now: Date = Date()) -> ServiceStatus {
        status.withLock { status in
            status.state = state
            status.updatedAt = now
            return status
        }
    }

    /// Applies a change to the counters.
    public func count(_ change: (inout ServiceStatus.Counters) -> Void) {
        status.withLock { change(&$0.counters) }
    }
}
