import CLibPQ
import Dispatch
import NIOConcurrencyHelpers

/// A small pool of connections, each used on its own serial queue so that libpq's blocking
/// calls never occupy Swift's cooperative threads.
///
/// ```swift
/// let pool = PostgresPool(configuration: try PostgresConfiguration(url: url), size: 4)
/// let count = try await pool.withConnection { connection in
///     try connection.query("SELECT count(*) FROM feedback").first!.decode(0, as: Int.self)
/// }
/// ```
///
/// Connections are opened lazily (all at once with ``openAll()``) and replaced after they
/// broke (e.g. a server restart): the use that discovers the break fails with
/// `.connectionClosed`, the next one reconnects.
public final class PostgresPool: Sendable {
    /// A connection and the queue it is used on.
    ///
    /// `@unchecked Sendable`: `connection` is read and written only on `queue`, and only by the
    /// one caller that has the slot checked out.
    final class Slot: @unchecked Sendable {
        let queue: DispatchQueue
        var connection: PostgresConnection?
        init(label: String) { queue = DispatchQueue(label: label) }
    }

    private struct State {
        var idle: [Slot] = []
        var created = 0
        var waiters: [(id: UInt64, continuation: CheckedContinuation<Slot, any Error>)] = []
        var nextWaiterID: UInt64 = 0
        var closed = false
    }

    public let configuration: PostgresConfiguration
    public let size: Int
    private let acquireTimeout: Duration
    private let state = NIOLockedValueBox(State())

    /// Told how long each caller waited for a connection (for a metric).
    private let acquireObserver: (@Sendable (Duration) -> Void)?

    public init(configuration: PostgresConfiguration, size: Int = 4, acquireTimeout: Duration = .seconds(30),
                acquireObserver: (@Sendable (Duration) -> Void)? = nil) {
        precondition(size > 0)
        self.configuration = configuration
        self.size = size
        self.acquireTimeout = acquireTimeout
        self.acquireObserver = acquireObserver
    }

    /// Runs `body` with a connection, on that connection's thread.
    @discardableResult
    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        let waitStarted = ContinuousClock.now
        let slot = try await acquire()
        acquireObserver?(ContinuousClock.now - waitStarted)
        defer { release(slot) }
        let configuration = self.configuration
        return try await withCheckedThrowingContinuation { continuation in
            slot.queue.async {
                do {
                    if slot.connection?.isUsable != true {
                        slot.connection?.close()
                        slot.connection = nil
                        slot.connection = try PostgresConnection(configuration: configuration)
                    }
                    let connection = slot.connection!
                    let value = try body(connection)
                    connection.rollbackIfInTransaction()
                    continuation.resume(returning: value)
                } catch {
                    if let connection = slot.connection {
                        if connection.isUsable { connection.rollbackIfInTransaction() } else { connection.close() }
                    }
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    /// Opens the connections not opened yet, so that a burst later does not pay for
    /// connecting and authenticating (SCRAM's key derivation costs milliseconds of CPU) while
    /// corrections wait. A connection that fails to open is opened on its first use instead;
    /// the first failure is thrown.
    public func openAll() async throws {
        let slots = state.withLockedValue { state -> [Slot] in
            guard !state.closed else { return [] }
            let missing = size - state.created
            state.created = size
            return (0..<missing).map { Slot(label: "postgres-\(size - missing + $0 + 1)") }
        }
        let configuration = self.configuration
        var failure: (any Error)?
        await withTaskGroup(of: (any Error)?.self) { group in
            for slot in slots {
                group.addTask {
                    await withCheckedContinuation { (continuation: CheckedContinuation<(any Error)?, Never>) in
                        slot.queue.async {
                            do {
                                slot.connection = try PostgresConnection(configuration: configuration)
                                continuation.resume(returning: nil)
                            } catch {
                                continuation.resume(returning: error)
                            }
                        }
                    }
                }
            }
            for await error in group where failure == nil { failure = error }
        }
        for slot in slots { release(slot) }
        if let failure { throw failure }
    }

    /// Runs `body` in a transaction on a pooled connection.
    @discardableResult
    public func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        try await withConnection { try $0.transaction(body) }
    }

    /// Fails waiting callers, closes idle connections; connections in use close when released.
    public func close() async {
        let (idle, waiters) = state.withLockedValue { state in
            state.closed = true
            defer {
                state.idle.removeAll()
                state.waiters.removeAll()
            }
            return (state.idle, state.waiters)
        }
        for waiter in waiters { waiter.continuation.resume(throwing: PostgresError(.poolUnavailable, message: "pool closed")) }
        for slot in idle { await Self.closeConnection(of: slot) }
    }

    private static func closeConnection(of slot: Slot) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            slot.queue.async {
                slot.connection?.close()
                slot.connection = nil
                continuation.resume()
            }
        }
    }

    private enum Acquisition {
        case ready(Slot)
        case failed(any Error)
        case waiting(UInt64)
    }

    private func acquire() async throws -> Slot {
        let waiterID = state.withLockedValue { state -> UInt64 in
            defer { state.nextWaiterID += 1 }
            return state.nextWaiterID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Slot, any Error>) in
                let acquisition = state.withLockedValue { state -> Acquisition in
                    if state.closed { return .failed(PostgresError(.poolUnavailable, message: "pool closed")) }
                    if let slot = state.idle.popLast() { return .ready(slot) }
                    if state.created < size {
                        state.created += 1
                        return .ready(Slot(label: "postgres-\(state.created)"))
                    }
                    if Task.isCancelled { return .failed(CancellationError()) }
                    state.waiters.append((waiterID, continuation))
                    return .waiting(waiterID)
                }
                switch acquisition {
                case .ready(let slot): continuation.resume(returning: slot)
                case .failed(let error): continuation.resume(throwing: error)
                case .waiting(let id):
                    let timeout = acquireTimeout
                    Task { [weak self] in
                        try? await Task.sleep(for: timeout)
                        self?.abandon(id, PostgresError(.poolUnavailable, message: "no connection free within \(timeout)"))
                    }
                }
            }
        } onCancel: {
            abandon(waiterID, CancellationError())
        }
    }

    private func abandon(_ id: UInt64, _ error: any Error) {
        let waiter = state.withLockedValue { state -> CheckedContinuation<Slot, any Error>? in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return state.waiters.remove(at: index).continuation
        }
        waiter?.resume(throwing: error)
    }

    private func release(_ slot: Slot) {
        let (waiter, closed) = state.withLockedValue { state -> (CheckedContinuation<Slot, any Error>?, Bool) in
            if state.closed { return (nil, true) }
            if !state.waiters.isEmpty { return (state.waiters.removeFirst().continuation, false) }
            state.idle.append(slot)
            return (nil, false)
        }
        if let waiter {
            waiter.resume(returning: slot)
        } else if closed {
            slot.queue.async {
                slot.connection?.close()
                slot.connection = nil
            }
        }
    }
}

extension PostgresConnection {
    /// Leaves no transaction open when the connection goes back to the pool.
    func rollbackIfInTransaction() {
        if inTransaction { _ = try? query("ROLLBACK") }
    }
}
