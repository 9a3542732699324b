import Foundation
import Crypto

/// The system instruction given to the model for each correction type, from configuration.
public struct SystemInstructions: Sendable, Equatable {
    public var byType: [CorrectionType: String]
    public var fallback: String

    public init(byType: [CorrectionType: String] = [:], fallback: String = "You write content for comics.") {
        self.byType = byType
        self.fallback = fallback
    }

    public func instruction(for type: CorrectionType) -> String { byType[type] ?? fallback }
}

/// Turns accepted corrections into training data in the formats of contract v1
/// (`morpheus.training-example/1`). Pure and deterministic: the same inputs give the same bytes.
public struct TrainingTransform: Sendable {
    public static let schemaName = "morpheus.training-example/1"

    public let instructions: SystemInstructions

    public init(instructions: SystemInstructions) {
        self.instructions = instructions
    }

    /// A stable id: the first 128 bits of SHA-256("training-example/1:" + feedbackId), as a UUID.
    public static func exampleId(for feedbackId: String) -> String {
        var hasher = SHA256()
        hasher.update(data: Self.examplePrefix)
        var id = feedbackId
        id.withUTF8 { hasher.update(data: UnsafeRawBufferPointer($0)) }
        // The first 128 bits as hex, grouped 8-4-4-4-12 like a UUID.
        return hasher.finalize().withUnsafeBytes { digest in
            String(unsafeUninitializedCapacity: 36) { out in
                var hex = [UInt8](repeating: 0, count: 32)
                _ = hex.withUnsafeMutableBufferPointer { writeHex(UnsafeRawBufferPointer(rebasing: digest[0..<16]), into: $0) }
                var position = 0
                for (index, digit) in hex.enumerated() {
                    if index == 8 || index == 12 || index == 16 || index == 20 {
                        out[position] = UInt8(ascii: "-")
                        position += 1
                    }
                    out[position] = digit
                    position += 1
                }
                return position
            }
        }
    }

    private static let examplePrefix = Array("training-example/1:".utf8)

    /// The training example of a correction.
    public func example(for correction: Correction, quality: Double, contributor: String, createdAt: Date) -> JSONValue {
        let (sft, preference) = formats(for: correction)
        return .object([
            "schema": .string(Self.schemaName),
            "exampleId": .string(Self.exampleId(for: correction.feedbackId)),
            "feedbackId": .string(correction.feedbackId),
            "modality": .string(correction.modality.rawValue),
            "correctionType": .string(correction.correctionType.rawValue),
            "quality": .number((quality * 1000).rounded() / 1000),
            "contributor": .string(contributor),
            "generation": .object([
                "model": .string(correction.generation.model),
                "modelVersion": .string(correction.generation.modelVersion),
                "experiment": correction.generation.experiment.map {
                    .object([("id", .string($0.id)), ("arm", .string($0.arm))])
                },
            ]),
            "sft": sft,
            "preference": preference,
            "createdAt": .string(RFC3339.format(createdAt)),
        ])
    }

    /// The `sft` and `preference` parts by modality; either may be absent.
    func formats(for correction: Correction) -> (sft: JSONValue?, preference: JSONValue?) {
        switch (correction.original, correction.corrected) {
        case let (.text(original), .text(corrected)):
            let system = Self.message("system", instructions.instruction(for: correction.correctionType))
            let user = Self.message("user", correction.generation.prompt ?? "")
            return (
                .object([("messages", .array([system, user, Self.message("assistant", corrected)]))]),
                .object([
                    ("prompt", .array([system, user])),
                    ("chosen", .array([Self.message("assistant", corrected)])),
                    ("rejected", .array([Self.message("assistant", original)])),
                ])
            )
        case let (.image(original), .image(corrected)):
            let prompt = corrected.prompt ?? correction.generation.prompt ?? ""
            let newImage = corrected.uri != original.uri ? corrected.uri : nil
            let sft = JSONValue.object([
                "prompt": .string(prompt),
                "source_image": .string(original.uri),
                "instruction": corrected.instruction.map(JSONValue.string),
                "mask": corrected.mask.map { regions in
                    .object([("regions", .array(regions.map {
                        .object([("x", .number($0.x)), ("y", .number($0.y)), ("width", .number($0.width)), ("height", .number($0.height))])
                    }))])
                },
                "target_image": newImage.map(JSONValue.string),
            ])
            let preference = newImage.map {
                JSONValue.object([("caption", .string(prompt)), ("chosen", .string($0)), ("rejected", .string(original.uri))])
            }
            return (sft, preference)
        case let (.layout(original), .layout(corrected)):
            let context = JSONValue.object([
                "correctionType": .string(correction.correctionType.rawValue),
                "comicId": .string(correction.target.comicId),
                "sceneId": correction.target.sceneId.map(JSONValue.string),
                "prompt": correction.generation.prompt.map(JSONValue.string),
            ])
            return (nil, .object([("context", context), ("chosen", Self.layout(corrected)), ("rejected", Self.layout(original))]))
        default:
            return (nil, nil)
        }
    }

    static func message(_ role: String, _ content: String) -> JSONValue {
        .object([("role", .string(role)), ("content", .string(content))])
    }

    static func layout(_ layout: Layout) -> JSONValue {
        .object([
            ("canvas", .object([("width", .number(layout.canvasWidth)), ("height", .number(layout.canvasHeight))])),
            ("panels", .array(layout.panels.map { panel in
                .object([
                    "id": .string(panel.id), "x": .number(panel.x), "y": .number(panel.y),
                    "width": .number(panel.width), "height": .number(panel.height),
                    "order": panel.order.map { .number(Double($0)) },
                ])
            })),
        ])
    }
}
