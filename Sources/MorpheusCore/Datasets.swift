import Foundation

/// What a dataset version is built from (the exact parameters, kept in its manifest).
public struct DatasetRequest: Sendable, Equatable {
    public enum Format: String, Sendable, CaseIterable {
        /// Chat fine-tuning lines: `{"messages": [...]}`.
        case sft
        /// Preference lines: `prompt` / `chosen` / `rejected`.
        case preference
    }

    public var name: String
    public var modality: Modality
    public var format: Format
    public var minQuality: Double
    /// Share of examples held out for validation, by a hash of the example id.
    public var validationShare: Double
    public var seed: Int
    public var limit: Int?

    public init(name: String, modality: Modality, format: Format, minQuality: Double = 0.5, validationShare: Double = 0.05, seed: Int = 42,
                limit: Int? = nil) {
        self.name = name
        self.modality = modality
        self.format = format
        self.minQuality = minQuality
        self.validationShare = validationShare
        self.seed = seed
        self.limit = limit
    }

    public static func isName(_ text: String) -> Bool { CorrectionValidator.isUserId(text) }

    public var parameters: JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            ("modality", .string(modality.rawValue)), ("format", .string(format.rawValue)), ("minQuality", .number(minQuality)),
            ("validationShare", .number(validationShare)), ("seed", .number(Double(seed))),
        ]
        if let limit { members.append(("limit", .number(Double(limit)))) }
        return .object(members)
    }

    /// Whether an example goes to validation: the first 8 bytes of SHA-256(seed, exampleId)
    /// against the share — the same example lands in the same split in every build.
    public func isValidation(_ exampleId: String) -> Bool {
        guard validationShare > 0 else { return false }
        let digest = sha256Hex(Array("\(seed):\(exampleId)".utf8))
        let value = UInt64(digest.prefix(16), radix: 16) ?? 0
        return Double(value) / Double(UInt64.max) < validationShare
    }
}
