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

    public func encoded() -> [UInt8] { json.serialized() }
}
