@testable import MQTT
import Testing

/// Matching PUBACKs to messages when packet ids wrap, results come early, or never come.
@Suite("Publish tracker")
struct PublishTrackerTests {
    typealias Tracker = PublishTracker<String>
    let later = ContinuousClock.now + .seconds(60)

    mutating func send(_ tracker: inout Tracker, mid: Int32, deadline: ContinuousClock.Instant? = nil) -> (Tracker.Ticket, String?) {
        tracker.beginSend()
        return tracker.register(mid: mid, deadline: deadline ?? later)
    }

    @Test("a PUBACK resumes the waiter of its message")
    mutating func acknowledged() {
        var tracker = Tracker()
        let (ticket, _) = send(&tracker, mid: 7)
        #expect(tracker.await(ticket, waiter: "w") == nil)
        #expect(tracker.acknowledge(mid: 7, reasonCode: 0) == "w")
        #expect(tracker.pendingCount == 0)
    }

    @Test("a PUBACK that arrives before the sender registered is kept for it")
    mutating func earlyResult() {
        var tracker = Tracker()
        tracker.beginSend()
        #expect(tracker.acknowledge(mid: 9, reasonCode: 0x87) == nil)
        let (ticket, _) = tracker.register(mid: 9, deadline: later)
        #expect(tracker.await(ticket, waiter: "w") == .acknowledged(0x87))
        #expect(tracker.pendingCount == 0)
    }

    @Test("a stray PUBACK with no send in progress is dropped, never handed to a later message with that id")
    mutating func strayResultDropped() {
        var tracker = Tracker()
        #expect(tracker.acknowledge(mid: 3, reasonCode: 0) == nil)
        let (ticket, _) = send(&tracker, mid: 3)
        #expect(tracker.await(ticket, waiter: "w") == nil, "still waiting for its own PUBACK")
        #expect(tracker.acknowledge(mid: 3, reasonCode: 0) == "w")
    }

    @Test("when the packet id wraps onto a message still waiting, the old message fails and the new one gets its own PUBACK")
    mutating func packetIdWrap() {
        var tracker = Tracker()
        let (old, _) = send(&tracker, mid: 1)
        #expect(tracker.await(old, waiter: "old") == nil)
        // 65,535 publishes later libmosquitto hands out id 1 again.
        for mid in Int32(2)...65_535 {
            let (ticket, _) = send(&tracker, mid: mid)
            tracker.forget(ticket)
            _ = tracker.acknowledge(mid: mid, reasonCode: 0)
        }
        let (new, superseded) = send(&tracker, mid: 1)
        #expect(superseded == "old", "the old waiter fails instead of hanging or taking the new PUBACK")
        #expect(tracker.await(new, waiter: "new") == nil)
        #expect(tracker.acknowledge(mid: 1, reasonCode: 0) == "new")
        #expect(tracker.await(old, waiter: "again") == .superseded)
        #expect(tracker.pendingCount == 0)
    }

    @Test("a message without PUBACK fails at its deadline, awaited or not")
    mutating func timeout() {
        var tracker = Tracker()
        let now = ContinuousClock.now
        let (awaited, _) = send(&tracker, mid: 5, deadline: now + .seconds(1))
        let (unawaited, _) = send(&tracker, mid: 6, deadline: now + .seconds(1))
        let (forgotten, _) = send(&tracker, mid: 8, deadline: now + .seconds(1))
        let (fresh, _) = send(&tracker, mid: 10, deadline: now + .seconds(30))
        tracker.forget(forgotten)
        #expect(tracker.await(awaited, waiter: "a") == nil)
        #expect(tracker.expire(now: now + .milliseconds(500)).isEmpty)
        #expect(tracker.expire(now: now + .seconds(2)) == ["a"])
        #expect(tracker.await(unawaited, waiter: "u") == .timedOut)
        #expect(tracker.await(fresh, waiter: "f") == nil)
        #expect(tracker.pendingCount == 1)
        #expect(tracker.removeAll() == ["f"])
    }

    @Test("a cancelled waiter is handed back once; the PUBACK then only clears the record")
    mutating func cancellation() {
        var tracker = Tracker()
        let (ticket, _) = send(&tracker, mid: 4)
        #expect(tracker.await(ticket, waiter: "w") == nil)
        #expect(tracker.cancelWait(ticket) == "w")
        #expect(tracker.cancelWait(ticket) == nil)
        #expect(tracker.acknowledge(mid: 4, reasonCode: 0) == nil)
        #expect(tracker.pendingCount == 0)
    }
}
