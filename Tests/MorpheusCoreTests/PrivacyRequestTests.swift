import Foundation
import MorpheusCore
import Testing
import TestSupport

@Suite("Privacy requests")
struct PrivacyRequestTests {
    static let id = "5e0d6c1a-7b2f-4f3e-9a8d-1c2b3a4d5e6f"

    func check(_ members: [(String, JSONValue)], topicUser: String = "alice.w_1") -> Validated<PrivacyRequest> {
        CorrectionValidator().validatePrivacy(JSONValue.object(members.map { ($0.0, $0.1) }).serialized(), topicUserId: topicUser)
    }

    var valid: [(String, JSONValue)] {
        [("schema", .string("morpheus.privacy/1")), ("requestId", .string(Self.id.uppercased())), ("userId", .string("alice.w_1")), ("action", .string("opt_out"))]
    }

    func codes(_ result: Validated<PrivacyRequest>) -> [String] {
        if case .invalid(let issues) = result { return issues.map(\.code.rawValue) }
        return []
    }

    @Test("a valid request: id lower-cased, every action including status")
    func validRequests() {
        for action in PrivacyRequest.Action.allCases {
            guard case .valid(let request) = check(valid.map { $0.0 == "action" ? ($0.0, .string(action.rawValue)) : $0 }) else {
                Issue.record("\(action) refused")
                continue
            }
            #expect(request.requestId == Self.id && request.action == action && request.payloadHash.count == 64)
        }
    }

    @Test("another user than the topic's is topic_mismatch; unknown actions, fields and schemas have their codes")
    func invalidRequests() {
        #expect(codes(check(valid, topicUser: "bob")) == ["topic_mismatch"])
        #expect(codes(check(valid.map { $0.0 == "action" ? ($0.0, .string("forget_me")) : $0 })) == ["invalid_value"])
        #expect(codes(check(valid + [("reason", .string("x"))])) == ["unknown_field"])
        #expect(codes(check(valid.filter { $0.0 != "requestId" })) == ["missing_field"])
        #expect(codes(check(valid.map { $0.0 == "schema" ? ($0.0, .string("morpheus.privacy/2")) : $0 })) == ["unsupported_schema"])
    }

    @Test("a privacy receipt carries counts and settings")
    func receipt() {
        var receipt = Receipt(feedbackId: Self.id, status: .applied, receivedAt: Date(timeIntervalSince1970: 0))
        receipt.counts = ["settings": 1, "storedCorrections": 4]
        receipt.settings = PrivacySettings(optedOut: true).json
        let json = receipt.json.serializedString
        #expect(json.contains("\"status\":\"applied\"") && json.contains("\"counts\":{\"settings\":1,\"storedCorrections\":4}"))
        #expect(json.contains("\"optedOut\":true"))
    }
}

@Suite("Personal data scrubbing")
struct ScrubbingTests {
    @Test("each kind of finding becomes its placeholder; the story around it stays", arguments: [
        ("MARA: Mail me at jonas.weber@gmx.de before dawn.", "MARA: Mail me at [email] before dawn."),
        ("Call 312-789-9973 after the show.", "Call [phone] after the show."),
        ("Put 972 Oak Avenue, Columbus on the mailbox.", "Put [address], Columbus on the mailbox."),
        ("Card 4111 1111 1111 1111 on the table.", "Card [card] on the table."),
        ("Wire it to DE89 3704 0044 0532 0130 00 tonight.", "Wire it to [iban] tonight."),
        ("SSN 123-45-6789 on the file.", "SSN [id] on the file."),
        ("The year 1987 and flight 447 stay.", "The year 1987 and flight 447 stay."),
    ])
    func scrubs(_ example: (String, String)) {
        #expect(PersonalDataScrubber.scrub(example.0) == example.1)
    }

    @Test("a disguise the span patterns miss but the detector sees leaves nothing: the text is redacted")
    func redacts() {
        let scrubbed = PersonalDataScrubber.scrub("Write to jonas [at] gmx [dot] de, or j o n a s at g m x dot d e")
        #expect(!scrubbed.contains("jonas") && !scrubbed.contains("gmx"))
    }
}
