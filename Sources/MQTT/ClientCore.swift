import CMosquitto
import Foundation
import NIOConcurrencyHelpers
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The state behind an ``MQTTClient``: the libmosquitto handle, its network thread and everything
/// shared between that thread and callers.
///
/// `@unchecked Sendable`: `handle` is used from any thread only for `mosquitto_publish_v5`, which
/// libmosquitto 2.0 makes thread-safe in threaded mode; `loop_*`, `connect*`, subscribe and
/// `destroy` run on the network thread only, and `destroy` after it left its loop. Every other
/// mutable field is either inside `shared` (a lock) or touched only by the network thread
/// (marked "network thread only").
final class ClientCore: @unchecked Sendable {
    struct Subscription {
        var qos: MQTTQoS
        var confirmed: Bool
        /// Callers awaiting the SUBACK, by ticket (so a cancelled caller can leave).
        var waiters: [Int: CheckedContinuation<MQTTQoS, any Error>]
    }

    enum Command {
        case unsubscribe(String, CheckedContinuation<Void, any Error>)
    }

    struct Shared {
        var state: MQTTConnectionState = .disconnected(reason: "not started")
        var started = false
        var stopRequested = false
        var finished = false
        /// The generation of the batch handed over and not yet settled, if any.
        var outstandingBatch: UInt64?
        var batchGeneration: UInt64 = 0
        /// A batch was released: drop the connection without writing its PUBACKs.
        var dropConnection = false
        /// Set by `finish()` before it frees the handle: no send may start after it.
        var closing = false
        /// QoS 1 messages and their waiters, by ticket (packet ids wrap).
        var publishes = PublishTracker<CheckedContinuation<Void, any Error>>()
        var subscriptions: [String: Subscription] = [:]
        /// SUBACK / UNSUBACK message id → what it answers.
        var subscribeMids: [Int32: String] = [:]
        var unsubscribeWaiters: [Int32: CheckedContinuation<Void, any Error>] = [:]
        var commands: [Command] = []
        var needsSubscribing = false
        var nextTicket = 0
        var observers: [Int: AsyncStream<MQTTConnectionState>.Continuation] = [:]
        var nextObserverID = 0
        var exitWaiters: [CheckedContinuation<Void, Never>] = []
    }

    let configuration: MQTTClientConfiguration
    let handle: OpaquePointer
    let shared = NIOLockedValueBox(Shared())
    /// Orders state deliveries (each observer gets the current state once, then every change in
    /// order) without yielding under `shared`: a yield may need the status lock of the waiting
    /// task, and a cancelled observer's termination handler runs under that very lock and takes
    /// `shared` — yielding under `shared` deadlocked a test run (ThreadSanitizer build, a
    /// `waitUntilConnected` cancelled as the client connected).
    private let stateDelivery = NIOLock()
    private let batchContinuation: AsyncStream<MQTTBatch>.Continuation
    private let wakeRead: Int32
    private let wakePending = Atomic<Bool>(false)
    private let wakeWrite: Int32
    private var unmanagedSelf: Unmanaged<ClientCore>?

    /// Messages read since the last hand-over, and their payload bytes. Network thread only.
    private var inbound: [MQTTMessage] = []
    private var inboundBytes = 0
    /// Whether the batch being read may take another message (by count and by bytes).
    private var batchHasRoom: Bool { inbound.count < configuration.maxBatchSize && inboundBytes < configuration.maxBatchBytes }
    /// When the current connection last wrote to its socket. Network thread only.
    private var lastWrite = ContinuousClock.now
    /// Whether the current connection attempt got a CONNACK. Network thread only.
    private var connackReceived = false
    /// Why the broker refused the current attempt (bad credentials…). Network thread only.
    private var refusal: String?

