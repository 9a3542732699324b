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
