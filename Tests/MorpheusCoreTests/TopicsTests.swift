import MorpheusCore
import Testing

@Suite("Contract topics and reply routing")
struct TopicsTests {
    let topics = ContractTopics(prefix: "morpheus/v1")

    @Test("incoming topics are routed by their levels")
    func routes() {
        #expect(topics.route("morpheus/v1/corrections/text/alice") == .correction(modality: "text", userId: "alice"))
        #expect(topics.route("morpheus/v1/outcomes/image/bob") == .outcome(modality: "image", userId: "bob"))
        #expect(topics.route("morpheus/v1/privacy/carol") == .privacy(userId: "carol"))
        #expect(topics.route("morpheus/v1/corrections/text") == nil)
        #expect(topics.route("morpheus/v1/corrections/text/alice/extra") == nil)
        #expect(topics.route("other/v1/corrections/text/alice") == nil)
        #expect(topics.route("morpheus/v1/status/x") == nil)
    }

    @Test("shared filters join one group")
    func filters() {
        #expect(topics.sharedFilters(group: "g") == ["$share/g/morpheus/v1/corrections/+/+", "$share/g/morpheus/v1/outcomes/+/+", "$share/g/morpheus/v1/privacy/+"])
    }

    @Test("a response topic is used only inside the user's own reply space", arguments: [
        ("morpheus/v1/replies/alice/req-1", "morpheus/v1/replies/alice/req-1"),
        ("morpheus/v1/replies/alice/a/b", "morpheus/v1/replies/alice/a/b"),
        (nil, "morpheus/v1/replies/alice"),
        ("morpheus/v1/replies/alice", "morpheus/v1/replies/alice"),
        ("morpheus/v1/replies/alice/", "morpheus/v1/replies/alice"),
        ("morpheus/v1/replies/bob/req-1", "morpheus/v1/replies/alice"),
        ("morpheus/v1/replies/alicex/req", "morpheus/v1/replies/alice"),
        ("morpheus/v1/training/text", "morpheus/v1/replies/alice"),
        ("morpheus/v1/replies/alice/+", "morpheus/v1/replies/alice"),
        ("morpheus/v1/replies/alice/../bob", "morpheus/v1/replies/alice"),
        // Bytes, not canonical equivalence: a Kelvin sign is not a K, a combining mark does
        // not hide a wildcard, a precomposed letter is not its decomposed form.
        ("morpheus/v1/replies/\u{212A}im/x", "morpheus/v1/replies/Kim"),
        ("morpheus/v1/replies/Kim/+\u{301}", "morpheus/v1/replies/Kim"),
        ("morpheus/v1/replies/Kim/#\u{308}", "morpheus/v1/replies/Kim"),
        ("morpheus/v1/replies/Kim/ok", "morpheus/v1/replies/Kim/ok"),
    ] as [(String?, String)])
    func replyRouting(_ responseTopic: String?, _ expected: String) {
        let user = expected.contains("/Kim") ? "Kim" : "alice"
        #expect(Array(topics.replyTopic(for: user, responseTopic: responseTopic).utf8) == Array(expected.utf8))
    }
}

@Suite("Dead letters, message identity, latency window")
struct SmallPartsTests {
    @Test("a dead letter carries the digest and at most 4 KiB of the payload")
    func deadLetter() {
        let payload = [UInt8](repeating: 0x41, count: 5000)
        let letter = DeadLetter(topic: "t", reason: "no user", receivedAt: RFC3339.parse("2026-11-28T00:00:00Z")!, payload: payload)
        #expect(letter.payloadPrefix.count == 4096)
        #expect(letter.payloadSha256 == sha256Hex(payload))
        #expect(letter.json["payloadPrefixBase64"] == .string(String(repeating: "QUFB", count: 1365) + "QQ=="))
        #expect(letter.json["schema"] == .string("morpheus.deadletter/1"))
    }

    @Test("the id of an otherwise invalid message is still found; a missing or malformed one is not")
    func identity() {
        #expect(MessageIdentity.id(in: Array(#"{"feedbackId":"0B6A0F8E-3C1D-4E43-9B1E-2A9D7C4F5E61","x":1}"#.utf8), field: "feedbackId") == "0b6a0f8e-3c1d-4e43-9b1e-2a9d7c4f5e61")
        #expect(MessageIdentity.id(in: Array(#"{"feedbackId":"nope"}"#.utf8), field: "feedbackId") == nil)
        #expect(MessageIdentity.id(in: Array("{broken".utf8), field: "feedbackId") == nil)
        // Malformed or oversized, but the id is there to be read: answerable.
        let id = "6f1c9a52-8d7e-4b1a-9c3f-0e5d2b7a4c18"
        #expect(MessageIdentity.id(in: Array(#"{"feedbackId" : "\#(id)", "text": "unterminated"#.utf8), field: "feedbackId") == id)
        let big = Array(#"{"feedbackId":"\#(id)","pad":""#.utf8) + [UInt8](repeating: 0x61, count: 300_000) + Array(#""}"#.utf8)
        #expect(MessageIdentity.id(in: big, field: "feedbackId") == id)
        // A parsed document is authoritative: an id elsewhere does not count.
        #expect(MessageIdentity.id(in: Array(#"{"other":{"feedbackId":"\#(id)"}}"#.utf8), field: "feedbackId") == nil)
    }

    @Test("percentiles by nearest rank over the most recent samples")
    func percentiles() {
        var window = LatencyWindow(capacity: 100)
        #expect(window.percentile(0.5) == 0)
        for value in 1...100 { window.record(milliseconds: Double(value)) }
        #expect(window.percentile(0.5) == 50)
        #expect(window.percentile(0.99) == 99)
        for _ in 1...100 { window.record(milliseconds: 7) }
        #expect(window.percentile(0.99) == 7)
    }
}