    init(configuration: MQTTClientConfiguration, batchContinuation: AsyncStream<MQTTBatch>.Continuation) throws {
        self.configuration = configuration
        self.batchContinuation = batchContinuation
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else {
            throw MQTTError(.library, operation: "create wake pipe", libraryCode: MOSQ_ERR_ERRNO.code)
        }
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        wakeRead = fds[0]
        wakeWrite = fds[1]
        guard let handle = mosquitto_new(configuration.clientID, configuration.cleanStart, nil) else {
            close(wakeRead)
            close(wakeWrite)
            throw MQTTError(.library, operation: "create client", libraryCode: MOSQ_ERR_NOMEM.code)
        }
        self.handle = handle
        do {
            try configure()
        } catch {
            // Fully initialised by now, so deinit runs and closes the wake pipe.
            mosquitto_destroy(handle)
            throw error
        }
        // The handle's userdata is this object; it stays retained until after mosquitto_destroy.
        let unmanaged = Unmanaged.passRetained(self)
        unmanagedSelf = unmanaged
        mosquitto_user_data_set(handle, unmanaged.toOpaque())
        installCallbacks()
    }

    deinit {
        close(wakeRead)
        close(wakeWrite)
    }

    private func configure() throws {
        func check(_ rc: Int32, _ what: String) throws {
            guard rc == MOSQ_ERR_SUCCESS.code else { throw MQTTError.library(rc, what) }
        }
        try check(mosquitto_int_option(handle, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5), "set protocol version")
        try check(mosquitto_int_option(handle, MOSQ_OPT_RECEIVE_MAXIMUM, Int32(clamping: configuration.receiveMaximum)), "set receive maximum")
        // Small packets (PUBACKs, receipts) must not wait for Nagle's algorithm and the peer's
        // delayed ACK: that costs ~40 ms per exchange on a request/response connection.
        try check(mosquitto_int_option(handle, MOSQ_OPT_TCP_NODELAY, 1), "set TCP_NODELAY")
        // Threaded mode: PUBACKs are only queued in on_message and leave on our next loop_write.
        try check(mosquitto_threaded_set(handle, true), "set threaded mode")
        if configuration.username != nil || configuration.password != nil {
            try check(mosquitto_username_pw_set(handle, configuration.username, configuration.password), "set credentials")
        }
        if let tls = configuration.tls {
            try check(mosquitto_tls_set(handle, tls.caFile, nil, tls.certificateFile, tls.keyFile, nil), "configure TLS")
        }
        if let will = configuration.lastWill {
            var properties: OpaquePointer? = nil
            if let contentType = will.contentType {
                try check(mosquitto_property_add_string(&properties, Int32(MQTT_PROP_CONTENT_TYPE.rawValue), contentType), "set last will")
            }
            let rc = will.payload.withUnsafeBytes { bytes in
                mosquitto_will_set_v5(handle, will.topic, Int32(bytes.count), bytes.baseAddress, will.qos.rawValue, will.retain, properties)
            }
            // On success libmosquitto owns the property list; on failure we free it.
            if rc != MOSQ_ERR_SUCCESS.code { mosquitto_property_free_all(&properties) }
            try check(rc, "set last will")
        }
    }

    private static func core(_ userdata: UnsafeMutableRawPointer?) -> ClientCore {
        Unmanaged<ClientCore>.fromOpaque(userdata!).takeUnretainedValue()
    }

    // Callbacks are non-capturing literals; they run on the network thread inside loop_read.
    private func installCallbacks() {
        mosquitto_connect_v5_callback_set(handle) { _, userdata, rc, flags, _ in
            ClientCore.core(userdata).didConnect(rc: rc, sessionPresent: flags & 1 == 1)
        }
        mosquitto_disconnect_v5_callback_set(handle) { _, userdata, rc, _ in
            ClientCore.core(userdata).didDisconnect(rc: rc)
        }
        mosquitto_message_v5_callback_set(handle) { _, userdata, message, properties in
            guard let message else { return }
            ClientCore.core(userdata).didReceive(message.pointee, properties: properties)
        }
        mosquitto_publish_v5_callback_set(handle) { _, userdata, mid, reasonCode, _ in
            ClientCore.core(userdata).didPublish(mid: mid, reasonCode: reasonCode)
        }
        mosquitto_subscribe_v5_callback_set(handle) { _, userdata, mid, count, granted, _ in
            let first = count > 0 ? granted?.pointee ?? 0x80 : 0x80
            ClientCore.core(userdata).didSubscribe(mid: mid, granted: first)
        }
        mosquitto_unsubscribe_v5_callback_set(handle) { _, userdata, mid, _ in
            ClientCore.core(userdata).didUnsubscribe(mid: mid)
        }
    }

