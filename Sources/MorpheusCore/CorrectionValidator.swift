import Foundation

/// The result of checking one message: the typed value, or every issue found.
public enum Validated<Value: Sendable>: Sendable {
    case valid(Value)
    case invalid([ValidationIssue])
}

/// Hand-written checks of `morpheus.correction/1` against every rule of contract v1.
///
/// Order of work, cheapest and safest first: size → strict parse (bounded nesting, UTF-8,
/// finite numbers, no duplicate members) → schema → every field. All field issues are reported,
/// not just the first.
public struct CorrectionValidator: Sendable {
    public static let maxPayloadBytes = 256 * 1024
    public static let userIdPattern = "1–64 characters of A–Z, a–z, 0–9, '.', '_' and '-'"

    /// How far in the future `occurredAt` may lie (editor clocks drift).
    public var maxClockSkew: TimeInterval = 5 * 60
    /// How old a correction may be.
    public var maxAge: TimeInterval = 30 * 24 * 3600

    public init() {}

    /// Checks `payload`, which arrived on `corrections/{topicModality}/{topicUserId}`.
    public func validate(_ payload: [UInt8], topicModality: String, topicUserId: String, now: Date) -> Validated<Correction> {
        let root: Fields, log: IssueLog
        switch Self.document(payload, schema: Correction.schemaName, fields: [
            "schema", "feedbackId", "userId", "modality", "correctionType", "occurredAt", "target",
            "generation", "original", "corrected", "editDurationMs", "client",
        ]) {
        case .stopped(let issues): return .invalid(issues)
        case .ready(let fields, let issues): (root, log) = (fields, issues)
        }
        let feedbackId = Self.uuid(root, "feedbackId")
        let (userId, modality) = Self.sender(root, topicModality: topicModality, topicUserId: topicUserId)
        let correctionType = root.choice("correctionType", CorrectionType.self, allowed: modality?.correctionTypes ?? CorrectionType.allCases)
        let occurredAt = occurred(root, now: now)
        let target = Self.target(root)
        let generation = Self.generation(root, promptRequired: modality.map { $0 != .layout } ?? false)
        let editDurationMs = root.integer("editDurationMs", required: false, in: 0...86_400_000)
        let client = Self.client(root)

        var original: CorrectionContent?
        var corrected: CorrectionContent?
        if let modality {
            original = root.object("original").flatMap { Self.content($0, modality: modality, correctedSide: false) }
            corrected = root.object("corrected").flatMap { Self.content($0, modality: modality, correctedSide: true) }
            if let original, let corrected, let reason = Self.unchanged(original, corrected) {
                log.add("/corrected", .noChange, reason)
            }
        } else {
            // Without a modality the sides cannot be judged, but they must still be objects.
            _ = root.object("original")
            _ = root.object("corrected")
        }

        guard log.issues.isEmpty, let feedbackId, let userId, let modality, let correctionType, let occurredAt,
              let target, let generation, let original, let corrected,
              let originalJSON = root.value("original"), let correctedJSON = root.value("corrected")
        else {
            return .invalid(log.issues.isEmpty ? [ValidationIssue("", .invalidValue, "the correction is incomplete")] : log.issues)
        }
        return .valid(Correction(
            feedbackId: feedbackId, userId: userId, modality: modality, correctionType: correctionType,
            occurredAt: occurredAt, target: target, generation: generation, original: original, corrected: corrected,
            originalJSON: originalJSON, correctedJSON: correctedJSON, editDurationMs: editDurationMs,
            client: root.value("client") == nil ? nil : client
        ))
    }

    /// How the shared first steps of a message ended.
    enum Prelude {
        /// Nothing more can be judged; these are the issues.
        case stopped([ValidationIssue])
        /// The root object, with the issues found so far in `log`.
        case ready(Fields, IssueLog)
    }

