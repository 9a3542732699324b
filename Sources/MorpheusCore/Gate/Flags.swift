/// The stable flag codes of contract v1 (`flags` of a `flagged` receipt).
public enum FlagCode: String, Sendable, CaseIterable, Comparable {
    case pii, promptInjection = "prompt_injection", profanity, gibberish, massDeletion = "mass_deletion"
    case urlSpam = "url_spam", burst, repeatedContent = "repeated_content", layoutDegenerate = "layout_degenerate"
    case lowEffort = "low_effort"

    public static func < (lhs: FlagCode, rhs: FlagCode) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// What the content rules look at: the text the user added or made, by modality.
public struct GateInput: Sendable {
    public let correction: Correction
    /// Free text the user added: for text the runs the original does not have; for images the
    /// new parts of the prompt (against the generation's prompt) and the whole instruction.
    /// Image URIs are never text to scan.
    public let added: [String]
    /// The word diff of a text correction (`nil` for other modalities).
    public let textDiff: AddedText?

    public init(_ correction: Correction) {
        self.correction = correction
        switch (correction.original, correction.corrected) {
        case let (.text(original), .text(corrected)):
            let diff = AddedText(original: original, corrected: corrected)
            textDiff = diff
            added = diff.spans
        case let (_, .image(image)):
            var spans: [String] = []
            if let prompt = image.prompt {
                spans += AddedText(original: correction.generation.prompt ?? "", corrected: prompt).spans
            }
            if let instruction = image.instruction, !instruction.isEmpty { spans.append(instruction) }
            added = spans
            textDiff = nil
        default:
            added = []
            textDiff = nil
        }
    }

    /// The added text as one string (runs separated by a line break).
    public var addedText: String { added.joined(separator: "\n") }
}
