import Foundation

/// The promises the strict parser and the validators make about *any* input, checked on one
/// payload: what the fuzz target (`Tests/Fuzz`) asserts millions of times and the test suite
/// asserts on the committed seed corpus. Pure; a violation is a bug in this module.
public enum ValidationInvariants {
    /// The instant the checks validate against (seed timestamps lie near it).
    public static let referenceNow = Date(timeIntervalSince1970: 1_796_126_400)  // 2026-12-01T12:00:00Z

    /// Runs every entry point over `payload`; returns the broken promises (empty when none).
    public static func violations(_ payload: [UInt8], now: Date = referenceNow) -> [String] {
        var broken: [String] = []
        func expect(_ condition: @autoclosure () -> Bool, _ promise: String) { if !condition() { broken.append(promise) } }

        // The parser: what it accepts, it writes back in a form it reads as the same value.
        var parser = JSONParser(bytes: payload)
        let document = try? parser.parse()
        if let document {
            var again = JSONParser(bytes: document.serialized())
            expect((try? again.parse()) == document, "a parsed document round-trips through the writer")
            var canonical = JSONParser(bytes: document.canonicallySerialized())
            expect((try? canonical.parse()) != nil, "the canonical form parses")
        }
        // The topic as the sender's own claims would make it, so more than topic_mismatch is reached.
        func claimed(_ field: String, _ fallback: String) -> String {
            if case .string(let text)? = document?[field], !text.isEmpty, text.utf8.count <= 64 { return text }
            return fallback
        }
        let modality = claimed("modality", "text"), user = claimed("userId", "fuzz-user")
        let validator = CorrectionValidator()

        switch validator.validate(payload, topicModality: modality, topicUserId: user, now: now) {
        case .valid(let correction):
            expect(payload.count <= CorrectionValidator.maxPayloadBytes, "nothing larger than the limit is valid")
            expect(document != nil, "a valid correction is a parsed document")
            expect(CorrectionValidator.isUUID(correction.feedbackId) && correction.feedbackId == correction.feedbackId.lowercased(),
                   "a valid feedbackId is a lower-case UUID")
            expect(correction.userId == user && correction.modality.rawValue == modality, "a valid correction matches its topic")
            expect(correction.payloadHash.utf8.count == 64 && correction.contentHash.utf8.count == 64, "hashes are SHA-256 hex")
            if case .valid(let second) = validator.validate(payload, topicModality: modality, topicUserId: user, now: now) {
                expect(second.payloadHash == correction.payloadHash && second.contentHash == correction.contentHash, "validation is deterministic")
            } else {
                broken.append("validation is deterministic")
            }
        case .invalid(let issues):
            expect(!issues.isEmpty, "an invalid correction names at least one issue")
            let receipt = Receipt(feedbackId: MessageIdentity.id(in: payload, field: "feedbackId"), status: .rejected, errors: issues, receivedAt: now)
            var reread = JSONParser(bytes: receipt.encoded())
            expect((try? reread.parse()) != nil, "a rejection receipt is valid JSON")
        }
        switch validator.validateOutcome(payload, topicModality: modality, topicUserId: user, now: now) {
        case .valid(let outcome):
            expect(CorrectionValidator.isUUID(outcome.outcomeId), "a valid outcomeId is a UUID")
        case .invalid(let issues):
            expect(!issues.isEmpty, "an invalid outcome names at least one issue")
        }
        switch validator.validatePrivacy(payload, topicUserId: user) {
        case .valid(let request):
            expect(CorrectionValidator.isUUID(request.requestId) && request.requestId == request.requestId.lowercased(),
                   "a valid requestId is a lower-case UUID")
            expect(request.userId == user, "a valid request is the topic user's")
        case .invalid(let issues):
            expect(!issues.isEmpty, "an invalid privacy request names at least one issue")
        }
        for field in ["feedbackId", "requestId", "outcomeId"] {
            if let id = MessageIdentity.id(in: payload, field: field) {
                expect(CorrectionValidator.isUUID(id) && id == id.lowercased(), "a readable \(field) is a lower-case UUID")
            }
        }
        return broken
    }
}
