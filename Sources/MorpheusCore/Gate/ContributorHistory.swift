import Foundation

/// What the history-dependent rules need to know about a user's earlier corrections.
///
/// The service answers from PostgreSQL inside the batch's transaction (so that several
/// instances cannot both miss a burst); `gate evaluate` replays a file against
/// ``InMemoryHistory``. Both feed the same ``QualityGate/evaluate(_:history:)``.
public protocol ContributorHistory {
    /// How many corrections of `user` occurred in `window` (lower bound excluded).
    func count(user: String, occurredIn window: ClosedRange<Date>) -> Int
    /// The distinct targets on which `user` put this content at or before `time`.
    func targets(user: String, content: String, before time: Date) -> Set<String>
    /// How many corrections of `user` were stored before this one, counted up to `limit`.
    func corrections(user: String, limit: Int) -> Int
    /// Up to `limit` of the users who saw `generation` before this correction.
    func audience(generation: String, limit: Int) -> Set<String>
}

/// A correction as the history rules remember it.
public struct HistoryEntry: Sendable, Equatable {
    public var userId: String
    public var occurredAt: Date
    public var target: String
    /// ``HistoryRules/contentKey(_:)``; `nil` when the correction has no free-text content.
    public var content: String?
    public var generationId: String?

    public init(userId: String, occurredAt: Date, target: String, content: String?, generationId: String? = nil) {
        self.userId = userId
        self.occurredAt = occurredAt
        self.target = target
        self.content = content
        self.generationId = generationId
    }

    public init(_ correction: Correction, contentKey: String?? = nil) {
        self.init(userId: correction.userId, occurredAt: correction.occurredAt, target: HistoryRules.targetKey(correction.target),
                  content: contentKey ?? HistoryRules.contentKey(correction), generationId: correction.generation.id)
    }
}

/// The `burst` and `repeated_content` rules of the flag policy.
public enum HistoryRules {
    /// More than this many corrections in `burstWindow` is a burst.
    public static let burstLimit = 30
    public static let burstWindow: TimeInterval = 60
    /// The same content on this many earlier targets makes the next one repeated.
    public static let repeatedTargets = 2

    public static func flags(_ correction: Correction, history: some ContributorHistory) -> Set<FlagCode> {
        flags(correction, contentKey: contentKey(correction), history: history)
    }

    /// With the correction's ``contentKey(_:)`` already computed.
    public static func flags(_ correction: Correction, contentKey: String?, history: some ContributorHistory) -> Set<FlagCode> {
        var flags = Set<FlagCode>()
        let t = correction.occurredAt
        // (t − 60 s, t], counting this correction.
        let earlier = history.count(user: correction.userId, occurredIn: t.addingTimeInterval(-burstWindow)...t)
        if earlier + 1 > burstLimit { flags.insert(.burst) }
        if let content = contentKey {
            let targets = history.targets(user: correction.userId, content: content, before: t).subtracting([targetKey(correction.target)])
            if targets.count >= repeatedTargets { flags.insert(.repeatedContent) }
        }
        return flags
    }

    public static func targetKey(_ target: CorrectionTarget) -> String {
        [target.comicId, target.sceneId ?? "", target.panelId ?? "", target.characterId ?? ""].joined(separator: "\u{1F}")
    }

    /// The SHA-256 of the corrected text, or of an image's prompt and instruction; trimmed,
    /// white space collapsed, case ignored. `nil` for layouts and images without text. A digest,
    /// so that the history index holds no free text of the user.
    public static func contentKey(_ correction: Correction) -> String? {
        let content: String
        switch correction.corrected {
        case .text(let text): content = comparableContent(text)
        case .image(let image): content = comparableContent([image.prompt, image.instruction].compactMap { $0 }.joined(separator: "\n"))
        case .layout: return nil
        }
        return content.isEmpty ? nil : sha256Hex(Array(content.utf8))
    }
}

/// A history kept in memory, for replaying a file in `occurredAt` order.
public struct InMemoryHistory: ContributorHistory, Sendable {
    private var times: [String: [Date]] = [:]
    private var contents: [String: [String: [(target: String, at: Date)]]] = [:]
    private var counts: [String: Int] = [:]
    private var viewers: [String: Set<String>] = [:]

    public init(_ entries: [HistoryEntry] = []) {
        for entry in entries { record(entry) }
    }

    /// A history read from storage: `entries` are the rows the window and content rules need
    /// (a part of each user's corrections), `counts` how many corrections each user has in all,
    /// `viewers` who saw which generation.
    public init(stored entries: [HistoryEntry], counts: [String: Int] = [:], viewers: [String: Set<String>] = [:]) {
        for entry in entries { remember(entry) }
        self.counts = counts
        for (generation, users) in viewers { self.viewers[generation, default: []].formUnion(users) }
    }

    /// Records a correction, after those before it.
    public mutating func record(_ entry: HistoryEntry) {
        remember(entry)
        counts[entry.userId, default: 0] += 1
    }

    private mutating func remember(_ entry: HistoryEntry) {
        times[entry.userId, default: []].append(entry.occurredAt)
        if let content = entry.content { contents[entry.userId, default: [:]][content, default: []].append((entry.target, entry.occurredAt)) }
        if let generation = entry.generationId { viewers[generation, default: []].insert(entry.userId) }
    }

    /// Records that `user` saw `generation` (an outcome, or a correction not recorded here).
    public mutating func record(viewer user: String, of generation: String) {
        viewers[generation, default: []].insert(user)
    }

    public func count(user: String, occurredIn window: ClosedRange<Date>) -> Int {
        (times[user] ?? []).filter { $0 > window.lowerBound && $0 <= window.upperBound }.count
    }

    public func targets(user: String, content: String, before time: Date) -> Set<String> {
        Set((contents[user]?[content] ?? []).filter { $0.at <= time }.map(\.target))
    }

    public func corrections(user: String, limit: Int) -> Int {
        min(limit, counts[user] ?? 0)
    }

    public func audience(generation: String, limit: Int) -> Set<String> {
        let all = viewers[generation] ?? []
        return all.count <= limit ? all : Set(all.prefix(limit))
    }
}
