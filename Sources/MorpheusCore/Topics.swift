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
        guard let responseTopic, responseTopic.hasPrefix(base + "/"), responseTopic.count > base.count + 1,
              !responseTopic.contains(where: { $0 == "+" || $0 == "#" || $0 == "\u{0}" }),
              !responseTopic.split(separator: "/", omittingEmptySubsequences: false).contains(where: { $0 == ".." })
        else { return base }
        return responseTopic
    }

    public func training(_ modality: Modality) -> String { "\(prefix)/training/\(modality.rawValue)" }
    public var reviewFlagged: String { "\(prefix)/review/flagged" }
    public var deadLetter: String { "\(prefix)/deadletter" }
    public func status(_ instanceId: String) -> String { "\(prefix)/status/\(instanceId)" }
}
