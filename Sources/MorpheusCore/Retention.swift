import Foundation

/// How long raw content stays in the hot tables (`docs/privacy.md#retention`).
///
/// A correction's content is archived once it is older than ``archiveAfterDaysInDataset`` and
/// has reached at least one dataset version (the trainers have it), or once it is older than
/// ``archiveAfterDays`` whatever became of it. Corrections waiting for a reviewer stay hot. Dead
/// letters (with their payload prefixes) are deleted after ``deadLetterDays``. `nil` turns a
/// rule off.
public struct RetentionPolicy: Sendable, Equatable {
    public var archiveAfterDaysInDataset: Int?
    public var archiveAfterDays: Int?
    public var deadLetterDays: Int?
    /// Corrections per archive: one transaction each, and the unit PostgreSQL compresses.
    public var archiveSize: Int

    public init(archiveAfterDaysInDataset: Int? = 90, archiveAfterDays: Int? = 365, deadLetterDays: Int? = 30, archiveSize: Int = 2000) {
        self.archiveAfterDaysInDataset = archiveAfterDaysInDataset
        self.archiveAfterDays = archiveAfterDays
        self.deadLetterDays = deadLetterDays
        self.archiveSize = archiveSize
    }

    /// The instants before which each rule applies, at `now`.
    public func cutoffs(at now: Date) -> RetentionCutoffs {
        func before(_ days: Int?) -> Date? { days.map { now.addingTimeInterval(-Double($0) * 86_400) } }
        return RetentionCutoffs(inDataset: before(archiveAfterDaysInDataset), any: before(archiveAfterDays), deadLetters: before(deadLetterDays))
    }
}

/// ``RetentionPolicy`` resolved against a clock.
public struct RetentionCutoffs: Sendable, Equatable {
    /// Content received before this and in a dataset version is archived.
    public var inDataset: Date?
    /// Content received before this is archived.
    public var any: Date?
    /// Dead letters last received before this are deleted.
    public var deadLetters: Date?
}

/// What a retention run did, or (dry run) would do.
public struct RetentionReport: Sendable, Equatable {
    /// Corrections archived (or archivable) under each rule.
    public var archivedInDataset = 0
    public var archivedByAge = 0
    /// Archives written.
    public var archives = 0
    /// Bytes of content the archived corrections held in the hot tables (PostgreSQL's column
    /// sizes, as stored), and what their archives take.
    public var hotContentBytes = 0
    public var archiveBytes = 0
    public var deadLetters = 0
    public var dryRun = false

    public init() {}

    public var archived: Int { archivedInDataset + archivedByAge }

    public var json: JSONValue {
        .object([
            ("dryRun", .bool(dryRun)), ("archivedInDataset", .number(Double(archivedInDataset))), ("archivedByAge", .number(Double(archivedByAge))),
            ("archives", .number(Double(archives))), ("hotContentBytes", .number(Double(hotContentBytes))),
            ("archiveBytes", .number(Double(archiveBytes))), ("deadLetters", .number(Double(deadLetters))),
        ])
    }
}
