import Foundation
import Logging
import MorpheusCore
import MorpheusStorage
import NIOConcurrencyHelpers
import ServiceLifecycle

/// The reviewers' records of contributors, kept in memory for the quality score at capture
/// (a lookup per correction, no query): decisions are rare, so a periodic refresh of what
/// changed is enough.
final class Reputations: Sendable {
    private let records = NIOLockedValueBox<[String: ContributorRecord]>([:])

    func record(for user: String) -> ContributorRecord? { records.withLockedValue { $0[user] } }

    func merge(_ changed: [String: ContributorRecord]) {
        guard !changed.isEmpty else { return }
        records.withLockedValue { $0.merge(changed) { _, new in new } }
    }
}

/// Refreshes ``Reputations`` from `contributor_reputation` every `interval`.
struct ReputationService: Service {
    let store: ReviewStore
    let reputations: Reputations
    let databaseReady: Readiness
    let interval: Duration
    let logger: Logger

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            try await databaseReady.wait()
            var since: Date?
            while true {
                do {
                    let (changed, latest) = try await store.records(changedAfter: since)
                    reputations.merge(changed)
                    since = latest
                } catch {
                    logger.warning("contributor records not refreshed; trying again later", metadata: ["error": "\(error)"])
                }
                try await Task.sleep(for: interval)
            }
        }
    }
}
