import Foundation
import MorpheusCore
import NIOConcurrencyHelpers

/// The live counters and state an instance reports on its status topic.
public final class StatusBoard: Sendable {
    private let status: NIOLockedValueBox<ServiceStatus>

    public init(instanceID: String, version: String, startedAt: Date = Date()) {
        status = NIOLockedValueBox(ServiceStatus(instanceId: instanceID, state: .online, version: version, startedAt: startedAt, updatedAt: startedAt))
    }

    /// A copy stamped with the current time and `state`.
    public func snapshot(state: ServiceStatus.State, at now: Date = Date()) -> ServiceStatus {
        status.withLockedValue { status in
            status.state = state
            status.updatedAt = now
            return status
        }
    }

    /// Applies a change to the counters.
    public func count(_ change: (inout ServiceStatus.Counters) -> Void) {
        status.withLockedValue { change(&$0.counters) }
    }
}
