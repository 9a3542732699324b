import Foundation

/// Runs the quality gate over a file of corrections, as `morpheus gate evaluate` does: the
/// same validator and gate as the service, with the history-dependent rules replayed in
/// `occurredAt` order against an ``InMemoryHistory``.
public enum OfflineEvaluation {
    public struct Result: Sendable, Equatable {
        public var feedbackId: String?
        public var status: Receipt.Status
        public var flags: [String]
        public var quality: Double?
        public var errors: [ValidationIssue]
        public var reasons: [String] = []

        public var json: JSONValue {
            var members: [(key: String, value: JSONValue)] = [
                ("feedbackId", feedbackId.map(JSONValue.string) ?? .null), ("status", .string(status.rawValue)),
                ("flags", .array(flags.map(JSONValue.string))),
            ]
            if !reasons.isEmpty { members.append(("reviewReasons", .array(reasons.map(JSONValue.string)))) }
            if let quality { members.append(("quality", .number((quality * 1000).rounded() / 1000))) }
            if !errors.isEmpty { members.append(("errors", .array(errors.map(\.json)))) }
            return .object(members)
        }
    }

    /// One result per line, in the file's order. A line is a labelled record
    /// (`{"correction": {…}, …}`) or a bare correction. Validation uses `now`, or else the
    /// latest `occurredAt` of the file, and no age limit (a file of last month still counts).
    public static func evaluate(lines: [String], now: Date? = nil, gate: QualityGate = QualityGate()) -> [Result] {
        var validator = CorrectionValidator()
        validator.maxAge = .greatestFiniteMagnitude
        var documents: [(payload: [UInt8], document: JSONValue?)] = []
        for line in lines where !line.allSatisfy(\.isWhitespace) {
            var parser = JSONParser(bytes: Array(line.utf8))
            let parsed = try? parser.parse()
            if case .object? = parsed?["correction"], let inner = parsed?["correction"] {
                documents.append((inner.serialized(), inner))
            } else {
                documents.append((Array(line.utf8), parsed))
            }
        }
        let reference = now ?? documents.compactMap { entry -> Date? in
            guard case .string(let text)? = entry.document?["occurredAt"] else { return nil }
            return RFC3339.parse(text)
        }.max() ?? Date()

        var results = [Result?](repeating: nil, count: documents.count)
        var valid: [(index: Int, correction: Correction)] = []
        for (index, entry) in documents.enumerated() {
            func claimed(_ field: String) -> String {
                if case .string(let text)? = entry.document?[field] { return text }
                return ""
            }
            switch validator.validate(entry.payload, topicModality: claimed("modality"), topicUserId: claimed("userId"), now: reference) {
            case .valid(let correction):
                valid.append((index, correction))
            case .invalid(let issues):
                results[index] = Result(feedbackId: MessageIdentity.id(in: entry.payload, field: "feedbackId"), status: .rejected,
                                        flags: [], quality: nil, errors: issues)
            }
        }
        // Replay in occurrence order (stable for equal times, as the file lists them).
        var history = InMemoryHistory()
        for (index, correction) in valid.sorted(by: { ($0.correction.occurredAt, $0.index) < ($1.correction.occurredAt, $1.index) }) {
            let verdict = gate.evaluate(correction, history: history)
            history.record(HistoryEntry(correction))
            results[index] = Result(feedbackId: correction.feedbackId, status: verdict.isHeld ? .flagged : .accepted,
                                    flags: verdict.flags, quality: verdict.quality, errors: [], reasons: verdict.reasons)
        }
        return results.compactMap { $0 }
    }
}
