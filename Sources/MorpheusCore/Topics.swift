/// The topics of contract v1 under a configurable prefix.
public struct ContractTopics: Sendable, Equatable {
    public let prefix: String

    public init(prefix: String) {
        self.prefix = prefix
    }

    /// What an incoming message is, by its topic.
    public enum Route: Sendable, Equatable {
        case correction(modality: String, userId: String)
        case outcome(modality: String, userId: String)
        case privacy(userId: String)

        /// The user the topic names.
        public var userId: String {
            switch self {
            case .correction(_, let user), .outcome(_, let user), .privacy(let user): user
            }
        }
    }

    /// Filters the service subscribes to, as members of one shared-subscription group.
    public func sharedFilters(group: String) -> [String] {
        ["corrections/+/+", "outcomes/+/+", "privacy/+"].map { "$share/\(group)/\(prefix)/\($0)" }
    }

    public func route(_ topic: String) -> Route? {
        guard topic.hasPrefix(prefix + "/") else { return nil }
        let levels = topic.dropFirst(prefix.count + 1).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        switch (levels.first, levels.count) {
        case ("corrections", 3): return .correction(modality: levels[1], userId: levels[2])
        case ("outcomes", 3): return .outcome(modality: levels[1], userId: levels[2])
        case ("privacy", 2): return .privacy(userId: levels[1])
        default: return nil
        }
    }

    /// Where a receipt for `userId` goes: the request's response topic only when it lies below
    /// `replies/{userId}/` and names one concrete topic; otherwise `replies/{userId}`. The
    /// service never publishes to a topic a client chose outside its own reply space.
    public func replyTopic(for userId: String, responseTopic: String?) -> String {
        let base = "\(prefix)/replies/\(userId)"
        guard let responseTopic, isInReplySpace(responseTopic, of: userId) else { return base }
        return responseTopic
    }

    /// Whether `topic` is one concrete topic strictly below `replies/{userId}/`.
    ///
    /// Compared as UTF-8 bytes, as the broker compares topics: `String` comparison goes by
    /// canonical equivalence, under which a Kelvin sign (U+212A) equals `K` and a `+` followed
    /// by a combining mark is not `+`.
    public func isInReplySpace(_ topic: String, of userId: String) -> Bool {
        let base = Array("\(prefix)/replies/\(userId)/".utf8)
        let bytes = Array(topic.utf8)
        guard bytes.count > base.count, bytes.starts(with: base) else { return false }
        let rest = bytes[base.count...]
        // No wildcard, no NUL, no `..` level below the base.
        if rest.contains(where: { $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "#") || $0 == 0 }) { return false }
        return !rest.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
            .contains { $0.elementsEqual("..".utf8) }
    }

    public func training(_ modality: Modality) -> String { "\(prefix)/training/\(modality.rawValue)" }
    public var reviewFlagged: String { "\(prefix)/review/flagged" }
    public var deadLetter: String { "\(prefix)/deadletter" }
    /// A dataset's retained announcement of its latest version.
    public func dataset(_ name: String) -> String { "\(prefix)/datasets/\(name)" }
    public func status(_ instanceId: String) -> String { "\(prefix)/status/\(instanceId)" }
}
