import Foundation

/// The three kinds of generated content people correct.
public enum Modality: String, Sendable, CaseIterable {
    case text, image, layout

    /// The correction types that belong to this modality.
    public var correctionTypes: [CorrectionType] { CorrectionType.allCases.filter { $0.modality == self } }
}

/// What kind of fix a correction is; each belongs to one modality.
public enum CorrectionType: String, Sendable, CaseIterable {
    case sceneDescription = "scene_description"
    case characterDescription = "character_description"
    case dialogue
    case caption
    case panelDescription = "panel_description"
    case imagePrompt = "image_prompt"
    case imageInpaint = "image_inpaint"
    case imageChoice = "image_choice"
    case imageStyle = "image_style"
    case panelLayout = "panel_layout"
    case panelOrder = "panel_order"

    public var modality: Modality {
        switch self {
        case .sceneDescription, .characterDescription, .dialogue, .caption, .panelDescription: .text
        case .imagePrompt, .imageInpaint, .imageChoice, .imageStyle: .image
        case .panelLayout, .panelOrder: .layout
        }
    }
}

/// The stable codes of a rejected message (contract v1), plus the ones this service adds.
public enum RejectionCode: String, Sendable, CaseIterable {
    case malformedJSON = "malformed_json"
    case payloadTooLarge = "payload_too_large"
    case unsupportedSchema = "unsupported_schema"
    case missingField = "missing_field"
    case unknownField = "unknown_field"
    case invalidType = "invalid_type"
    case invalidValue = "invalid_value"
    case tooLong = "too_long"
    case invalidTimestamp = "invalid_timestamp"
    case topicMismatch = "topic_mismatch"
    case noChange = "no_change"
    case idempotencyConflict = "idempotency_conflict"
    case optedOut = "opted_out"
    /// Added: the document nests deeper than 16 levels (parsing stops there).
    case nestingTooDeep = "nesting_too_deep"
    /// Added: an object names the same member twice.
    case duplicateField = "duplicate_field"
    /// Added: a request type this version does not handle yet (privacy requests).
    case notImplemented = "not_implemented"
}

/// One reason a message was rejected: where, which rule, and a sentence a person can act on.
public struct ValidationIssue: Sendable, Equatable, CustomStringConvertible {
    public let path: JSONPointer
    public let code: RejectionCode
    public let message: String

    public init(_ path: JSONPointer, _ code: RejectionCode, _ message: String) {
        self.path = path
        self.code = code
        self.message = message
    }

    public var description: String { "\(path.description.isEmpty ? "/" : path.description) \(code.rawValue): \(message)" }

    public var json: JSONValue {
        .object([("path", .string(path.description)), ("code", .string(code.rawValue)), ("message", .string(message))])
    }
}

/// Where a correction points in the comic.
public struct CorrectionTarget: Sendable, Equatable {
    public var comicId: String
    public var sceneId: String?
    public var panelId: String?
    public var characterId: String?
}

/// The A/B arm a generation came from.
public struct Experiment: Sendable, Equatable {
    public var id: String
    public var arm: String
    public init(id: String, arm: String) {
        self.id = id
        self.arm = arm
    }
}

/// Which model run produced the content that was corrected.
public struct Generation: Sendable, Equatable {
    public var id: String
    public var model: String
    public var modelVersion: String
    public var prompt: String?
    public var experiment: Experiment?
}

/// The editor app that sent a message.
public struct ClientInfo: Sendable, Equatable {
    public var app: String
    public var version: String
    public init(app: String, version: String) {
        self.app = app
        self.version = version
    }
}

/// A rectangle in relative image coordinates (all in [0, 1]).
public struct MaskRegion: Sendable, Equatable {
    public var x: Double, y: Double, width: Double, height: Double
    public init(x: Double, y: Double, width: Double, height: Double) {
        self.x = x
        self.y = y
        self.width = width
        self.height = height
    }
}

/// An image as the model produced it or as the user left it.
public struct ImageContent: Sendable, Equatable {
    public var uri: String
    public var sha256: String?
    public var width: Int?
    public var height: Int?
    public var seed: Int?
    /// Generation parameters, values are strings, numbers or booleans.
    public var params: [(key: String, value: JSONValue)]?
    /// Corrected side only.
    public var prompt: String?
    public var instruction: String?
    public var mask: [MaskRegion]?

    public static func == (lhs: ImageContent, rhs: ImageContent) -> Bool {
        lhs.uri == rhs.uri && lhs.sha256 == rhs.sha256 && lhs.width == rhs.width && lhs.height == rhs.height
            && lhs.seed == rhs.seed && lhs.prompt == rhs.prompt && lhs.instruction == rhs.instruction && lhs.mask == rhs.mask
            && lhs.params.map { JSONValue.object($0) } == rhs.params.map { JSONValue.object($0) }
    }
}

/// A panel of a page layout.
public struct LayoutPanel: Sendable, Equatable {
    public var id: String
    public var x: Double, y: Double, width: Double, height: Double
    public var order: Int?
}

/// A page layout: canvas size and panels.
public struct Layout: Sendable, Equatable {
    public var canvasWidth: Double
    public var canvasHeight: Double
    public var panels: [LayoutPanel]
}

/// The content of one side of a correction, by modality.
public enum CorrectionContent: Sendable, Equatable {
    case text(String)
    case image(ImageContent)
    case layout(Layout)
}

/// A validated correction (contract v1 `morpheus.correction/1`).
public struct Correction: Sendable, Equatable {
    public static let schemaName = "morpheus.correction/1"

    /// Lower-case RFC 9562 text form; the idempotency key.
    public var feedbackId: String
    public var userId: String
    public var modality: Modality
    public var correctionType: CorrectionType
    public var occurredAt: Date
    public var target: CorrectionTarget
    public var generation: Generation
    public var original: CorrectionContent
    public var corrected: CorrectionContent
    /// The two sides exactly as sent (validated), for storage as jsonb.
    public var originalJSON: JSONValue
    public var correctedJSON: JSONValue
    public var editDurationMs: Int?
    public var client: ClientInfo?
}
