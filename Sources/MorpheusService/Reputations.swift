import Foundation
import MorpheusCore
import MorpheusStorage
import NIOConcurrencyHelpers

/// The reviewers' records of contributors, kept in memory for the quality score at capture
/// (a lookup per correction, no query): decisions are rare, so a periodic refresh of what
/// changed is enough.
final class Reputations: Sendable {
    private let records = NIOLockedValueBox<[String: ContributorRecord]>([:])
    /// The newest change read so far.
    private let lastChange = NIOLockedValueBox<Date?>(nil)

    func record(for user: String) -> ContributorRecord? { records.withLockedValue { $0[user] } }

    func merge(_ changed: [String: ContributorRecord]) {
        guard !changed.isEmpty else { return }
        records.withLockedValue { $0.merge(changed) { _, new in new } }
    }

    /// Reads the records changed since the last call (all of them the first time).
    func refresh(from store: ReviewStore) async throws {
        let since = lastChange.withLockedValue { $0 }
        let (changed, latest) = try await store.records(changedAfter: since)
        merge(changed)
        lastChange.withLockedValue { $0 = latest }
    }
}
