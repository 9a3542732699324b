/// Matches PUBACKs to the messages that await them.
///
/// MQTT packet ids are 16 bits and libmosquitto hands them out in turn, so after 65,535
/// publishes an id comes round again: keying waiters by id alone lets a stale entry answer for
/// a new message, or a lost acknowledgement hold its waiter for ever. Every message therefore
/// gets a ticket (never reused); the id only finds the current ticket. A message whose id is
/// taken by a newer one before its PUBACK came, or that waited past its deadline, fails (its
/// sender publishes it again), and no result is ever delivered to the wrong message.
///
/// libmosquitto may call `on_publish` before `mosquitto_publish` has returned the id. Such an
/// early result is kept until the sender registers; results nobody can claim any more (no
/// send in progress) are dropped.
///
/// A value type without locking: ``ClientCore`` keeps it under its lock.
struct PublishTracker<Waiter> {
    typealias Ticket = UInt64

    enum Outcome: Equatable {
        /// The broker's reason code (≥ 0x80 is a refusal).
        case acknowledged(Int32)
        /// The id was reused by a newer message before this one's PUBACK arrived.
        case superseded
        /// No PUBACK before the deadline.
        case timedOut
        /// The client shut down.
        case shutdown
    }

    fileprivate struct Record {
        var ticket: Ticket
        var deadline: ContinuousClock.Instant
        var waiter: Waiter?
        /// Nobody will ask for the result.
        var forgotten = false
        var outcome: Outcome?
    }

    private var byMid: [Int32: Record] = [:]
    private var byTicket: [Ticket: Int32] = [:]
    private var early: [Int32: Int32] = [:]
    private var nextTicket: Ticket = 1
    /// `(deadline, ticket)` in registration order; deadlines grow with it for a fixed timeout.
    private var deadlines: [(ContinuousClock.Instant, Ticket)] = []
    private var deadlineHead = 0
    /// Sends between `beginSend` and `register`.
    private(set) var sendsInProgress = 0

    init() {}

    var pendingCount: Int { byMid.count }

    mutating func beginSend() { sendsInProgress += 1 }

    /// A send that failed before libmosquitto assigned an id.
    mutating func abandonSend() {
        sendsInProgress -= 1
        if sendsInProgress == 0 { early.removeAll() }
    }

    /// Registers the message libmosquitto queued under `mid`; returns its ticket and the
    /// waiter of an older message that held the same id, which has failed (`superseded`).
    mutating func register(mid: Int32, deadline: ContinuousClock.Instant) -> (ticket: Ticket, superseded: Waiter?) {
        sendsInProgress -= 1
        let ticket = nextTicket
        nextTicket += 1
        var superseded: Waiter?
        if let old = byMid.removeValue(forKey: mid) {
            byTicket.removeValue(forKey: old.ticket)
            superseded = old.waiter
        }
        var record = Record(ticket: ticket, deadline: deadline)
        if let reason = early.removeValue(forKey: mid) { record.outcome = .acknowledged(reason) }
        if sendsInProgress == 0 { early.removeAll() }
        if record.outcome == nil {
            byMid[mid] = record
            byTicket[ticket] = mid
            deadlines.append((deadline, ticket))
        } else {
            // Already answered: keep the result until it is awaited or forgotten.
            byMid[mid] = record
            byTicket[ticket] = mid
        }
        return (ticket, superseded)
    }

    /// The result for `ticket` if it is known; otherwise stores `waiter` and returns `nil`.
    /// A ticket the tracker no longer knows failed earlier (superseded or timed out).
    mutating func await(_ ticket: Ticket, waiter: Waiter) -> Outcome? {
        guard let mid = byTicket[ticket], var record = byMid[mid], record.ticket == ticket else { return .superseded }
        if let outcome = record.outcome {
            remove(mid)
            return outcome
        }
        record.waiter = waiter
        byMid[mid] = record
        return nil
    }

    /// The caller stopped waiting (cancelled); returns its waiter.
    mutating func cancelWait(_ ticket: Ticket) -> Waiter? {
        guard let mid = byTicket[ticket], var record = byMid[mid], record.ticket == ticket else { return nil }
        let waiter = record.waiter
        record.waiter = nil
        record.forgotten = true
        byMid[mid] = record
        return waiter
    }

    /// Nobody will await `ticket`: forget it once its PUBACK came.
    mutating func forget(_ ticket: Ticket) {
        guard let mid = byTicket[ticket], var record = byMid[mid], record.ticket == ticket else { return }
        if record.outcome != nil {
            remove(mid)
        } else {
            record.forgotten = true
            byMid[mid] = record
        }
    }

    /// A PUBACK (or its MQTT 5 refusal) for `mid`; returns the waiter to resume, if any.
    mutating func acknowledge(mid: Int32, reasonCode: Int32) -> Waiter? {
        guard var record = byMid[mid] else {
            // Before its sender registered (or for a message nobody tracks any more).
            if sendsInProgress > 0 { early[mid] = reasonCode }
            return nil
        }
        if record.outcome != nil {
            // A second PUBACK for an id whose result is still unclaimed: the id was reused
            // while the first result waited. Keep it for the next registration.
            if sendsInProgress > 0 { early[mid] = reasonCode }
            return nil
        }
        if let waiter = record.waiter {
            remove(mid)
            return waiter
        }
        if record.forgotten {
            remove(mid)
            return nil
        }
        record.outcome = .acknowledged(reasonCode)
        byMid[mid] = record
        return nil
    }

    /// Fails every message whose deadline passed; returns their waiters.
    mutating func expire(now: ContinuousClock.Instant) -> [Waiter] {
        var expired: [Waiter] = []
        while deadlineHead < deadlines.count, deadlines[deadlineHead].0 <= now {
            let ticket = deadlines[deadlineHead].1
            deadlineHead += 1
            guard let mid = byTicket[ticket], var record = byMid[mid], record.ticket == ticket, record.outcome == nil else { continue }
            if let waiter = record.waiter {
                expired.append(waiter)
                remove(mid)
            } else if record.forgotten {
                remove(mid)
            } else {
                record.outcome = .timedOut
                byMid[mid] = record
            }
        }
        if deadlineHead > 1024, deadlineHead * 2 > deadlines.count {
            deadlines.removeFirst(deadlineHead)
            deadlineHead = 0
        }
        return expired
    }

    /// Fails everything (shutdown); returns every waiter.
    mutating func removeAll() -> [Waiter] {
        let waiters = byMid.values.compactMap(\.waiter)
        byMid.removeAll()
        byTicket.removeAll()
        early.removeAll()
        deadlines.removeAll()
        deadlineHead = 0
        return waiters
    }

    private mutating func remove(_ mid: Int32) {
        if let record = byMid.removeValue(forKey: mid) { byTicket.removeValue(forKey: record.ticket) }
    }
}

extension PublishTracker: Sendable where Waiter: Sendable {}
extension PublishTracker.Outcome: Sendable {}
extension PublishTracker.Record: Sendable where Waiter: Sendable {}
