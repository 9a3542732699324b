import Crypto
import Foundation

/// What a dataset version is built from (the exact parameters, kept in its manifest).
public struct DatasetRequest: Sendable, Equatable {
    public enum Format: String, Sendable, CaseIterable {
        /// Chat fine-tuning lines: `{"messages": [...]}`.
        case sft
        /// Preference lines: `prompt` / `chosen` / `rejected`.
        case preference

        /// Its bit in `training_examples.formats`.
        public var bit: Int16 { self == .sft ? 1 : 2 }
    }

    /// What strata are made of (`--stratify-by`, comma-separated for combinations).
    public enum StratumKey: String, Sendable, CaseIterable {
        case correctionType
        /// The model's name.
        case model
        /// `model@modelVersion`.
        case modelVersion
        /// `experiment:arm`, or `none`.
        case experimentArm
    }

    public var name: String
    public var modality: Modality
    public var format: Format
    public var minQuality: Double
    /// Share of examples held out for validation, by a hash of the example id.
    public var validationShare: Double
    /// Seeds the split and the sampling order.
    public var seed: Int
    /// At most this many examples (the sampling's target).
    public var limit: Int?
    /// Corrections received in [since, until).
    public var since: Date?
    public var until: Date?
    /// Only these correction types (all when empty).
    public var correctionTypes: [CorrectionType] = []
    /// Only this model, `name` or `name@version`.
    public var model: String?
    public var stratifyBy: [StratumKey] = []
    public var allocation: Sampling.Allocation = .proportional
    /// Every stratum gets at least this many examples (or all it has).
    public var stratumFloor = 0
    /// No contributor has more than this share of the version's examples.
    public var maxContributorShare: Double?

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
        if let since { members.append(("since", .string(RFC3339.format(since)))) }
        if let until { members.append(("until", .string(RFC3339.format(until)))) }
        if !correctionTypes.isEmpty { members.append(("correctionTypes", .array(correctionTypes.map { .string($0.rawValue) }))) }
        if let model { members.append(("model", .string(model))) }
        if !stratifyBy.isEmpty {
            members.append(("stratifyBy", .array(stratifyBy.map { .string($0.rawValue) })))
            members.append(("allocation", .string(allocation.rawValue)))
            members.append(("stratumFloor", .number(Double(stratumFloor))))
        }
        if let maxContributorShare { members.append(("maxContributorShare", .number(maxContributorShare))) }
        return .object(members)
    }

    /// An example's place in the build's order: the first 8 bytes of MD5(seed:exampleId) — a
    /// shuffle that every build with the same seed repeats, independent of the split's hash.
    public func orderKey(_ exampleId: String) -> UInt64 {
        Insecure.MD5.hash(data: Array("\(seed):\(exampleId)".utf8)).prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// Whether an example goes to validation: the first 8 bytes of SHA-256(seed, exampleId)
    /// against the share — the same example lands in the same split in every build.
    public func isValidation(_ exampleId: String) -> Bool {
        guard validationShare > 0 else { return false }
        let value = SHA256.hash(data: Array("\(seed):\(exampleId)".utf8)).prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return Double(value) / Double(UInt64.max) < validationShare
    }
}
