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

    ///
    /// On UTF-8 bytes, as the broker matched the subscription (see `isInReplySpace`).
    public func route(_ topic: String) -> Route? {
        Bytes.with(prefix) { prefix in
            Bytes.with(topic) { bytes -> Route? in
                guard bytes.count > prefix.count, bytes[prefix.count] == UInt8(ascii: "/"),
                      UnsafeBufferPointer(rebasing: bytes[..<prefix.count]).elementsEqual(prefix) else { return nil }
                // The levels below the prefix, as byte ranges.
                var levels: [Range<Int>] = []
                var start = prefix.count + 1
                for index in start..<bytes.count where bytes[index] == UInt8(ascii: "/") {
                    if levels.count == 3 { return nil }
                    levels.append(start..<index)
                    start = index + 1
                }
                levels.append(start..<bytes.count)
                func level(_ number: Int) -> String { String(decoding: UnsafeBufferPointer(rebasing: bytes[levels[number]]), as: UTF8.self) }
                func first(is name: StaticString) -> Bool {
                    UnsafeBufferPointer(rebasing: bytes[levels[0]]).elementsEqual(UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
                }
                switch levels.count {
                case 3 where first(is: "corrections"): return .correction(modality: level(1), userId: level(2))
                case 3 where first(is: "outcomes"): return .outcome(modality: level(1), userId: level(2))
                case 2 where first(is: "privacy"): return .privacy(userId: level(1))
                default: return nil
                }
            }
        }
    }

    /// Where a receipt for `userId` goes: the request's response topic only when it lies below
    /// `replies/{userId}/` and names one concrete topic; otherwise `replies/{userId}`. The
    /// service never publishes to a topic a client chose outside its own reply space.
    public func replyTopic(for userId: String, responseTopic: String?) -> String {
        guard let responseTopic, isInReplySpace(responseTopic, of: userId) else { return "\(prefix)/replies/\(userId)" }
        return responseTopic
    }

    /// Whether `topic` is one concrete topic strictly below `replies/{userId}/`.
    ///
    /// Compared as UTF-8 bytes, as the broker compares topics: `String` comparison goes by
    /// canonical equivalence, under which a Kelvin sign (U+212A) equals `K` and a `+` followed
    /// by a combining mark is not `+`.
    public func isInReplySpace(_ topic: String, of userId: String) -> Bool {
        Bytes.with(topic) { bytes in
            // `{prefix}/replies/{userId}/`, compared piece by piece.
            var position = 0
            func skip(_ piece: String) -> Bool {
                Bytes.with(piece) { piece in
                    guard bytes.count - position >= piece.count,
                          UnsafeBufferPointer(rebasing: bytes[position..<(position + piece.count)]).elementsEqual(piece) else { return false }
                    position += piece.count
                    return true
                }
            }
            guard skip(prefix), skip("/replies/"), skip(userId), skip("/"), position < bytes.count else { return false }
            // No wildcard, no NUL, no `..` level below the base.
            var levelStart = position
            for index in position...bytes.count {
                if index == bytes.count || bytes[index] == UInt8(ascii: "/") {
                    if index - levelStart == 2, bytes[levelStart] == UInt8(ascii: "."), bytes[levelStart + 1] == UInt8(ascii: ".") { return false }
                    levelStart = index + 1
                    continue
                }
                let byte = bytes[index]
                if byte == UInt8(ascii: "+") || byte == UInt8(ascii: "#") || byte == 0 { return false }
            }
            return true
        }
    }

    public func training(_ modality: Modality) -> String { "\(prefix)/training/\(modality.rawValue)" }
    public var reviewFlagged: String { "\(prefix)/review/flagged" }
    public var deadLetter: String { "\(prefix)/deadletter" }
    /// A dataset's retained announcement of its latest version.
    public func dataset(_ name: String) -> String { "\(prefix)/datasets/\(name)" }
    public func status(_ instanceId: String) -> String { "\(prefix)/status/\(instanceId)" }
}