    // MARK: - Public operations (any thread)

    var currentState: MQTTConnectionState { shared.withLockedValue { $0.state } }

    func start() {
        let first = shared.withLockedValue { shared -> Bool in
            defer { shared.started = true }
            return !shared.started && !shared.stopRequested
        }
        guard first else { return }
        let thread = Thread { [self] in self.run() }
        thread.name = "mqtt-\(configuration.clientID)"
        thread.start()
    }

    func observeStates() -> AsyncStream<MQTTConnectionState> {
        let (stream, continuation) = AsyncStream<MQTTConnectionState>.makeStream(bufferingPolicy: .bufferingNewest(16))
        let id = stateDelivery.withLock {
            let (current, id) = shared.withLockedValue { shared -> (MQTTConnectionState, Int?) in
                if shared.finished { return (shared.state, nil) }
                let id = shared.nextObserverID
                shared.nextObserverID += 1
                shared.observers[id] = continuation
                return (shared.state, id)
            }
            continuation.yield(current)
            return id
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        // Captures the state box, not a weak self: no weak-reference side table, and the cycle
        // box → observer → handler → box ends when the stream terminates or the client finishes.
        continuation.onTermination = { [shared] _ in
            _ = shared.withLockedValue { $0.observers.removeValue(forKey: id) }
        }
        return stream
    }

    /// Hands a message to libmosquitto and returns the ticket to await its acknowledgement by
    /// (QoS 1), or `nil` (QoS 0).
    ///
    /// The handle is used outside the lock, so `finish()` waits until no send is in progress
    /// before it frees it: a publish racing shutdown never touches freed memory.
    func send(_ message: MQTTOutgoingMessage) throws -> PublishTracker<CheckedContinuation<Void, any Error>>.Ticket? {
        guard !message.topic.isEmpty else { throw MQTTError(.invalidArgument, operation: "publish") }
        let tracked = message.qos > .atMostOnce
        enum Admission { case admitted, shutdown, notConnected }
        let admission = shared.withLockedValue { shared -> Admission in
            guard !shared.stopRequested, !shared.closing else { return .shutdown }
            // libmosquitto accepts a QoS 0 message while its TCP connect is still pending and
            // drops it when the connect fails: without a CONNACK it would be lost unannounced.
            guard tracked || shared.state.isConnected else { return .notConnected }
            shared.publishes.beginSend()
            return .admitted
        }
        switch admission {
        case .admitted: break
        case .shutdown: throw MQTTError(.shutdown, operation: "publish")
        case .notConnected: throw MQTTError(.notConnected, operation: "publish")
        }
        var mid: Int32 = 0
        let rc: Int32
        do {
            rc = try message.properties.withPropertyList(operation: "publish") { properties in
                message.payload.withUnsafeBytes { bytes in
                    mosquitto_publish_v5(handle, &mid, message.topic, Int32(bytes.count), bytes.baseAddress,
                                         message.qos.rawValue, message.retain, properties)
                }
            }
        } catch {
            shared.withLockedValue { $0.publishes.abandonSend() }
            throw error
        }
        let queued = rc == MOSQ_ERR_SUCCESS.code || (rc == MOSQ_ERR_NO_CONN.code && tracked)
        let deadline = ContinuousClock.now + configuration.publishTimeout
        let (ticket, superseded) = shared.withLockedValue { shared -> (PublishTracker<CheckedContinuation<Void, any Error>>.Ticket?, CheckedContinuation<Void, any Error>?) in
            guard queued, tracked else {
                shared.publishes.abandonSend()
                return (nil, nil)
            }
            let registered = shared.publishes.register(mid: mid, deadline: deadline)
            return (registered.ticket, registered.superseded)
        }
        superseded?.resume(throwing: MQTTError(.timeout, operation: "publish (its packet id was reused before its PUBACK came)"))
        switch rc {
        case MOSQ_ERR_SUCCESS.code:
            break
        case MOSQ_ERR_NO_CONN.code where tracked:
            // libmosquitto queued it in its outgoing store and resends it after the reconnect.
            break
        case MOSQ_ERR_NO_CONN.code:
            throw MQTTError(.notConnected, operation: "publish")
        default:
            throw MQTTError.library(rc, "publish")
        }
        wake()
        return ticket
    }

    func forget(_ ticket: PublishTracker<CheckedContinuation<Void, any Error>>.Ticket) {
        shared.withLockedValue { $0.publishes.forget(ticket) }
    }

    func awaitPublish(_ ticket: PublishTracker<CheckedContinuation<Void, any Error>>.Ticket) async throws {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let outcome = shared.withLockedValue { shared -> Result<Void, any Error>? in
                    if shared.finished { return .failure(MQTTError(.shutdown, operation: "publish")) }
                    if Task.isCancelled {
                        shared.publishes.forget(ticket)
                        return .failure(CancellationError())
                    }
                    return shared.publishes.await(ticket, waiter: continuation).map(ClientCore.publishResult)
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            shared.withLockedValue { $0.publishes.cancelWait(ticket) }?.resume(throwing: CancellationError())
        }
    }

    private static func publishResult(_ outcome: PublishTracker<CheckedContinuation<Void, any Error>>.Outcome) -> Result<Void, any Error> {
        switch outcome {
        case .acknowledged(let reasonCode):
            return reasonCode >= 0x80 ? .failure(MQTTError(.refusedByBroker, operation: "publish", reasonCode: reasonCode)) : .success(())
        case .superseded: return .failure(MQTTError(.timeout, operation: "publish (its packet id was reused before its PUBACK came)"))
        case .timedOut: return .failure(MQTTError(.timeout, operation: "publish"))
        case .shutdown: return .failure(MQTTError(.shutdown, operation: "publish"))
        }
    }

    func subscribe(filter: String, qos: MQTTQoS) async throws -> MQTTQoS {
        let ticket = shared.withLockedValue { shared -> Int in
            shared.nextTicket += 1
            return shared.nextTicket
        }
        // Cancellable: the subscription stays registered (and is confirmed later), only the wait
        // ends. A caller that stopped consuming batches must not wait for a SUBACK that sits
        // behind a batch nobody will acknowledge.
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let refusal = shared.withLockedValue { shared -> (any Error)? in
                    if shared.stopRequested { return MQTTError(.shutdown, operation: "subscribe") }
                    if Task.isCancelled { return CancellationError() }
                    var subscription = shared.subscriptions[filter] ?? Subscription(qos: qos, confirmed: false, waiters: [:])
                    subscription.qos = qos
                    subscription.confirmed = false
                    subscription.waiters[ticket] = continuation
                    shared.subscriptions[filter] = subscription
                    shared.needsSubscribing = true
                    return nil
                }
                if let refusal {
                    continuation.resume(throwing: refusal)
                    return
                }
                wake()
            }
        } onCancel: {
            let waiter = shared.withLockedValue { $0.subscriptions[filter]?.waiters.removeValue(forKey: ticket) }
            waiter?.resume(throwing: CancellationError())
        }
    }

    func unsubscribe(filter: String) async throws {
        try await withCheckedThrowingContinuation { continuation in
            let error = shared.withLockedValue { shared -> MQTTError? in
                if shared.stopRequested { return MQTTError(.shutdown, operation: "unsubscribe") }
                guard shared.state.isConnected else { return MQTTError(.notConnected, operation: "unsubscribe") }
                shared.commands.append(.unsubscribe(filter, continuation))
                return nil
            }
            if let error { continuation.resume(throwing: error) }
            wake()
        }
    }

    func requestStop() {
        shared.withLockedValue { $0.stopRequested = true }
        wake()
        // Never started: nobody else will free the handle.
        let neverStarted = shared.withLockedValue { shared -> Bool in
            guard !shared.started, !shared.finished else { return false }
            shared.started = true
            return true
        }
        if neverStarted { finish() }
    }

    func stop() async {
        requestStop()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = shared.withLockedValue { shared -> Bool in
                if shared.finished { return true }
                shared.exitWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    private func setCork(_ socket: Int32, _ on: Bool) {
        var value: Int32 = on ? 1 : 0
        _ = setsockopt(socket, Int32(IPPROTO_TCP), TCP_CORK, &value, socklen_t(MemoryLayout<Int32>.size))
    }

    private func wake() {
        // One byte per loop iteration is enough: a burst of 500 receipts made 500 syscalls.
        guard !wakePending.exchange(true, ordering: .acquiringAndReleasing) else { return }
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    private func drainWake() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while read(wakeRead, &buffer, buffer.count) > 0 {}
        // Cleared only after draining: cleared first, a wake landing between the two would leave
        // the flag set with the pipe empty, and every later wake would be swallowed until the
        // poll timeout. This way a late byte merely causes one extra loop iteration.
        wakePending.store(false, ordering: .sequentiallyConsistent)
    }

    // MARK: - Callbacks (network thread)

    private func didConnect(rc: Int32, sessionPresent: Bool) {
        guard rc == 0 else {
            refusal = "refused: \(String(cString: mosquitto_reason_string(rc)))"
            setState(.disconnected(reason: refusal!))
            return
        }
        connackReceived = true
        shared.withLockedValue { shared in
            // Every subscription is sent again after every CONNACK, whatever `sessionPresent`
            // says: Mosquitto 2.0 restores a persistent session from its persistence file
            // without its `$share/…` subscriptions. Subscribing again is idempotent.
            for key in shared.subscriptions.keys {
                shared.subscriptions[key]?.confirmed = false
            }
            shared.needsSubscribing = true
            shared.subscribeMids.removeAll()
        }
        setState(.connected(sessionPresent: sessionPresent))
    }

    private func didDisconnect(rc: Int32) {
        let reason = rc == 0 ? "disconnected" : String(cString: mosquitto_strerror(rc))
        setState(.disconnected(reason: reason))
    }

    private func didReceive(_ message: mosquitto_message, properties: OpaquePointer?) {
        let payload: [UInt8]
        if let bytes = message.payload, message.payloadlen > 0 {
            payload = Array(UnsafeRawBufferPointer(start: bytes, count: Int(message.payloadlen)))
        } else {
            payload = []
        }
        inboundBytes += payload.count
        inbound.append(MQTTMessage(
            topic: String(cString: message.topic),
            payload: payload,
            qos: MQTTQoS(rawValue: message.qos) ?? .atMostOnce,
            retain: message.retain,
            properties: MQTTPublishProperties(copying: properties)
        ))
    }

    private func didPublish(mid: Int32, reasonCode: Int32) {
        let waiter = shared.withLockedValue { $0.publishes.acknowledge(mid: mid, reasonCode: reasonCode) }
        waiter?.resume(with: ClientCore.publishResult(.acknowledged(reasonCode)))
    }

    /// Fails the messages whose PUBACK is overdue. Network thread, once per loop turn.
    private func expirePublishes() {
        let expired = shared.withLockedValue { $0.publishes.expire(now: .now) }
        for waiter in expired { waiter.resume(throwing: MQTTError(.timeout, operation: "publish")) }
    }

    private func didSubscribe(mid: Int32, granted: Int32) {
        let waiters = shared.withLockedValue { shared -> [CheckedContinuation<MQTTQoS, any Error>] in
            guard let filter = shared.subscribeMids.removeValue(forKey: mid),
                  var subscription = shared.subscriptions[filter] else { return [] }
            let waiters = Array(subscription.waiters.values)
            subscription.waiters = [:]
            if granted >= 0x80 {
                shared.subscriptions.removeValue(forKey: filter)
            } else {
                subscription.confirmed = true
                shared.subscriptions[filter] = subscription
            }
            return waiters
        }
        for waiter in waiters {
            if granted >= 0x80 {
                waiter.resume(throwing: MQTTError(.refusedByBroker, operation: "subscribe", reasonCode: granted))
            } else {
                waiter.resume(returning: MQTTQoS(rawValue: granted) ?? .atMostOnce)
            }
        }
    }

    private func didUnsubscribe(mid: Int32) {
        shared.withLockedValue { $0.unsubscribeWaiters.removeValue(forKey: mid) }?.resume()
    }

    private func setState(_ state: MQTTConnectionState) {
        stateDelivery.withLock {
            let observers = shared.withLockedValue { shared -> [AsyncStream<MQTTConnectionState>.Continuation] in
                guard shared.state != state else { return [] }
                shared.state = state
                return Array(shared.observers.values)
            }
            for observer in observers { observer.yield(state) }
        }
    }

    // MARK: - Network thread

    private func run() {
        var attempt = 0
        while !shared.withLockedValue({ $0.stopRequested }) {
            // Reconnecting while a batch is outstanding would let the caller's acknowledgement
            // race a fresh session; wait until the caller has finished with it.
            waitForOutstandingBatch(until: nil)
            if shared.withLockedValue({ $0.stopRequested }) { break }
            setState(.connecting)
            connackReceived = false
            refusal = nil
            // A release that came while no connection was up has nothing left to drop.
            shared.withLockedValue { $0.dropConnection = false }
            lastWrite = ContinuousClock.now
            let rc = connect()
            if rc == MOSQ_ERR_SUCCESS.code {
                let reason = serve()
                if shared.withLockedValue({ $0.stopRequested }) { break }
                // The socket closing after a refusal says less than the refusal itself.
                setState(.disconnected(reason: refusal ?? reason))
            } else {
                setState(.disconnected(reason: String(cString: mosquitto_strerror(rc))))
            }
            if connackReceived { attempt = 0 }
            sleepInterruptibly(configuration.reconnectBackoff.delay(attempt: attempt))
            attempt += 1
        }
        finish()
    }

    private func connect() -> Int32 {
        var properties: OpaquePointer? = nil
        defer { mosquitto_property_free_all(&properties) }
        let expiry = UInt32(clamping: configuration.sessionExpiry.components.seconds)
        if expiry > 0 {
            mosquitto_property_add_int32(&properties, Int32(MQTT_PROP_SESSION_EXPIRY_INTERVAL.rawValue), expiry)
        }
        let keepAlive = Int32(clamping: max(5, configuration.keepAlive.components.seconds))
        // connect_bind_v5 (not reconnect) each time: mosquitto_reconnect would drop the CONNECT
        // properties, and with them the session expiry. It also discards any packets still
        // queued from the previous connection, so stale PUBACKs never reach a new session.
        return mosquitto_connect_bind_v5(handle, configuration.host, Int32(configuration.port), keepAlive, nil, properties)
    }

    /// Serves one connection until it is lost or a stop is requested; returns why it ended.
    private func serve() -> String {
        while true {
            let (stop, outstanding, drop) = shared.withLockedValue { shared in
                defer { shared.dropConnection = false }
                return (shared.stopRequested, shared.outstandingBatch != nil, shared.dropConnection)
            }
            if stop { return disconnectGracefully() }
            // Nothing is written: the next connect closes this socket and discards the released
            // batch's queued PUBACKs, so the broker redelivers the batch to the session.
            if drop { return "batch released unacknowledged" }
            if !outstanding, let failure = runCommands() { return failure }
            let socket = mosquitto_socket(handle)
            guard socket >= 0 else { return "connection closed" }
            var fds = [pollfd(fd: socket, events: 0, revents: 0), pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
            if !outstanding {
                fds[0].events = Int16(POLLIN)
                if mosquitto_want_write(handle) { fds[0].events |= Int16(POLLOUT) }
            }
            let ready = poll(&fds, 2, 1000)
            if ready < 0 && errno != EINTR { return "poll failed" }
            if fds[1].revents != 0 { drainWake() }
            expirePublishes()
            // While a batch is outstanding nothing is read or written: its PUBACKs sit first
            // in libmosquitto's queue and must not leave before the caller acknowledged it.
            if outstanding { continue }
            if mosquitto_want_write(handle) {
                // libmosquitto writes each packet with its own write(); corked, a batch's PUBACKs,
                // receipts and events leave in a few full segments instead of one each.
                setCork(socket, true)
                let rc = mosquitto_loop_write(handle, 1)
                setCork(socket, false)
                if rc != MOSQ_ERR_SUCCESS.code { return String(cString: mosquitto_strerror(rc)) }
                lastWrite = ContinuousClock.now
            }
            if fds[0].revents & Int16(POLLIN | POLLERR | POLLHUP) != 0 {
                repeat {
                    let rc = mosquitto_loop_read(handle, 1)
                    if rc != MOSQ_ERR_SUCCESS.code {
                        handOverBatch()
                        return String(cString: mosquitto_strerror(rc))
                    }
                } while batchHasRoom && isReadable(mosquitto_socket(handle))
                if !inbound.isEmpty, let failure = fillBatch() { return failure }
                if handOverBatch() { continue }
            }
            let rc = mosquitto_loop_misc(handle)
            if rc != MOSQ_ERR_SUCCESS.code { return String(cString: mosquitto_strerror(rc)) }
        }
    }

    /// Keeps reading into a started batch until `batchWindow` has passed or it is full;
    /// returns a reason if the connection failed meanwhile.
    private func fillBatch() -> String? {
        guard configuration.batchWindow > .zero else { return nil }
        let deadline = ContinuousClock.now + configuration.batchWindow
        while batchHasRoom {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { return nil }
            let socket = mosquitto_socket(handle)
            guard socket >= 0 else { return "connection closed" }
            var fd = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
            guard poll(&fd, 1, Int32(clamping: max(1, remaining.milliseconds))) > 0 else { return nil }
            let rc = mosquitto_loop_read(handle, 1)
            if rc != MOSQ_ERR_SUCCESS.code {
                handOverBatch()
                return String(cString: mosquitto_strerror(rc))
            }
        }
        return nil
    }

    /// Hands what was read to the caller; returns whether there was anything.
    @discardableResult
    private func handOverBatch() -> Bool {
        guard !inbound.isEmpty else { return false }
        let messages = inbound
        // Not keeping capacity: after a flood of large messages the array would pin its peak.
        inbound = []
        inboundBytes = 0
        let generation = shared.withLockedValue { shared -> UInt64 in
            shared.batchGeneration += 1
            shared.outstandingBatch = shared.batchGeneration
            return shared.batchGeneration
        }
        // The broker drops a connection silent for 1.5 × keep-alive; keep a margin for the
        // caller's release to take effect.
        let keepAlive = Duration.seconds(max(5, configuration.keepAlive.components.seconds))
        let deadline = lastWrite + keepAlive * 1.5 - max(.seconds(1), keepAlive / 10)
        let batch = MQTTBatch(messages: messages, deadline: deadline) { [self] acknowledged in
            shared.withLockedValue { shared in
                // A late settlement of an older batch (after a reconnect) changes nothing.
                guard shared.outstandingBatch == generation else { return }
                shared.outstandingBatch = nil
                if !acknowledged { shared.dropConnection = true }
            }
            wake()
        }
        batchContinuation.yield(batch)
        return true
    }

    private func isReadable(_ socket: Int32) -> Bool {
        guard socket >= 0 else { return false }
        var fd = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        return poll(&fd, 1, 0) > 0
    }

    /// Sends pending SUBSCRIBE and UNSUBSCRIBE packets; returns a reason if the connection failed.
    private func runCommands() -> String? {
        let (filters, commands) = shared.withLockedValue { shared -> ([(String, MQTTQoS)], [Command]) in
            guard shared.state.isConnected else { return ([], []) }
            let commands = shared.commands
            shared.commands.removeAll()
            guard shared.needsSubscribing else { return ([], commands) }
            shared.needsSubscribing = false
            let pending = Set(shared.subscribeMids.values)
            let filters = shared.subscriptions
                .filter { !$0.value.confirmed && !pending.contains($0.key) }
                .map { ($0.key, $0.value.qos) }
            return (filters, commands)
        }
        for (filter, qos) in filters {
            var mid: Int32 = 0
            let rc = mosquitto_subscribe_v5(handle, &mid, filter, qos.rawValue, 0, nil)
            if rc == MOSQ_ERR_SUCCESS.code {
                shared.withLockedValue { $0.subscribeMids[mid] = filter }
            } else if rc == MOSQ_ERR_NO_CONN.code {
                shared.withLockedValue { $0.needsSubscribing = true }
                return "connection closed"
            } else {
                let waiters = shared.withLockedValue { shared -> [CheckedContinuation<MQTTQoS, any Error>] in
                    shared.subscriptions.removeValue(forKey: filter).map { Array($0.waiters.values) } ?? []
                }
                for waiter in waiters { waiter.resume(throwing: MQTTError.library(rc, "subscribe")) }
            }
        }
        for command in commands {
            switch command {
            case let .unsubscribe(filter, continuation):
                var mid: Int32 = 0
                let rc = mosquitto_unsubscribe_v5(handle, &mid, filter, nil)
                if rc == MOSQ_ERR_SUCCESS.code {
                    shared.withLockedValue { shared in
                        shared.subscriptions.removeValue(forKey: filter)
                        shared.unsubscribeWaiters[mid] = continuation
                    }
                } else {
                    continuation.resume(throwing: MQTTError.library(rc, "unsubscribe"))
                }
            }
        }
        return nil
    }

    private func disconnectGracefully() -> String {
        let deadline = ContinuousClock.now + configuration.shutdownGrace
        waitForOutstandingBatch(until: deadline)
        if shared.withLockedValue({ $0.outstandingBatch != nil || $0.dropConnection }) {
            // Not acknowledged in time (or released): close without flushing, so the broker redelivers it.
            return "stopped with an unacknowledged batch"
        }
        guard mosquitto_disconnect_v5(handle, 0, nil) == MOSQ_ERR_SUCCESS.code else { return "stopped" }
        // Flush everything queued (PUBACKs, publishes, then DISCONNECT); libmosquitto closes
        // the socket once DISCONNECT is written.
        while mosquitto_socket(handle) >= 0, mosquitto_want_write(handle), ContinuousClock.now < deadline {
            var fd = pollfd(fd: mosquitto_socket(handle), events: Int16(POLLOUT), revents: 0)
            _ = poll(&fd, 1, 100)
            if mosquitto_loop_write(handle, 1) != MOSQ_ERR_SUCCESS.code { break }
        }
        return "stopped"
    }

    private func waitForOutstandingBatch(until deadline: ContinuousClock.Instant?) {
        while shared.withLockedValue({ $0.outstandingBatch != nil }) {
            if let deadline, ContinuousClock.now >= deadline { return }
            if deadline == nil, shared.withLockedValue({ $0.stopRequested }) { return }
            var fd = pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)
            _ = poll(&fd, 1, 100)
            drainWake()
            expirePublishes()
        }
    }

    private func sleepInterruptibly(_ delay: Duration) {
        let deadline = ContinuousClock.now + delay
        while !shared.withLockedValue({ $0.stopRequested }) {
            let remaining = deadline - ContinuousClock.now
            if remaining <= .zero { return }
            var fd = pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)
            _ = poll(&fd, 1, Int32(clamping: min(1000, max(1, remaining.milliseconds))))
            drainWake()
            expirePublishes()
        }
    }

    /// Fails every waiter, ends every stream, frees the handle. Runs once, off every callback.
    private func finish() {
        setState(.stopped)
        // No send may start from now on; wait for those under way, which use the handle.
        shared.withLockedValue { $0.closing = true }
        while shared.withLockedValue({ $0.publishes.sendsInProgress > 0 }) { usleep(200) }
        let (publishWaiters, subscriptions, unsubscribeWaiters, commands, observers, exitWaiters) = shared.withLockedValue { shared in
            shared.finished = true
            defer {
                shared.subscriptions.removeAll()
                shared.unsubscribeWaiters.removeAll()
                shared.commands.removeAll()
                shared.observers.removeAll()
                shared.exitWaiters.removeAll()
            }
            return (shared.publishes.removeAll(), shared.subscriptions.values, shared.unsubscribeWaiters.values,
                    shared.commands, shared.observers.values, shared.exitWaiters)
        }
        for waiter in publishWaiters { waiter.resume(throwing: MQTTError(.shutdown, operation: "publish")) }
        for subscription in subscriptions {
            for waiter in subscription.waiters.values { waiter.resume(throwing: MQTTError(.shutdown, operation: "subscribe")) }
        }
        for waiter in unsubscribeWaiters { waiter.resume(throwing: MQTTError(.shutdown, operation: "unsubscribe")) }
        for case let .unsubscribe(_, waiter) in commands { waiter.resume(throwing: MQTTError(.shutdown, operation: "unsubscribe")) }
        for observer in observers { observer.finish() }
        batchContinuation.finish()
        mosquitto_destroy(handle)
        // The wake pipe stays open until deinit: a late wake() (an acknowledge or a stop after
        // the fact) must never write into a descriptor number the process has reused.
        for waiter in exitWaiters { waiter.resume() }
        // Balance the retain taken for libmosquitto's userdata, now that no callback can run.
        let unmanaged = unmanagedSelf
        unmanagedSelf = nil
        unmanaged?.release()
    }
}