    /// The shared first steps of every message: size, strict parse, string rules, an object
    /// root, the exact schema, no unknown members.
    static func document(_ payload: [UInt8], schema expected: String, fields: [String]) -> Prelude {
        guard payload.count <= maxPayloadBytes else {
            return .stopped([ValidationIssue("", .payloadTooLarge, "the payload has \(payload.count) bytes; at most \(maxPayloadBytes) are allowed")])
        }
        var parser = JSONParser(bytes: payload, maxDepth: 16)
        let document: JSONValue
        do {
            document = try parser.parse()
        } catch {
            return .stopped([issue(for: error)])
        }
        let log = IssueLog()
        for problem in parser.stringProblems {
            log.add(problem.path, .invalidValue, problem.kind == .nul
                ? "strings must not contain NUL (U+0000)" : "strings must not contain unpaired surrogate escapes")
        }
        guard let root = log.object(document, at: "") else { return .stopped(log.issues) }
        // The schema names the shape; without the right one nothing else can be judged.
        guard let schema = root.string("schema", maximum: 128) else { return .stopped(log.issues) }
        guard schema == expected else {
            return .stopped(log.issues + [ValidationIssue("/schema", .unsupportedSchema, "schema must be \(expected)")])
        }
        root.rejectUnknown(fields)
        return .ready(root, log)
    }

    /// `userId` and `modality`, each checked against the topic the message came on.
    static func sender(_ root: Fields, topicModality: String, topicUserId: String) -> (String?, Modality?) {
        let userId = userId(root, "userId")
        if let userId, userId != topicUserId {
            root.log.add("/userId", .topicMismatch, "userId \(userId.debugDescription) differs from the topic's \(topicUserId.debugDescription)")
        }
        let modality = root.choice("modality", Modality.self, allowed: Modality.allCases)
        if let modality, modality.rawValue != topicModality {
            root.log.add("/modality", .topicMismatch, "modality \(modality.rawValue) differs from the topic's \(topicModality.debugDescription)")
        }
        return (userId, modality)
    }

    /// The issue for a document that could not be parsed at all.
    public static func issue(for failure: JSONParser.Failure) -> ValidationIssue {
        switch failure.kind {
        case .malformed: ValidationIssue(failure.path, .malformedJSON, failure.message)
        case .tooDeep: ValidationIssue(failure.path, .nestingTooDeep, "nesting is limited to 16 levels")
        case .duplicateKey: ValidationIssue(failure.path, .duplicateField, failure.message)
        case .notFinite: ValidationIssue(failure.path, .invalidValue, failure.message)
        }
    }

    // MARK: - Fields

    static func uuid(_ fields: Fields, _ key: String) -> String? {
        guard let text = fields.string(key, maximum: 64) else { return nil }
        guard isUUID(text) else {
            fields.log.add(fields.path.appending(key), .invalidValue, "\(key) must be a UUID such as 0b6a0f8e-3c1d-4e43-9b1e-2a9d7c4f5e61")
            return nil
        }
        return text.lowercased()
    }

    /// RFC 9562 text form: 8-4-4-4-12 hexadecimal digits, any case.
    public static func isUUID(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count == 36 else { return false }
        for (position, byte) in bytes.enumerated() {
            if [8, 13, 18, 23].contains(position) {
                guard byte == UInt8(ascii: "-") else { return false }
            } else {
                guard (0x30...0x39).contains(byte) || (0x61...0x66).contains(byte) || (0x41...0x46).contains(byte) else { return false }
            }
        }
        return true
    }

