import Foundation
import MorpheusCore
import MorpheusStorage

/// How a stored correction becomes a training example and its `training/{modality}` event, for
/// the paths outside the ingest: a reviewer's approval, and anonymization rebuilding examples.
public struct TrainingPublication: Sendable {
    public let transform: TrainingTransform
    public let pseudonymizer: Pseudonymizer
    public let topics: ContractTopics

    public init(configuration: ServiceConfiguration) {
        transform = TrainingTransform(instructions: configuration.systemInstructions)
        pseudonymizer = Pseudonymizer(secret: Array(configuration.pseudonymSecret.utf8))
        topics = ContractTopics(prefix: configuration.topicPrefix)
    }

    public init(transform: TrainingTransform, pseudonymizer: Pseudonymizer, topics: ContractTopics) {
        self.transform = transform
        self.pseudonymizer = pseudonymizer
        self.topics = topics
    }

    /// The example of `correction`, serialized once, and its event. `contributor`: the
    /// pseudonym the example names (by default that of the correction's user).
    public func example(for correction: Correction, quality: Double, contributor: String? = nil, createdAt: Date = Date())
        -> (example: SerializedExample, event: OutboxEvent) {
        let serialized = SerializedExample(transform.serializedExample(
            for: correction, quality: quality, contributor: contributor ?? pseudonymizer.pseudonym(for: correction.userId), createdAt: createdAt))
        return (serialized, OutboxEvent(topic: topics.training(correction.modality), payload: serialized.json))
    }

    /// For a reviewer's approval.
    public var approval: ReviewStore.Approval {
        { [self] correction, quality in example(for: correction, quality: quality) }
    }

    /// For anonymization: the corrections it passes are already under the pseudonym.
    public var rebuildAnonymized: ReviewStore.Approval {
        { [self] correction, quality in example(for: correction, quality: quality, contributor: correction.userId) }
    }
}
