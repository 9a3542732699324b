import CMosquitto
import Foundation
import Synchronization

// mosquitto_lib_init must run once per process before any client exists.
private let libraryReady: Bool = {
    mosquitto_lib_init()
    return true
}()

/// An MQTT 5 client over libmosquitto with crash-safe, batched acknowledgement of what it receives.
///
/// The client runs its own network thread (libmosquitto in threaded mode, our own `poll` loop):
/// it reads a batch of messages, hands it to ``batches`` and then neither reads nor writes until
/// the batch is acknowledged, so the PUBACKs of a batch reach the broker only after the caller
/// has made it durable. A slow caller makes the client stop reading; memory stays bounded by
/// ``MQTTClientConfiguration/receiveMaximum``. Reconnects use capped exponential backoff with
/// jitter, and subscriptions are sent again whenever the broker had lost the session.
///
/// ```swift
/// let client = try MQTTClient(configuration: .init(clientID: "worker-1", cleanStart: false,
///                                                   sessionExpiry: .seconds(3600)))
/// client.start()
/// let consumer = Task {
///     for await batch in client.batches {
///         try await store(batch.messages)
///         batch.acknowledge()
///     }
/// }
/// try await client.subscribe("$share/workers/jobs/#")
/// ```
public final class MQTTClient: Sendable {
    let core: ClientCore

    /// Received messages, one batch at a time. Iterate it from one task only.
    public let batches: AsyncStream<MQTTBatch>

    /// Creates the client; nothing is connected until ``start()``.
    public init(configuration: MQTTClientConfiguration) throws {
        precondition(libraryReady)
        let (stream, continuation) = AsyncStream<MQTTBatch>.makeStream(bufferingPolicy: .unbounded)
        self.batches = stream
        self.core = try ClientCore(configuration: configuration, batchContinuation: continuation)
    }

    deinit {
        core.requestStop()
    }

    /// The configuration the client was made with.
    public var configuration: MQTTClientConfiguration { core.configuration }

    /// Starts the network thread, which connects and keeps reconnecting until ``shutdown()``.
    public func start() {
        core.start()
    }

    /// The current connection state.
    public var connectionState: MQTTConnectionState { core.currentState }

    /// A stream of connection states, starting with the current one.
    public func connectionStates() -> AsyncStream<MQTTConnectionState> {
        core.observeStates()
    }

    /// Waits until CONNACK was received, or throws ``MQTTError/Code/timeout``.
    public func waitUntilConnected(timeout: Duration) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await state in self.connectionStates() {
                    if state.isConnected { return }
                    if state == .stopped { throw MQTTError(.shutdown, operation: "connect") }
                }
                throw MQTTError(.shutdown, operation: "connect")
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw MQTTError(.timeout, operation: "connect")
            }
            defer { group.cancelAll() }
            try await group.next()
        }
    }

    /// Subscribes and waits for the broker's SUBACK; returns the granted QoS.
    ///
    /// The subscription is remembered and sent again after a reconnect that lost the session.
    /// Shared subscriptions are written `$share/{group}/{filter}`. While disconnected, the call
    /// waits for the next connection.
    ///
    /// - Important: on a resumed session the broker may send queued messages before the SUBACK,
    ///   and nothing after an unacknowledged batch is read. Start consuming ``batches`` before
    ///   awaiting this call, or it waits for a SUBACK that sits behind your own batch.
    @discardableResult
    public func subscribe(_ filter: String, qos: MQTTQoS = .atLeastOnce) async throws -> MQTTQoS {
        guard !filter.isEmpty else { throw MQTTError(.invalidArgument, operation: "subscribe") }
        return try await core.subscribe(filter: filter, qos: qos)
    }

    /// Unsubscribes and waits for UNSUBACK. Requires a connection.
    public func unsubscribe(_ filter: String) async throws {
        try await core.unsubscribe(filter: filter)
    }

    /// Publishes and waits until the broker acknowledged it (QoS 1: PUBACK) or it was written
    /// (QoS 0). A QoS 1 message published while disconnected is kept by libmosquitto and sent
    /// after the reconnect. An MQTT 5 refusal (reason code ≥ 0x80) throws.
    public func publish(_ message: MQTTOutgoingMessage) async throws {
        guard let ticket = try core.send(message) else { return }
        try await core.awaitPublish(ticket)
    }

    /// Publishes several messages at once and waits until the broker acknowledged every one. The
    /// first failure or refusal is thrown after all of them were awaited, so a caller can treat
    /// the group as published only when this returns.
    public func publish(_ messages: [MQTTOutgoingMessage]) async throws {
        try await startPublishing(messages).acknowledged()
    }

    /// Hands messages to the network thread now and returns a handle to await their
    /// acknowledgements later, e.g. from another task. Await or ``MQTTPendingPublication/forget()``
    /// every handle: the results are kept until then.
    public func startPublishing(_ messages: [MQTTOutgoingMessage]) -> MQTTPendingPublication {
        var tickets: [UInt64] = []
        tickets.reserveCapacity(messages.count)
        var failure: MQTTError?
        for message in messages {
            do {
                if let ticket = try core.send(message) { tickets.append(ticket) }
            } catch {
                failure = error as? MQTTError ?? MQTTError(.invalidArgument, operation: "publish")
                break
            }
        }
        return MQTTPendingPublication(core: core, tickets: tickets, failure: failure)
    }

    /// Queues a message for publishing without waiting for its acknowledgement.
    ///
    /// Use it for fire-and-track traffic such as receipts, where the caller does not need to
    /// suspend per message.
    public func enqueue(_ message: MQTTOutgoingMessage) throws {
        if let ticket = try core.send(message) { core.forget(ticket) }
    }

    /// Stops the client: waits up to ``MQTTClientConfiguration/shutdownGrace`` for an outstanding
    /// batch to be acknowledged, disconnects cleanly (no last will) when it was, or closes the
    /// socket without sending the batch's PUBACKs when it was not, and frees the handle.
    public func shutdown() async {
        await core.stop()
    }
}

/// Messages handed to the network thread whose acknowledgements are still to be awaited.
public struct MQTTPendingPublication: Sendable {
    let core: ClientCore
    let tickets: [UInt64]
    let failure: MQTTError?

    /// Waits for every message's PUBACK; throws the first failure (a message that could not be
    /// queued, a refusal, a PUBACK overdue past the publish timeout, or the client's shutdown)
    /// once all were awaited.
    public func acknowledged() async throws {
        var firstError: (any Error)? = failure
        for ticket in tickets {
            do {
                try await core.awaitPublish(ticket)
            } catch {
                firstError = firstError ?? error
            }
        }
        if let firstError { throw firstError }
    }

    /// Gives up on the acknowledgements (the messages are still delivered).
    public func forget() {
        for ticket in tickets { core.forget(ticket) }
    }
}
