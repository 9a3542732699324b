import Foundation
import MorpheusCore
import Testing
import TestSupport

let now = RFC3339.parse("2026-11-28T12:00:00Z")!

func stringValue(_ value: JSONValue?) -> String? {
    if case .string(let text) = value { return text }
    return nil
}

func validate(_ document: JSONValue, modality: String? = nil, user: String? = nil) -> Validated<Correction> {
    validate(bytes: document.serialized(), modality: modality ?? stringValue(document["modality"]) ?? "text",
             user: user ?? stringValue(document["userId"]) ?? "alice")
}

func validate(bytes: [UInt8], modality: String = "text", user: String = "alice.w_1") -> Validated<Correction> {
    CorrectionValidator().validate(bytes, topicModality: modality, topicUserId: user, now: now)
}

func issues(_ outcome: Validated<Correction>) -> [ValidationIssue] {
    if case .invalid(let issues) = outcome { return issues }
    return []
}

@Suite("Correction validator")
struct CorrectionValidatorTests {
    @Test("valid corrections of every modality are accepted and typed")
    func acceptsValidSamples() throws {
        guard case .valid(let text) = validate(Samples.text) else { Issue.record("\(issues(validate(Samples.text)))"); return }
        #expect(text.feedbackId == "0b6a0f8e-3c1d-4e43-9b1e-2a9d7c4f5e61")
        #expect(text.correctionType == .sceneDescription)
        #expect(text.occurredAt == RFC3339.parse("2026-11-28T10:59:00.25Z"))
        #expect(text.corrected == .text("Fog lifts off the harbour as the first boats leave."))
        #expect(text.generation.experiment == Experiment(id: "exp-4", arm: "B"))
        #expect(text.target.sceneId == "s-2")
        #expect(text.editDurationMs == 5400)
        #expect(text.client == ClientInfo(app: "studio", version: "2.4.0"))

        guard case .valid(let image) = validate(Samples.image) else { Issue.record("\(issues(validate(Samples.image)))"); return }
        guard case .image(let corrected) = image.corrected else { Issue.record("not an image"); return }
        #expect(corrected.mask == [MaskRegion(x: 0.1, y: 0.2, width: 0.3, height: 0.4)])
        #expect(corrected.instruction == "Make the door blue")

        guard case .valid(let layout) = validate(Samples.layout) else { Issue.record("\(issues(validate(Samples.layout)))"); return }
        guard case .layout(let panels) = layout.original else { Issue.record("not a layout"); return }
        #expect(panels.panels.map(\.id) == ["a", "b"])
        #expect(layout.generation.prompt == nil)
    }

    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let sample: JSONValue
        let pointer: JSONPointer
        let value: JSONValue?
        let expected: [(String, RejectionCode)]
        var testDescription: String { name }
    }

    static let long65 = JSONValue.string(String(repeating: "x", count: 65))
    static let long129 = JSONValue.string(String(repeating: "x", count: 129))

    static let cases: [Case] = [
        Case(name: "schema missing", sample: Samples.text, pointer: "/schema", value: nil, expected: [("/schema", .missingField)]),
        Case(name: "schema unknown", sample: Samples.text, pointer: "/schema", value: .string("morpheus.correction/2"), expected: [("/schema", .unsupportedSchema)]),
        Case(name: "schema not a string", sample: Samples.text, pointer: "/schema", value: .number(1), expected: [("/schema", .invalidType)]),
        Case(name: "unknown root field", sample: Samples.text, pointer: "/rating", value: .number(5), expected: [("/rating", .unknownField)]),
        Case(name: "unknown target field", sample: Samples.text, pointer: "/target/pageId", value: .string("x"), expected: [("/target/pageId", .unknownField)]),
        Case(name: "unknown text field", sample: Samples.text, pointer: "/original/html", value: .string("x"), expected: [("/original/html", .unknownField)]),
        Case(name: "feedbackId missing", sample: Samples.text, pointer: "/feedbackId", value: nil, expected: [("/feedbackId", .missingField)]),
        Case(name: "feedbackId not a UUID", sample: Samples.text, pointer: "/feedbackId", value: .string("0b6a0f8e3c1d4e439b1e2a9d7c4f5e61"), expected: [("/feedbackId", .invalidValue)]),
        Case(name: "userId differs from topic", sample: Samples.text, pointer: "/userId", value: .string("mallory"), expected: [("/userId", .topicMismatch)]),
        Case(name: "userId with a slash", sample: Samples.text, pointer: "/userId", value: .string("a/b"), expected: [("/userId", .invalidValue)]),
        Case(name: "userId too long", sample: Samples.text, pointer: "/userId", value: long65, expected: [("/userId", .tooLong)]),
        Case(name: "modality differs from topic", sample: Samples.text, pointer: "/modality", value: .string("layout"), expected: [("/modality", .topicMismatch), ("/correctionType", .invalidValue), ("/original/text", .unknownField), ("/original/canvas", .missingField), ("/original/panels", .missingField), ("/corrected/text", .unknownField), ("/corrected/canvas", .missingField), ("/corrected/panels", .missingField)]),
        Case(name: "modality unknown", sample: Samples.text, pointer: "/modality", value: .string("audio"), expected: [("/modality", .invalidValue)]),
        Case(name: "correction type of another modality", sample: Samples.text, pointer: "/correctionType", value: .string("panel_order"), expected: [("/correctionType", .invalidValue)]),
        Case(name: "timestamp without offset", sample: Samples.text, pointer: "/occurredAt", value: .string("2026-11-28T11:59:00"), expected: [("/occurredAt", .invalidTimestamp)]),
        Case(name: "timestamp on 30 February", sample: Samples.text, pointer: "/occurredAt", value: .string("2026-02-30T11:59:00Z"), expected: [("/occurredAt", .invalidTimestamp)]),
        Case(name: "timestamp 6 minutes ahead", sample: Samples.text, pointer: "/occurredAt", value: .string("2026-11-28T12:06:00Z"), expected: [("/occurredAt", .invalidTimestamp)]),
        Case(name: "timestamp 31 days old", sample: Samples.text, pointer: "/occurredAt", value: .string("2026-10-28T11:59:00Z"), expected: [("/occurredAt", .invalidTimestamp)]),
        Case(name: "comicId missing", sample: Samples.text, pointer: "/target/comicId", value: nil, expected: [("/target/comicId", .missingField)]),
        Case(name: "panelId too long", sample: Samples.text, pointer: "/target/panelId", value: long129, expected: [("/target/panelId", .tooLong)]),
        Case(name: "target not an object", sample: Samples.text, pointer: "/target", value: .string("comic-1"), expected: [("/target", .invalidType)]),
        Case(name: "text prompt missing", sample: Samples.text, pointer: "/generation/prompt", value: nil, expected: [("/generation/prompt", .missingField)]),
        Case(name: "prompt too long", sample: Samples.text, pointer: "/generation/prompt", value: .string(String(repeating: "p", count: 32_769)), expected: [("/generation/prompt", .tooLong)]),
        Case(name: "experiment arm too long", sample: Samples.text, pointer: "/generation/experiment/arm", value: long65, expected: [("/generation/experiment/arm", .tooLong)]),
        Case(name: "model empty", sample: Samples.text, pointer: "/generation/model", value: .string(""), expected: [("/generation/model", .invalidValue)]),
        Case(name: "text empty", sample: Samples.text, pointer: "/corrected/text", value: .string(""), expected: [("/corrected/text", .invalidValue)]),
        Case(name: "text too long", sample: Samples.text, pointer: "/corrected/text", value: .string(String(repeating: "🎨", count: 32_769)), expected: [("/corrected/text", .tooLong)]),
        Case(name: "text not a string", sample: Samples.text, pointer: "/corrected/text", value: .number(3), expected: [("/corrected/text", .invalidType)]),
        Case(name: "text unchanged", sample: Samples.text, pointer: "/corrected/text", value: .string("A harbour. Boats."), expected: [("/corrected", .noChange)]),
        Case(name: "edit duration negative", sample: Samples.text, pointer: "/editDurationMs", value: .number(-1), expected: [("/editDurationMs", .invalidValue)]),
        Case(name: "edit duration fractional", sample: Samples.text, pointer: "/editDurationMs", value: .number(1.5), expected: [("/editDurationMs", .invalidType)]),
        Case(name: "client app missing", sample: Samples.text, pointer: "/client/app", value: nil, expected: [("/client/app", .missingField)]),
        Case(name: "image uri scheme", sample: Samples.image, pointer: "/original/uri", value: .string("http://insecure/x.png"), expected: [("/original/uri", .invalidValue)]),
        Case(name: "image uri too long", sample: Samples.image, pointer: "/original/uri", value: .string("https://" + String(repeating: "a", count: 2041)), expected: [("/original/uri", .tooLong)]),
        Case(name: "image sha256 short", sample: Samples.image, pointer: "/original/sha256", value: .string("abc"), expected: [("/original/sha256", .invalidValue)]),
        Case(name: "image params nested", sample: Samples.image, pointer: "/original/params/lora", value: .object(["a": .number(1)]), expected: [("/original/params/lora", .invalidType)]),
        Case(name: "image original with a prompt", sample: Samples.image, pointer: "/original/prompt", value: .string("x"), expected: [("/original/prompt", .unknownField)]),
        Case(name: "mask region outside [0,1]", sample: Samples.image, pointer: "/corrected/mask/regions/0/x", value: .number(1.5), expected: [("/corrected/mask/regions/0/x", .invalidValue)]),
        Case(name: "mask without regions", sample: Samples.image, pointer: "/corrected/mask/regions", value: .array([]), expected: [("/corrected/mask/regions", .invalidValue)]),
        Case(name: "instruction too long", sample: Samples.image, pointer: "/corrected/instruction", value: .string(String(repeating: "i", count: 2001)), expected: [("/corrected/instruction", .tooLong)]),
        Case(name: "image unchanged", sample: Samples.image, pointer: "/corrected", value: .object(["uri": .string("s3://renders/p-3.png")]), expected: [("/corrected", .noChange)]),
        Case(name: "layout panel ids repeat", sample: Samples.layout, pointer: "/corrected/panels/1/id", value: .string("a"), expected: [("/corrected/panels/1/id", .invalidValue)]),
        Case(name: "layout negative x", sample: Samples.layout, pointer: "/corrected/panels/0/x", value: .number(-1), expected: [("/corrected/panels/0/x", .invalidValue)]),
        Case(name: "layout without panels", sample: Samples.layout, pointer: "/corrected/panels", value: .array([]), expected: [("/corrected/panels", .invalidValue)]),
        Case(name: "layout canvas missing", sample: Samples.layout, pointer: "/corrected/canvas", value: nil, expected: [("/corrected/canvas", .missingField)]),
        Case(name: "layout unchanged", sample: Samples.layout, pointer: "/corrected", value: Samples.layout["original"], expected: [("/corrected", .noChange)]),
    ]

    @Test("each rule is enforced with its code and JSON pointer", arguments: cases)
    func rejects(_ testCase: Case) {
        // The topic stays the sample's own, whatever the payload now claims.
        let found = issues(validate(testCase.sample.setting(testCase.pointer, to: testCase.value),
                                    modality: stringValue(testCase.sample["modality"]), user: stringValue(testCase.sample["userId"])))
        #expect(found.map { "\($0.path) \($0.code.rawValue)" } == testCase.expected.map { "\($0.0) \($0.1.rawValue)" })
        #expect(found.allSatisfy { !$0.message.isEmpty })
    }

    @Test("all issues of a message are reported together")
    func reportsAllIssues() {
        let document = Samples.text
            .setting("/feedbackId", to: nil)
            .setting("/occurredAt", to: .string("yesterday"))
            .setting("/extra", to: .bool(true))
            .setting("/corrected/text", to: .string(""))
        let codes = Set(issues(validate(document)).map(\.code))
        #expect(codes == [.missingField, .invalidTimestamp, .unknownField, .invalidValue])
    }

    @Test("hostile payloads get a code, never a crash")
    func hostileInput() {
        #expect(issues(validate(bytes: [UInt8](repeating: 0x20, count: 256 * 1024 + 1))).map(\.code) == [.payloadTooLarge])
        #expect(issues(validate(bytes: Array("{not json".utf8))).map(\.code) == [.malformedJSON])
        #expect(issues(validate(bytes: Array("[1,2]".utf8))).map(\.code) == [.invalidType])
        #expect(issues(validate(bytes: Array((String(repeating: "[", count: 200_000)).utf8))).map(\.code) == [.nestingTooDeep])
        #expect(issues(validate(bytes: Array(#"{"schema":"morpheus.correction/1","schema":"x"}"#.utf8))).map(\.code) == [.duplicateField])
        #expect(issues(validate(bytes: Array(#"{"schema":"morpheus.correction/1","editDurationMs":1e999}"#.utf8))).map(\.code) == [.invalidValue])
        #expect(issues(validate(bytes: [0xFF, 0xFE, 0x7B, 0x7D])).map(\.code) == [.malformedJSON])
    }

    @Test("NUL and unpaired surrogates inside strings are refused where they are")
    func badStrings() {
        let text = Samples.text.serializedString.replacingOccurrences(of: "Fog lifts", with: #"Fog\u0000lifts"#)
        #expect(issues(validate(bytes: Array(text.utf8))).map { "\($0.path) \($0.code.rawValue)" } == ["/corrected/text invalid_value"])
        let surrogate = Samples.text.serializedString.replacingOccurrences(of: "studio", with: #"stu\udc00dio"#)
        #expect(issues(validate(bytes: Array(surrogate.utf8))).map { "\($0.path) \($0.code.rawValue)" } == ["/client/app invalid_value"])
    }
}

@Suite("RFC 3339 timestamps")
struct RFC3339Tests {
    @Test("parses offsets, fractions, lower-case separators and leap days")
    func parses() {
        #expect(RFC3339.parse("1970-01-01T00:00:00Z") == Date(timeIntervalSince1970: 0))
        #expect(RFC3339.parse("1970-01-01t01:00:00+01:00") == Date(timeIntervalSince1970: 0))
        #expect(RFC3339.parse("2024-02-29T12:00:00.5-00:30")?.timeIntervalSince1970 == 1_709_209_800.5)
        #expect(RFC3339.parse("2023-02-29T12:00:00Z") == nil)
        #expect(RFC3339.parse("2026-11-28 07:23:24Z") == nil)
        #expect(RFC3339.parse("2026-11-28T24:00:00Z") == nil)
        #expect(RFC3339.parse("2026-11-28T07:23:24.Z") == nil)
        #expect(RFC3339.parse("2026-11-28T07:23:24+0100") == nil)
    }

    @Test("formats UTC with rounded milliseconds and reads its own output back", arguments: [
        0.0, 0.123, 1_795_000_000.9996, -1.5, 951_782_400.0, 4_102_444_800.25,
    ])
    func formats(_ seconds: Double) {
        let text = RFC3339.format(Date(timeIntervalSince1970: seconds))
        let back = RFC3339.parse(text)!.timeIntervalSince1970
        #expect(abs(back - (seconds * 1000).rounded() / 1000) < 0.000_001)
        #expect(text.hasSuffix("Z") && text.count == 24)
    }

    @Test("known instants")
    func knownInstants() {
        #expect(RFC3339.format(Date(timeIntervalSince1970: 0.123)) == "1970-01-01T00:00:00.123Z")
        #expect(RFC3339.format(Date(timeIntervalSince1970: 951_782_400)) == "2000-02-29T00:00:00.000Z")
        #expect(RFC3339.format(Date(timeIntervalSince1970: -1.5)) == "1969-12-31T23:59:58.500Z")
        #expect(RFC3339.format(Date(timeIntervalSince1970: 1_795_000_000.9996)) == "2026-11-18T11:06:41.000Z")
    }
}

@Suite("Outcome validator")
struct OutcomeValidatorTests {
    func check(_ document: JSONValue, modality: String = "text", user: String = "alice.w_1") -> Validated<Outcome> {
        CorrectionValidator().validateOutcome(document.serialized(), topicModality: modality, topicUserId: user, now: now)
    }

    func codes(_ outcome: Validated<Outcome>) -> [String] {
        if case .invalid(let issues) = outcome { return issues.map { "\($0.path) \($0.code.rawValue)" } }
        return []
    }

    @Test("a valid outcome is typed; its hash ignores member order")
    func valid() throws {
        guard case .valid(let outcome) = check(Samples.outcome) else { Issue.record("\(codes(check(Samples.outcome)))"); return }
        #expect(outcome.outcome == .regenerated)
        #expect(outcome.generation.experiment?.arm == "A")
        guard case .object(let members) = Samples.outcome, case .valid(let reordered) = check(.object(members.reversed())) else { return }
        #expect(reordered.payloadHash == outcome.payloadHash)
    }

    @Test("outcomes follow the correction rules and codes")
    func rules() {
        #expect(codes(check(Samples.outcome.setting("/outcome", to: .string("liked")))) == ["/outcome invalid_value"])
        #expect(codes(check(Samples.outcome.setting("/generation/prompt", to: .string("x")))) == ["/generation/prompt unknown_field"])
        #expect(codes(check(Samples.outcome, user: "bob")) == ["/userId topic_mismatch"])
        #expect(codes(check(Samples.outcome.setting("/outcomeId", to: nil))) == ["/outcomeId missing_field"])
        #expect(codes(check(Samples.outcome.setting("/schema", to: .string("morpheus.correction/1")))) == ["/schema unsupported_schema"])
        #expect(codes(check(Samples.outcome.setting("/occurredAt", to: .string("2030-01-01T00:00:00Z")))) == ["/occurredAt invalid_timestamp"])
    }
}
