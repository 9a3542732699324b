import Foundation

/// What the service answers an editor (contract v1 `morpheus.receipt/1`).
public struct Receipt: Sendable, Equatable {
    public enum Status: String, Sendable {
        case accepted, flagged, duplicate, rejected
        /// For privacy requests.
        case applied
    }

    public static let schemaName = "morpheus.receipt/1"

    /// The correction's `feedbackId` (or a request's `requestId`), as sent, lower-cased; `nil`
    /// for a rejection of a message whose id could not be read (the request's Correlation Data
    /// names it then).
    public var feedbackId: String?
    public var status: Status
    public var flags: [String]
    /// Why a `flagged` correction went to expert review without a flag (``ReviewReason``);
    /// sent only when there is one.
    public var reviewReasons: [String] = []
    public var errors: [ValidationIssue]
    public var receivedAt: Date
    /// When the correction became durable; absent for `rejected`.
    public var committedAt: Date?
    /// For `duplicate`: what became of the first copy, and its id.
    public var originalStatus: Status?
    public var originalFeedbackId: String?
    /// For privacy requests: the rows the request touched, by kind.
    public var counts: [String: Int]?
    /// For privacy requests: the user's settings after it.
    public var settings: JSONValue?

    public init(
        feedbackId: String?, status: Status, flags: [String] = [], errors: [ValidationIssue] = [], receivedAt: Date,
        committedAt: Date? = nil, originalStatus: Status? = nil, originalFeedbackId: String? = nil
    ) {
        self.feedbackId = feedbackId
        self.status = status
        self.flags = flags
        self.errors = errors
        self.receivedAt = receivedAt
        self.committedAt = committedAt
        self.originalStatus = originalStatus
        self.originalFeedbackId = originalFeedbackId
    }

    public var json: JSONValue {
        .object([
            "schema": .string(Self.schemaName),
            "feedbackId": feedbackId.map(JSONValue.string),
            "status": .string(status.rawValue),
            "flags": .array(flags.map(JSONValue.string)),
            "reviewReasons": reviewReasons.isEmpty ? nil : .array(reviewReasons.map(JSONValue.string)),
            "errors": .array(errors.map(\.json)),
            "receivedAt": .string(RFC3339.format(receivedAt)),
            "committedAt": committedAt.map { .string(RFC3339.format($0)) },
            "originalStatus": originalStatus.map { .string($0.rawValue) },
            "originalFeedbackId": originalFeedbackId.map(JSONValue.string),
            "counts": counts.map { counts in .object(counts.sorted { $0.key < $1.key }.map { ($0.key, .number(Double($0.value))) }) },
            "settings": settings,
        ])
    }

    /// The bytes of ``json`` serialized. Receipts without errors or privacy parts (nearly all)
    /// are written directly, member by member in the same order, without building the tree.
    public func encoded() -> [UInt8] {
        guard errors.isEmpty, counts == nil, settings == nil else { return json.serialized() }
        var out: [UInt8] = []
        out.reserveCapacity(224)
        func strings(_ values: [String]) {
            out.append(UInt8(ascii: "["))
            for (index, value) in values.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                JSONValue.writeString(value, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        }
        out += #"{"schema":"morpheus.receipt/1""#.utf8
        if let feedbackId {
            out += #","feedbackId":"#.utf8
            JSONValue.writeString(feedbackId, to: &out)
        }
        out += #","status":""#.utf8
        out += status.rawValue.utf8
        out += #"","flags":"#.utf8
        strings(flags)
        if !reviewReasons.isEmpty {
            out += #","reviewReasons":"#.utf8
            strings(reviewReasons)
        }
        out += #","errors":[],"receivedAt":""#.utf8
        out += RFC3339.format(receivedAt).utf8
        out.append(UInt8(ascii: "\""))
        if let committedAt {
            out += #","committedAt":""#.utf8
            out += RFC3339.format(committedAt).utf8
            out.append(UInt8(ascii: "\""))
        }
        if let originalStatus {
            out += #","originalStatus":""#.utf8
            out += originalStatus.rawValue.utf8
            out.append(UInt8(ascii: "\""))
        }
        if let originalFeedbackId {
            out += #","originalFeedbackId":"#.utf8
            JSONValue.writeString(originalFeedbackId, to: &out)
        }
        out.append(UInt8(ascii: "}"))
        return out
    }
}
