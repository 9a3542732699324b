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

    /// The bytes of ``example(for:quality:contributor:createdAt:)`` as `serialized()` writes
    /// them, with its id and the formats it has (``DatasetRequest/Format/bit``), written straight
    /// from the correction. Building the tree and serializing it again was a tenth of the
    /// service's instructions per correction. `FastPathTests` holds the two equal.
    public func serializedExample(for correction: Correction, quality: Double, contributor: String, createdAt: Date) -> (exampleId: String, json: [UInt8], formats: Int16) {
        let exampleId = Self.exampleId(for: correction.feedbackId)
        var w = ExampleWriter()
        w.bytes.reserveCapacity(768 + 3 * Self.textLength(correction))
        w.open(UInt8(ascii: "{"))
        w.key("schema"); w.string(Self.schemaName)
        w.key("exampleId"); w.string(exampleId)
        w.key("feedbackId"); w.string(correction.feedbackId)
        w.key("modality"); w.string(correction.modality.rawValue)
        w.key("correctionType"); w.string(correction.correctionType.rawValue)
        w.key("quality"); w.number((quality * 1000).rounded() / 1000)
        w.key("contributor"); w.string(contributor)
        w.key("generation"); w.open(UInt8(ascii: "{"))
        w.key("model"); w.string(correction.generation.model)
        w.key("modelVersion"); w.string(correction.generation.modelVersion)
        if let experiment = correction.generation.experiment {
            w.key("experiment"); w.open(UInt8(ascii: "{"))
            w.key("id"); w.string(experiment.id)
            w.key("arm"); w.string(experiment.arm)
            w.close(UInt8(ascii: "}"))
        }
        w.close(UInt8(ascii: "}"))
        var formats: Int16 = 0
        switch (correction.original, correction.corrected) {
        case let (.text(original), .text(corrected)):
            let system = instructions.instruction(for: correction.correctionType), prompt = correction.generation.prompt ?? ""
            w.key("sft"); w.open(UInt8(ascii: "{"))
            w.key("messages"); w.open(UInt8(ascii: "["))
            w.message("system", system); w.message("user", prompt); w.message("assistant", corrected)
            w.close(UInt8(ascii: "]")); w.close(UInt8(ascii: "}"))
            w.key("preference"); w.open(UInt8(ascii: "{"))
            w.key("prompt"); w.open(UInt8(ascii: "[")); w.message("system", system); w.message("user", prompt); w.close(UInt8(ascii: "]"))
            w.key("chosen"); w.open(UInt8(ascii: "[")); w.message("assistant", corrected); w.close(UInt8(ascii: "]"))
            w.key("rejected"); w.open(UInt8(ascii: "[")); w.message("assistant", original); w.close(UInt8(ascii: "]"))
            w.close(UInt8(ascii: "}"))
            formats = DatasetRequest.Format.sft.bit | DatasetRequest.Format.preference.bit
        case let (.image(original), .image(corrected)):
            let prompt = corrected.prompt ?? correction.generation.prompt ?? ""
            let newImage = corrected.uri != original.uri ? corrected.uri : nil
            w.key("sft"); w.open(UInt8(ascii: "{"))
            w.key("prompt"); w.string(prompt)
            w.key("source_image"); w.string(original.uri)
            if let instruction = corrected.instruction { w.key("instruction"); w.string(instruction) }
            if let regions = corrected.mask {
                w.key("mask"); w.open(UInt8(ascii: "{"))
                w.key("regions"); w.open(UInt8(ascii: "["))
                for region in regions {
                    w.open(UInt8(ascii: "{"))
                    w.key("x"); w.number(region.x); w.key("y"); w.number(region.y)
                    w.key("width"); w.number(region.width); w.key("height"); w.number(region.height)
                    w.close(UInt8(ascii: "}"))
                }
                w.close(UInt8(ascii: "]")); w.close(UInt8(ascii: "}"))
            }
            if let newImage { w.key("target_image"); w.string(newImage) }
            w.close(UInt8(ascii: "}"))
            formats = DatasetRequest.Format.sft.bit
            if let newImage {
                w.key("preference"); w.open(UInt8(ascii: "{"))
                w.key("caption"); w.string(prompt)
                w.key("chosen"); w.string(newImage)
                w.key("rejected"); w.string(original.uri)
                w.close(UInt8(ascii: "}"))
                formats |= DatasetRequest.Format.preference.bit
            }
        case let (.layout(original), .layout(corrected)):
            w.key("preference"); w.open(UInt8(ascii: "{"))
            w.key("context"); w.open(UInt8(ascii: "{"))
            w.key("correctionType"); w.string(correction.correctionType.rawValue)
            w.key("comicId"); w.string(correction.target.comicId)
            if let sceneId = correction.target.sceneId { w.key("sceneId"); w.string(sceneId) }
            if let prompt = correction.generation.prompt { w.key("prompt"); w.string(prompt) }
            w.close(UInt8(ascii: "}"))
            w.key("chosen"); w.layout(corrected)
            w.key("rejected"); w.layout(original)
            w.close(UInt8(ascii: "}"))
            formats = DatasetRequest.Format.preference.bit
        default:
            break
        }
        w.key("createdAt"); w.string(RFC3339.format(createdAt))
        w.close(UInt8(ascii: "}"))
        return (exampleId, w.bytes, formats)
    }

    /// The texts an example repeats, for the buffer's first size.
    private static func textLength(_ correction: Correction) -> Int {
        var length = correction.generation.prompt?.utf8.count ?? 0
        if case .text(let text) = correction.original { length += text.utf8.count }
        if case .text(let text) = correction.corrected { length += text.utf8.count }
        return length
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

/// Compact JSON written in order, each comma placed by what came before it (the writer of
/// ``TrainingTransform/serializedExample(for:quality:contributor:createdAt:)``).
private struct ExampleWriter {
    var bytes: [UInt8] = []
    /// Whether the next member or element follows another.
    private var follows = false

    /// `{` or `[`.
    mutating func open(_ bracket: UInt8) {
        separate()
        bytes.append(bracket)
        follows = false
    }

    /// `}` or `]`.
    mutating func close(_ bracket: UInt8) {
        bytes.append(bracket)
        follows = true
    }

    /// A member's name (plain ASCII: nothing to escape) and its colon.
    mutating func key(_ name: StaticString) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        name.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
        follows = false
    }

    mutating func string(_ value: String) {
        separate()
        JSONValue.writeString(value, to: &bytes)
        follows = true
    }

    mutating func number(_ value: Double) {
        separate()
        bytes.append(contentsOf: JSONValue.format(value).utf8)
        follows = true
    }

    mutating func message(_ role: String, _ content: String) {
        open(UInt8(ascii: "{"))
        key("role"); string(role)
        key("content"); string(content)
        close(UInt8(ascii: "}"))
    }

    mutating func layout(_ layout: Layout) {
        open(UInt8(ascii: "{"))
        key("canvas"); open(UInt8(ascii: "{"))
        key("width"); number(layout.canvasWidth); key("height"); number(layout.canvasHeight)
        close(UInt8(ascii: "}"))
        key("panels"); open(UInt8(ascii: "["))
        for panel in layout.panels {
            open(UInt8(ascii: "{"))
            key("id"); string(panel.id)
            key("x"); number(panel.x); key("y"); number(panel.y)
            key("width"); number(panel.width); key("height"); number(panel.height)
            if let order = panel.order { key("order"); number(Double(order)) }
            close(UInt8(ascii: "}"))
        }
        close(UInt8(ascii: "]"))
        close(UInt8(ascii: "}"))
    }

    private mutating func separate() {
        if follows { bytes.append(UInt8(ascii: ",")) }
    }
}
