import NIOConcurrencyHelpers

/// A one-shot signal between services: one side marks it ready, others wait for it.
public final class Readiness: Sendable {
    private let state = NIOLockedValueBox<(ready: Bool, waiters: [UInt64: CheckedContinuation<Void, any Error>], next: UInt64)>((false, [:], 0))

    public init() {}

    public var isReady: Bool { state.withLockedValue { $0.ready } }

    public func markReady() {
        let waiters = state.withLockedValue { state -> [CheckedContinuation<Void, any Error>] in
            state.ready = true
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once ready; throws `CancellationError` if the task is cancelled first.
    public func wait() async throws {
        let id = state.withLockedValue { state -> UInt64 in
            defer { state.next += 1 }
            return state.next
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let outcome = state.withLockedValue { state -> Result<Void, any Error>? in
                    if state.ready { return .success(()) }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    state.waiters[id] = continuation
                    return nil
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            state.withLockedValue { $0.waiters.removeValue(forKey: id) }?.resume(throwing: CancellationError())
        }
    }
}
