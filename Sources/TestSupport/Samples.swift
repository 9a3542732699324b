import MorpheusCore

extension JSONValue {
    /// A copy with the value at `pointer` replaced, or removed when `value` is nil.
    public func setting(_ pointer: JSONPointer, to value: JSONValue?) -> JSONValue {
        guard let head = pointer.tokens.first else { return value ?? .null }
        let rest = JSONPointer(Array(pointer.tokens.dropFirst()))
        switch self {
        case .object(var members):
            if let index = members.firstIndex(where: { $0.key == head }) {
                if rest.tokens.isEmpty, value == nil { members.remove(at: index) } else {
                    members[index].value = members[index].value.setting(rest, to: value)
                }
            } else if let value {
                members.append((head, JSONValue.null.setting(rest, to: value)))
            }
            return .object(members)
        case .array(var elements):
            let index = Int(head)!
            if rest.tokens.isEmpty, value == nil { elements.remove(at: index) } else { elements[index] = elements[index].setting(rest, to: value) }
            return .array(elements)
        default:
            return JSONValue.object([(head, JSONValue.null.setting(rest, to: value))])
        }
    }
}

/// A valid correction of each modality, to mutate in tests.
public enum Samples {
    public static let text = JSONValue.object([
        "schema": .string("morpheus.correction/1"),
        "feedbackId": .string("0B6A0F8E-3C1D-4E43-9B1E-2A9D7C4F5E61"),
        "userId": .string("alice.w_1"),
        "modality": .string("text"),
        "correctionType": .string("scene_description"),
        "occurredAt": .string("2026-11-28T11:59:00.250+01:00"),
        "target": .object(["comicId": .string("comic-1"), "sceneId": .string("s-2")]),
        "generation": .object([
            "id": .string("gen-9"), "model": .string("storyteller"), "modelVersion": .string("3.1"),
            "prompt": .string("Describe the harbour at dawn."),
            "experiment": .object(["id": .string("exp-4"), "arm": .string("B")]),
        ]),
        "original": .object(["text": .string("A harbour. Boats.")]),
        "corrected": .object(["text": .string("Fog lifts off the harbour as the first boats leave.")]),
        "editDurationMs": .number(5400),
        "client": .object(["app": .string("studio"), "version": .string("2.4.0")]),
    ])

    public static let image = JSONValue.object([
        "schema": .string("morpheus.correction/1"),
        "feedbackId": .string("6f1c9a52-8d7e-4b1a-9c3f-0e5d2b7a4c18"),
        "userId": .string("bob"),
        "modality": .string("image"),
        "correctionType": .string("image_inpaint"),
        "occurredAt": .string("2026-11-28T11:00:00Z"),
        "target": .object(["comicId": .string("comic-1"), "panelId": .string("p-3")]),
        "generation": .object(["id": .string("gen-10"), "model": .string("painter"), "modelVersion": .string("7"), "prompt": .string("A red door")]),
        "original": .object([
            "uri": .string("s3://renders/p-3.png"), "sha256": .string(String(repeating: "ab", count: 32)),
            "width": .number(1024), "height": .number(768), "seed": .number(42),
            "params": .object(["steps": .number(30), "sampler": .string("euler"), "hires": .bool(true)]),
        ]),
        "corrected": .object([
            "uri": .string("s3://renders/p-3.png"), "instruction": .string("Make the door blue"),
            "mask": .object(["regions": .array([.object(["x": .number(0.1), "y": .number(0.2), "width": .number(0.3), "height": .number(0.4)])])]),
        ]),
    ])

    public static let layout = JSONValue.object([
        "schema": .string("morpheus.correction/1"),
        "feedbackId": .string("a3d5e7f9-1b2c-4d6e-8f0a-1c3e5a7b9d2f"),
        "userId": .string("carol"),
        "modality": .string("layout"),
        "correctionType": .string("panel_layout"),
        "occurredAt": .string("2026-11-27T12:00:00Z"),
        "target": .object(["comicId": .string("comic-2")]),
        "generation": .object(["id": .string("gen-11"), "model": .string("composer"), "modelVersion": .string("1.0")]),
        "original": .object(["canvas": .object(["width": .number(800), "height": .number(1200)]), "panels": .array([
            .object(["id": .string("a"), "x": .number(0), "y": .number(0), "width": .number(800), "height": .number(600), "order": .number(1)]),
            .object(["id": .string("b"), "x": .number(0), "y": .number(600), "width": .number(800), "height": .number(600), "order": .number(2)]),
        ])]),
        "corrected": .object(["canvas": .object(["width": .number(800), "height": .number(1200)]), "panels": .array([
            .object(["id": .string("a"), "x": .number(0), "y": .number(0), "width": .number(400), "height": .number(1200)]),
            .object(["id": .string("b"), "x": .number(400), "y": .number(0), "width": .number(400), "height": .number(1200)]),
        ])]),
    ])
}


extension Samples {
    public static let outcome = JSONValue.object([
        "schema": .string("morpheus.outcome/1"),
        "outcomeId": .string("5e0d6c1a-7b2f-4f3e-9a8d-1c2b3a4d5e6f"),
        "userId": .string("alice.w_1"),
        "modality": .string("text"),
        "generation": .object(["id": .string("gen-9"), "model": .string("storyteller"), "modelVersion": .string("3.1"),
                               "experiment": .object(["id": .string("exp-4"), "arm": .string("A")])]),
        "outcome": .string("regenerated"),
        "occurredAt": .string("2026-11-28T11:58:00Z"),
    ])
}