    /// Whether `text` is a valid `{userId}`.
    public static func isUserId(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 64 && text.utf8.allSatisfy { byte in
            (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
                || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
        }
    }

    static func userId(_ fields: Fields, _ key: String) -> String? {
        guard let text = fields.string(key, maximum: 64) else { return nil }
        guard isUserId(text) else {
            fields.log.add(fields.path.appending(key), .invalidValue, "\(key) must be \(userIdPattern)")
            return nil
        }
        return text
    }

    func occurred(_ fields: Fields, now: Date) -> Date? {
        guard let text = fields.string("occurredAt", maximum: 64) else { return nil }
        guard let date = RFC3339.parse(text) else {
            fields.log.add("/occurredAt", .invalidTimestamp, "occurredAt must be an RFC 3339 date-time with an offset, e.g. 2026-11-28T07:23:24Z")
            return nil
        }
        if date.timeIntervalSince(now) > maxClockSkew {
            fields.log.add("/occurredAt", .invalidTimestamp, "occurredAt lies more than 5 minutes in the future")
            return nil
        }
        if now.timeIntervalSince(date) > maxAge {
            fields.log.add("/occurredAt", .invalidTimestamp, "occurredAt is older than 30 days")
            return nil
        }
        return date
    }

    static func target(_ root: Fields) -> CorrectionTarget? {
        guard let target = root.object("target") else { return nil }
        target.rejectUnknown(["comicId", "sceneId", "panelId", "characterId"])
        let comicId = target.string("comicId", maximum: 128)
        let sceneId = target.string("sceneId", required: false, maximum: 128)
        let panelId = target.string("panelId", required: false, maximum: 128)
        let characterId = target.string("characterId", required: false, maximum: 128)
        return comicId.map { CorrectionTarget(comicId: $0, sceneId: sceneId, panelId: panelId, characterId: characterId) }
    }

    static func generation(_ root: Fields, promptRequired: Bool, promptAllowed: Bool = true) -> Generation? {
        guard let generation = root.object("generation") else { return nil }
        generation.rejectUnknown(promptAllowed ? ["id", "model", "modelVersion", "prompt", "experiment"] : ["id", "model", "modelVersion", "experiment"])
        let id = generation.string("id", maximum: 128)
        let model = generation.string("model", maximum: 128)
        let version = generation.string("modelVersion", maximum: 128)
        let prompt = generation.string("prompt", required: promptRequired, minimum: 0, maximum: 32_768)
        var experiment: Experiment?
        if let fields = generation.object("experiment", required: false) {
            fields.rejectUnknown(["id", "arm"])
            let experimentId = fields.string("id", maximum: 64)
            let arm = fields.string("arm", maximum: 64)
            if let experimentId, let arm { experiment = Experiment(id: experimentId, arm: arm) }
        }
        guard let id, let model, let version else { return nil }
        return Generation(id: id, model: model, modelVersion: version, prompt: prompt, experiment: experiment)
    }

    static func client(_ root: Fields) -> ClientInfo? {
        guard let client = root.object("client", required: false) else { return nil }
        client.rejectUnknown(["app", "version"])
        let app = client.string("app", maximum: 64)
        let version = client.string("version", maximum: 64)
        guard let app, let version else { return nil }
        return ClientInfo(app: app, version: version)
    }

    // MARK: - Content by modality

    static func content(_ fields: Fields, modality: Modality, correctedSide: Bool) -> CorrectionContent? {
        switch modality {
        case .text:
            fields.rejectUnknown(["text"])
            return fields.string("text", maximum: 32_768).map(CorrectionContent.text)
        case .image:
            return image(fields, correctedSide: correctedSide).map(CorrectionContent.image)
        case .layout:
            return layout(fields).map(CorrectionContent.layout)
        }
    }

    static func image(_ fields: Fields, correctedSide: Bool) -> ImageContent? {
        var known = ["uri", "sha256", "width", "height", "seed", "params"]
        if correctedSide { known += ["prompt", "instruction", "mask"] }
        fields.rejectUnknown(known)
        var uri = fields.string("uri", maximum: 2048)
        if let text = uri, !["https://", "s3://", "asset://"].contains(where: { text.hasPrefix($0) && text.utf8.count > $0.utf8.count }) {
            fields.log.add(fields.path.appending("uri"), .invalidValue, "uri must start with https://, s3:// or asset://")
            uri = nil
        }
        var sha256 = fields.string("sha256", required: false, maximum: 64)
        if let text = sha256, text.utf8.count != 64 || !text.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) || (0x41...0x46).contains($0) }) {
            fields.log.add(fields.path.appending("sha256"), .invalidValue, "sha256 must be 64 hexadecimal digits")
            sha256 = nil
        }
        let width = fields.integer("width", required: false, in: 1...1_000_000)
        let height = fields.integer("height", required: false, in: 1...1_000_000)
        let seed = fields.integer("seed", required: false, in: Int(Int64.min / 1024)...Int(Int64.max / 1024))
        var params: [(key: String, value: JSONValue)]?
        if let paramFields = fields.object("params", required: false) {
            params = []
            for member in paramFields.members {
                switch member.value {
                case .string, .number, .bool: params?.append(member)
                default:
                    fields.log.add(paramFields.path.appending(member.key), .invalidType, "params values must be strings, numbers or booleans")
                }
            }
        }
        var content = ImageContent(uri: uri ?? "", sha256: sha256, width: width, height: height, seed: seed, params: params)
        if correctedSide {
            content.prompt = fields.string("prompt", required: false, minimum: 0, maximum: 32_768)
            content.instruction = fields.string("instruction", required: false, maximum: 2000)
            if let mask = fields.object("mask", required: false) {
                mask.rejectUnknown(["regions"])
                content.mask = regions(mask)
            }
        }
        return uri == nil ? nil : content
    }

    static func regions(_ mask: Fields) -> [MaskRegion]? {
        guard let elements = mask.array("regions") else { return nil }
        guard (1...32).contains(elements.count) else {
            mask.log.add(mask.path.appending("regions"), .invalidValue, "a mask has 1 to 32 regions")
            return nil
        }
        var regions: [MaskRegion] = []
        for (index, element) in elements.enumerated() {
            guard let region = mask.log.object(element, at: mask.path.appending("regions").appending(index)) else { continue }
            region.rejectUnknown(["x", "y", "width", "height"])
            let values = ["x", "y", "width", "height"].map { region.number($0, in: 0...1) }
            if let x = values[0], let y = values[1], let width = values[2], let height = values[3] {
                regions.append(MaskRegion(x: x, y: y, width: width, height: height))
            }
        }
        return regions.count == elements.count ? regions : nil
    }

    static func layout(_ fields: Fields) -> Layout? {
        fields.rejectUnknown(["canvas", "panels"])
        var canvasSize: (Double, Double)?
        if let canvas = fields.object("canvas") {
            canvas.rejectUnknown(["width", "height"])
            let width = canvas.number("width", in: 0...Double.greatestFiniteMagnitude)
            let height = canvas.number("height", in: 0...Double.greatestFiniteMagnitude)
            if let width, let height { canvasSize = (width, height) }
        }
        guard let elements = fields.array("panels") else { return nil }
        guard (1...64).contains(elements.count) else {
            fields.log.add(fields.path.appending("panels"), .invalidValue, "a layout has 1 to 64 panels")
            return nil
        }
        var panels: [LayoutPanel] = []
        var ids = Set<String>()
        for (index, element) in elements.enumerated() {
            let path = fields.path.appending("panels").appending(index)
            guard let panel = fields.log.object(element, at: path) else { continue }
            panel.rejectUnknown(["id", "x", "y", "width", "height", "order"])
            let id = panel.string("id", maximum: 128)
            if let id, !ids.insert(id).inserted {
                fields.log.add(path.appending("id"), .invalidValue, "panel id \(id.debugDescription) is used twice")
            }
            let geometry = ["x", "y", "width", "height"].map { panel.number($0, in: 0...Double.greatestFiniteMagnitude) }
            let order = panel.integer("order", required: false, in: 0...10_000)
            if let id, let x = geometry[0], let y = geometry[1], let width = geometry[2], let height = geometry[3] {
                panels.append(LayoutPanel(id: id, x: x, y: y, width: width, height: height, order: order))
            }
        }
        guard let canvasSize, panels.count == elements.count else { return nil }
        return Layout(canvasWidth: canvasSize.0, canvasHeight: canvasSize.1, panels: panels)
    }

    /// Why `corrected` does not count as a change of `original`, or `nil` when it does.
    static func unchanged(_ original: CorrectionContent, _ corrected: CorrectionContent) -> String? {
        switch (original, corrected) {
        case let (.text(a), .text(b)):
            return a == b ? "the corrected text equals the original" : nil
        case let (.image(a), .image(b)):
            let changed = a.uri != b.uri || b.prompt != nil || b.instruction != nil || b.mask != nil
            return changed ? nil : "a corrected image must change uri, prompt, instruction or mask"
        case let (.layout(a), .layout(b)):
            return a == b ? "the corrected layout equals the original" : nil
        default:
            return nil
        }
    }
}
