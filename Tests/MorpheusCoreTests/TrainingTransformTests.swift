import Foundation
@testable import MorpheusCore
import Testing
import TestSupport

@Suite("Training-data transforms")
struct TrainingTransformTests {
    let transform = TrainingTransform(instructions: SystemInstructions(byType: [.sceneDescription: "You describe comic scenes vividly."]))
    let created = RFC3339.parse("2026-11-28T12:00:01Z")!

    func correction(_ sample: JSONValue) throws -> Correction {
        guard case .valid(let correction) = validate(sample) else { throw ValidationFailed(issues: issues(validate(sample))) }
        return correction
    }

    struct ValidationFailed: Error { let issues: [ValidationIssue] }

    @Test("text becomes a chat SFT example and a preference pair: corrected chosen, original rejected")
    func text() throws {
        let example = transform.example(for: try correction(Samples.text), quality: 0.8734, contributor: "u_abc", createdAt: created)
        let system = #"{"role":"system","content":"You describe comic scenes vividly."}"#
        let user = #"{"role":"user","content":"Describe the harbour at dawn."}"#
        let fixed = #"{"role":"assistant","content":"Fog lifts off the harbour as the first boats leave."}"#
        let before = #"{"role":"assistant","content":"A harbour. Boats."}"#
        #expect(example.serializedString == """
        {"schema":"morpheus.training-example/1","exampleId":"\(TrainingTransform.exampleId(for: "0b6a0f8e-3c1d-4e43-9b1e-2a9d7c4f5e61"))",\
        "feedbackId":"0b6a0f8e-3c1d-4e43-9b1e-2a9d7c4f5e61","modality":"text","correctionType":"scene_description",\
        "quality":0.873,"contributor":"u_abc","generation":{"model":"storyteller","modelVersion":"3.1","experiment":{"id":"exp-4","arm":"B"}},\
        "sft":{"messages":[\(system),\(user),\(fixed)]},\
        "preference":{"prompt":[\(system),\(user)],"chosen":[\(fixed)],"rejected":[\(before)]},\
        "createdAt":"2026-11-28T12:00:01.000Z"}
        """)
    }

    @Test("an image inpaint becomes an edit triple without a preference pair (same image uri)")
    func imageEdit() throws {
        let example = transform.example(for: try correction(Samples.image), quality: 1, contributor: "u_b", createdAt: created)
        #expect(example["sft"]?.serializedString == #"{"prompt":"A red door","source_image":"s3://renders/p-3.png","instruction":"Make the door blue","mask":{"regions":[{"x":0.1,"y":0.2,"width":0.3,"height":0.4}]}}"#)
        #expect(example["preference"] == nil)
    }

    @Test("a corrected image of its own adds the target image and an image preference pair")
    func imageChoice() throws {
        let sample = Samples.image
            .setting("/correctionType", to: .string("image_choice"))
            .setting("/corrected", to: .object(["uri": .string("asset://picked/7.png"), "prompt": .string("A blue door at night")]))
        let example = transform.example(for: try correction(sample), quality: 1, contributor: "u_b", createdAt: created)
        #expect(example["sft"]?.serializedString == #"{"prompt":"A blue door at night","source_image":"s3://renders/p-3.png","target_image":"asset://picked/7.png"}"#)
        #expect(example["preference"]?.serializedString == #"{"caption":"A blue door at night","chosen":"asset://picked/7.png","rejected":"s3://renders/p-3.png"}"#)
    }

    @Test("a layout becomes a preference pair of the two layouts with their context")
    func layout() throws {
        let example = transform.example(for: try correction(Samples.layout), quality: 1, contributor: "u_c", createdAt: created)
        #expect(example["sft"] == nil)
        let preference = try #require(example["preference"])
        #expect(preference["context"]?.serializedString == #"{"correctionType":"panel_layout","comicId":"comic-2"}"#)
        #expect(preference["chosen"]?["panels"] == Samples.layout["corrected"]?["panels"])
        #expect(preference["rejected"]?["panels"] == Samples.layout["original"]?["panels"])
        #expect(preference["chosen"]?["canvas"]?.serializedString == #"{"width":800,"height":1200}"#)
    }

    @Test("the same correction always gives the same bytes; ids are stable UUIDs")
    func deterministic() throws {
        let input = try correction(Samples.text)
        let first = transform.example(for: input, quality: 0.5, contributor: "u", createdAt: created).serialized()
        let second = transform.example(for: input, quality: 0.5, contributor: "u", createdAt: created).serialized()
        #expect(first == second)
        let id = TrainingTransform.exampleId(for: input.feedbackId)
        #expect(CorrectionValidator.isUUID(id))
        #expect(id != TrainingTransform.exampleId(for: "6f1c9a52-8d7e-4b1a-9c3f-0e5d2b7a4c18"))
    }

    @Test("pseudonyms are stable per user, differ between users and secrets, and hide the id")
    func pseudonyms() {
        let a = Pseudonymizer(secret: Array("0123456789abcdef0123".utf8))
        let b = Pseudonymizer(secret: Array("another-secret-of-20".utf8))
        #expect(a.pseudonym(for: "alice") == a.pseudonym(for: "alice"))
        #expect(a.pseudonym(for: "alice") != a.pseudonym(for: "bob"))
        #expect(a.pseudonym(for: "alice") != b.pseudonym(for: "alice"))
        #expect(a.pseudonym(for: "alice").hasPrefix("u_"))
        #expect(!a.pseudonym(for: "alice").contains("alice"))
        #expect(sha256Hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }
}

@Suite("Receipts")
struct ReceiptTests {
    @Test("receipts carry the contract fields; rejected ones list errors and no commit time")
    func encoding() {
        let received = RFC3339.parse("2026-11-28T12:00:00.123Z")!
        let accepted = Receipt(feedbackId: "f", status: .accepted, receivedAt: received, committedAt: received.addingTimeInterval(0.004))
        #expect(accepted.json.serializedString == #"{"schema":"morpheus.receipt/1","feedbackId":"f","status":"accepted","flags":[],"errors":[],"receivedAt":"2026-11-28T12:00:00.123Z","committedAt":"2026-11-28T12:00:00.127Z"}"#)
        let rejected = Receipt(feedbackId: "f", status: .rejected, errors: [ValidationIssue("/corrected/text", .tooLong, "too long")], receivedAt: received)
        #expect(rejected.json.serializedString == #"{"schema":"morpheus.receipt/1","feedbackId":"f","status":"rejected","flags":[],"errors":[{"path":"/corrected/text","code":"too_long","message":"too long"}],"receivedAt":"2026-11-28T12:00:00.123Z"}"#)
        let duplicate = Receipt(feedbackId: "g", status: .duplicate, receivedAt: received, committedAt: received, originalStatus: .accepted, originalFeedbackId: "f")
        #expect(duplicate.json["originalStatus"] == .string("accepted"))
        #expect(duplicate.json["originalFeedbackId"] == .string("f"))
    }
}

@Suite("Receipt bytes")
struct ReceiptBytesTests {
    @Test("the direct writer gives the bytes of the tree's serialization")
    func directWriter() {
        let at = Date(timeIntervalSince1970: 1_795_000_000.123)
        var flagged = Receipt(feedbackId: "a\"b", status: .flagged, flags: ["pii", "burst"], receivedAt: at, committedAt: at)
        flagged.reviewReasons = ["new_contributor"]
        let receipts = [
            Receipt(feedbackId: "f", status: .accepted, receivedAt: at, committedAt: at),
            flagged,
            Receipt(feedbackId: "g", status: .duplicate, receivedAt: at, committedAt: at, originalStatus: .accepted, originalFeedbackId: "f"),
            Receipt(feedbackId: nil, status: .rejected, errors: [ValidationIssue("/x", .missingField, "x")], receivedAt: at),
            Receipt(feedbackId: "h", status: .rejected, receivedAt: at),
        ]
        for receipt in receipts {
            #expect(receipt.encoded() == receipt.json.serialized(), "\(receipt.json.serializedString)")
        }
    }
}

@Suite("Content identity")
struct ContentIdentityTests {
    func correction(_ sample: JSONValue) -> Correction? {
        if case .valid(let correction) = validate(sample) { return correction }
        return nil
    }

    /// The hashes are stored (`payload_hash`, `content_hash`): the fast writer must produce the
    /// very bytes of the documents' canonical serialization, or idempotency breaks silently.
    @Test("the hashes are the SHA-256 of the documents' canonical serialization", arguments: [
        Samples.text, Samples.image, Samples.layout,
        Samples.text.setting("/client", to: nil).setting("/editDurationMs", to: nil),
        Samples.text.setting("/corrected/text", to: .string("Quote \" back\\slash\ttab \u{1} é 😀")),
    ])
    func hashDefinition(_ sample: JSONValue) throws {
        let c = try #require(correction(sample))
        #expect(c.hashes.payload == sha256Hex(c.payloadDocument.canonicalized().serialized()))
        #expect(c.hashes.content == sha256Hex(c.contentDocument.canonicalized().serialized()))
        #expect(c.payloadHash == c.hashes.payload && c.contentHash == c.hashes.content)
    }

    @Test("member order does not change the hashes; content and id do")
    func hashes() throws {
        let base = try #require(correction(Samples.text))
        guard case .object(let members) = Samples.text else { return }
        let reordered = try #require(correction(.object(members.reversed())))
        #expect(reordered.payloadHash == base.payloadHash)
        #expect(reordered.contentHash == base.contentHash)

        let newId = try #require(correction(Samples.text.setting("/feedbackId", to: .string("11111111-2222-4333-8444-555555555555"))))
        #expect(newId.payloadHash != base.payloadHash)
        #expect(newId.contentHash == base.contentHash)

        let otherText = try #require(correction(Samples.text.setting("/corrected/text", to: .string("Something else."))))
        #expect(otherText.payloadHash != base.payloadHash)
        #expect(otherText.contentHash != base.contentHash)
    }

    @Test("canonical form sorts members at every level")
    func canonical() {
        let value = JSONValue.object([("b", .object([("z", .number(1)), ("a", .number(2))])), ("a", .array([.object([("y", .null), ("x", .null)])]))])
        #expect(value.canonicalized().serializedString == #"{"a":[{"x":null,"y":null}],"b":{"a":2,"z":1}}"#)
        #expect(value.canonicallySerialized() == value.canonicalized().serialized())
        // Byte order, not locale order: upper case sorts before lower case, é after z.
        let keys = JSONValue.object([("é", .null), ("b", .null), ("B", .null), ("ab", .null), ("a", .null)])
        #expect(String(decoding: keys.canonicallySerialized(), as: UTF8.self) == #"{"B":null,"a":null,"ab":null,"b":null,"é":null}"#)
    }
}

@Suite("Quality gate and review items")
struct QualityGateTests {
    @Test("a clean correction passes; added rules combine flags and take the lowest quality")
    func combines() throws {
        guard case .valid(let correction) = validate(Samples.text) else { Issue.record("invalid sample"); return }
        #expect(QualityGate().evaluate(correction, history: InMemoryHistory()).flags == [])
        let gate = QualityGate(rules: [
            { _ in QualityVerdict(flags: ["pii"], quality: 0.4) },
            { _ in nil },
            { _ in QualityVerdict(flags: ["pii", "url_spam"], quality: 0.7) },
        ])
        let verdict = gate.evaluate(correction, history: InMemoryHistory())
        #expect(verdict.flags == ["pii", "url_spam"])
        #expect(verdict.quality <= 0.4)
    }

    @Test("a review item carries no free text of the user")
    func reviewItem() throws {
        guard case .valid(let correction) = validate(Samples.text) else { Issue.record("invalid sample"); return }
        let item = ReviewItem.json(for: correction, verdict: QualityVerdict(flags: ["pii"], quality: 0.25), flaggedAt: RFC3339.parse("2026-11-28T12:00:00Z")!)
        #expect(item.serializedString == #"{"schema":"morpheus.review-item/1","feedbackId":"0b6a0f8e-3c1d-4e43-9b1e-2a9d7c4f5e61","modality":"text","correctionType":"scene_description","flags":["pii"],"quality":0.25,"flaggedAt":"2026-11-28T12:00:00.000Z"}"#)
        #expect(!item.serializedString.contains("harbour"))
    }
}
