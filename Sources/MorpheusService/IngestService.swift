import Foundation
import Logging
import MQTT
import MorpheusCore
import MorpheusStorage
import NIOConcurrencyHelpers
import Postgres
import ServiceLifecycle

/// The ingest pipeline: batches from the shared subscription → validate → one transaction per
/// batch → receipts → PUBACKs (the batch's acknowledgement) → the batch's events to the outbox
/// publisher.
struct IngestService: Service {
    /// The consuming connection.
    let client: MQTTClient
    /// Receipts and events leave on this connection as soon as their chunk is committed.
    let publisher: MQTTClient
    let store: FeedbackStore
    let topics: ContractTopics
    let shareGroup: String
    let databaseReady: Readiness
    let board: StatusBoard
    let transform: TrainingTransform
    let pseudonymizer: Pseudonymizer
    let outbox: OutboxQueue
    let status: StatusPublisher
    /// The reviewers' records, for the quality score.
    var reputations = Reputations()
    let logger: Logger
    /// `nil`: the gate is off (benchmarks only): every valid correction is accepted.
    var gate: QualityGate? = QualityGate()
    /// Ready once the subscriptions are made (`/health/ready`).
    var consuming = Readiness()
    let validator = CorrectionValidator()

    func run() async throws {
        try await withGracefulShutdownHandler {
            try await consume()
        } onGracefulShutdown: { [status, logger] in
            // Operators see the drain at once; the batch in flight still completes.
            logger.info("draining")
            try? status.enqueue(.draining)
        }
        logger.info("ingest drained")
    }

    private func consume() async throws {
        try await cancelWhenGracefulShutdown {
            try await withThrowingTaskGroup(of: Void.self) { group in
                // Consume before subscribing: a resumed session delivers before its SUBACK.
                group.addTask {
                    for await batch in client.batches {
                        await handle(batch)
                    }
                }
                for filter in topics.sharedFilters(group: shareGroup) {
                    do {
                        try await client.subscribe(filter, qos: .atLeastOnce)
                    } catch is CancellationError {
                        // Shutdown before every SUBACK came (on a resumed session they queue
                        // behind the backlog): the broker keeps the subscriptions anyway.
                        return
                    }
                }
                consuming.markReady()
                logger.info("consuming", metadata: ["group": "\(shareGroup)"])
                try await group.next()
            }
        }
    }

    /// One reply to send after the commit.
    private struct Reply {
        var topic: String
        var correlationData: [UInt8]?
        var receipt: Receipt
        var receivedAt: ContinuousClock.Instant
    }

    /// Messages of one batch that are validated together and committed in one transaction.
    private struct Chunk {
        var submissions: [Submission] = []
        var submissionReplies: [Reply] = []
        var replies: [Reply] = []
        var deadLetters: DeadLetters = []
        var outcomes: Outcomes = []
        var outcomeReplies: [Reply?] = []
        var privacy: [PrivacyWork] = []
        var privacyReplies: [Reply] = []
    }

    /// A large batch is split into this many chunks at most, committed concurrently on separate
    /// connections while the next chunk is validated: the service's CPU work and PostgreSQL's
    /// overlap instead of taking turns. Chunks are never smaller than `minimumChunk`, so light
    /// load keeps one transaction per batch.
    var maxChunks = 4
    var minimumChunk = 64

    /// How handling (part of) a batch ended.
    private enum Completion: Equatable {
        /// Committed and answered.
        case done
        /// Not committed before the batch's deadline: give it back to the broker.
        case released
        /// Shutdown interrupted it: acknowledge nothing, the broker redelivers it.
        case stopped
    }

    /// Handles a batch completely and acknowledges it; gives it back unacknowledged when it
    /// cannot be committed before its deadline (the database is down longer than the
    /// connection may stay silent); leaves it unacknowledged when the service shuts down
    /// first. Either way the broker delivers it again: nothing is answered as the editor's
    /// fault for the service's own trouble.
    func handle(_ batch: MQTTBatch) async {
        do {
            try await databaseReady.wait()
        } catch {
            return
        }
        let now = Date()
        board.count { $0.received += batch.messages.count }
        let messages = batch.messages
        let chunkSize = max(minimumChunk, (messages.count + maxChunks - 1) / maxChunks)
        let completions = await withTaskGroup(of: Completion.self) { group in
            for start in stride(from: 0, to: messages.count, by: chunkSize) {
                let chunk = prepare(messages[start..<min(start + chunkSize, messages.count)], now: now)
                group.addTask { await complete(chunk, until: batch.deadline) }
            }
            return await group.reduce(into: Set<Completion>()) { $0.insert($1) }
        }
        if completions == [.done] || completions.isEmpty {
            batch.acknowledge()
        } else if !completions.contains(.stopped) {
            board.released()
            logger.warning("database still unavailable at the batch's deadline; giving the batch back to the broker",
                           metadata: ["messages": "\(messages.count)"])
            batch.release()
        }
    }

    /// Validates messages and decides everything about them that does not need the database.
    private func prepare(_ messages: ArraySlice<MQTTMessage>, now: Date) -> Chunk {
        var chunk = Chunk()
        for message in messages {
            let arrived = ContinuousClock.now
            func reply(_ topic: String, _ id: String?, _ status: Receipt.Status, _ errors: [ValidationIssue] = []) -> Reply {
                Reply(topic: topic, correlationData: message.properties.correlationData,
                      receipt: Receipt(feedbackId: id, status: status, errors: errors, receivedAt: now), receivedAt: arrived)
            }
            func deadLetter(_ reason: String) {
                // With the topic's user: nothing of an opted-out user's message is kept.
                let user = topics.route(message.topic)?.userId
                chunk.deadLetters.append((DeadLetter(topic: message.topic, reason: reason, receivedAt: now, payload: message.payload,
                                                     userId: user.flatMap { CorrectionValidator.isUserId($0) ? $0 : nil }), topics.deadLetter))
            }
            /// A message whose id cannot be read is still answered when it asked for the answer
            /// inside its sender's reply space (its Correlation Data names the request); only
            /// what cannot be answered at all is a dead letter.
            func rejectUnidentified(_ userId: String, field: String, _ issues: [ValidationIssue]) {
                if let responseTopic = message.properties.responseTopic, topics.isInReplySpace(responseTopic, of: userId) {
                    let pointer = JSONPointer([field])
                    let unreadable = issues.contains { $0.path == pointer || $0.path.tokens.isEmpty }
                        ? issues : [ValidationIssue(pointer, .missingField, "no readable \(field)")] + issues
                    chunk.replies.append(reply(responseTopic, nil, .rejected, unreadable))
                } else {
                    deadLetter("no readable \(field): \(issues.first?.code.rawValue ?? "invalid")")
                }
            }
            guard let route = topics.route(message.topic) else {
                deadLetter("unknown topic")
                continue
            }
            switch route {
            case let .correction(modality, userId):
                guard CorrectionValidator.isUserId(userId) else { deadLetter("the topic names no valid user id"); continue }
                let replyTopic = topics.replyTopic(for: userId, responseTopic: message.properties.responseTopic)
                switch validator.validate(message.payload, topicModality: modality, topicUserId: userId, now: now) {
                case .valid(let correction):
                    chunk.submissions.append(submission(for: correction, receivedAt: now))
                    chunk.submissionReplies.append(reply(replyTopic, correction.feedbackId, .accepted))
                case .invalid(let issues):
                    guard let id = MessageIdentity.id(in: message.payload, field: "feedbackId") else {
                        rejectUnidentified(userId, field: "feedbackId", issues)
                        continue
                    }
                    chunk.replies.append(reply(replyTopic, id, .rejected, issues))
                }
            case let .privacy(userId):
                guard CorrectionValidator.isUserId(userId) else { deadLetter("the topic names no valid user id"); continue }
                guard let id = MessageIdentity.id(in: message.payload, field: "requestId") else {
                    rejectUnidentified(userId, field: "requestId", [])
                    continue
                }
                let replyTopic = topics.replyTopic(for: userId, responseTopic: message.properties.responseTopic)
                switch validator.validatePrivacy(message.payload, topicUserId: userId) {
                case .valid(let request):
                    chunk.privacy.append(PrivacyWork(request: request, requestedBy: "user", subject: pseudonymizer.pseudonym(for: request.userId),
                                                     topics: topics, rebuild: publication.rebuildAnonymized))
                    chunk.privacyReplies.append(reply(replyTopic, request.requestId, .applied))
                case .invalid(let issues):
                    chunk.replies.append(reply(replyTopic, id, .rejected, issues))
                }
            case let .outcome(modality, userId):
                guard CorrectionValidator.isUserId(userId) else { deadLetter("the topic names no valid user id"); continue }
                // Outcomes are answered only when they ask for it with a response topic.
                let replyTopic = message.properties.responseTopic.map { topics.replyTopic(for: userId, responseTopic: $0) }
                switch validator.validateOutcome(message.payload, topicModality: modality, topicUserId: userId, now: now) {
                case .valid(let outcome):
                    chunk.outcomes.append((outcome, now))
                    chunk.outcomeReplies.append(replyTopic.map { reply($0, outcome.outcomeId, .accepted) })
                case .invalid(let issues):
                    guard let id = MessageIdentity.id(in: message.payload, field: "outcomeId") else {
                        rejectUnidentified(userId, field: "outcomeId", issues)
                        continue
                    }
                    if let replyTopic {
                        chunk.replies.append(reply(replyTopic, id, .rejected, issues))
                    } else {
                        board.count { $0.rejected += 1 }
                    }
                }
            }
        }
        return chunk
    }

    /// Commits a chunk, then queues its receipts and events. Nothing of the chunk is answered
    /// unless it was committed.
    private func complete(_ chunk: Chunk, until deadline: ContinuousClock.Instant) async -> Completion {
        let results: Committed
        switch await commit(chunk.submissions, outcomes: chunk.outcomes, deadLetters: chunk.deadLetters, privacy: chunk.privacy, until: deadline) {
        case .committed(let committed): results = committed
        case .released: return .released
        case .stopped: return .stopped
        }
        var replies = chunk.replies
        for (index, result) in results.outcomes.enumerated() {
            guard var reply = chunk.outcomeReplies[index] else {
                if case .stored = result { board.count { $0.accepted += 1 } }
                continue
            }
            reply.receipt.apply(result, status: .accepted, flags: [], reasons: [])
            replies.append(reply)
        }
        for (index, result) in results.corrections.enumerated() {
            var reply = chunk.submissionReplies[index]
            // As stored: the history rules may have held it for review inside the transaction.
            let stored = results.submissions.indices.contains(index) ? results.submissions[index] : chunk.submissions[index]
            reply.receipt.apply(result, status: stored.status, flags: stored.flags, reasons: stored.reasons)
            replies.append(reply)
        }
        for (index, answer) in results.privacy.enumerated() where chunk.privacyReplies.indices.contains(index) {
            var reply = chunk.privacyReplies[index]
            reply.receipt.apply(answer)
            replies.append(reply)
        }
        send(replies)
        board.deadLettered(results.deadLettered)
        // The committed events go out with the receipts; the outbox publisher awaits their
        // acknowledgements before it forgets the batch.
        for events in results.outbox {
            outbox.submit(events, publisher.startPublishing(OutboxPublisher.messages(events)))
        }
        return .done
    }

    /// Runs the quality gate: a flagged correction is stored for review, an accepted one with
    /// its training example.
    private func submission(for correction: Correction, receivedAt: Date) -> Submission {
        // What the correction shows on its own; the history rules (burst, repeated_content, a
        // contributor's first corrections, a widely seen generation) are applied against
        // PostgreSQL inside the batch's transaction (`holdForReview`).
        let verdict = gate?.evaluate(correction, history: nil, record: reputations.record(for: correction.userId)) ?? QualityVerdict()
        if verdict.isHeld { return held(correction, receivedAt: receivedAt, verdict: verdict) }
        // Serialized once: the same bytes are stored and published.
        let (example, event) = publication.example(for: correction, quality: verdict.quality, createdAt: receivedAt)
        return Submission(correction: correction, receivedAt: receivedAt, status: .accepted, quality: verdict.quality,
                          trainingExample: example, events: [event])
    }

    private func held(_ correction: Correction, receivedAt: Date, verdict: QualityVerdict) -> Submission {
        let item = ReviewItem.json(for: correction, verdict: verdict, flaggedAt: receivedAt)
        return Submission(correction: correction, receivedAt: receivedAt, status: .flagged, flags: verdict.flags, reasons: verdict.reasons,
                          quality: verdict.quality, trainingExample: nil, events: [OutboxEvent(topic: topics.reviewFlagged, json: item)])
    }

    private var publication: TrainingPublication {
        TrainingPublication(transform: transform, pseudonymizer: pseudonymizer, topics: topics)
    }

    /// The feedback of a user who asked to be anonymized, as stored: under the pseudonym, with
    /// personal data scrubbed and the training example (or review item) built from that.
    private var captureAnonymizer: CaptureAnonymizer {
        CaptureAnonymizer(pseudonym: { [pseudonymizer] in pseudonymizer.pseudonym(for: $0) }) { [self] submission in
            let pseudonym = pseudonymizer.pseudonym(for: submission.correction.userId)
            let clean = submission.correction.anonymized(as: pseudonym)
            guard submission.status == .accepted else {
                return held(clean, receivedAt: submission.receivedAt,
                            verdict: QualityVerdict(flags: submission.flags, quality: submission.quality, reasons: submission.reasons))
            }
            let (example, event) = publication.example(for: clean, quality: submission.quality, contributor: pseudonym, createdAt: submission.receivedAt)
            return Submission(correction: clean, receivedAt: submission.receivedAt, status: .accepted, quality: submission.quality,
                              trainingExample: example, events: [event])
        }
    }

    /// A submission the history rules held: for review with every flag and reason it has.
    private var holdForReview: HistoryJudge? {
        guard let gate else { return nil }
        return HistoryJudge(policy: gate.expertReview) { [self] submission, flags, reasons in
            let all = Set(submission.flags + flags).compactMap(FlagCode.init(rawValue:))
            // A new flag caps the quality; new reasons alone leave it as it was.
            let quality = all.count == submission.flags.count ? submission.quality
                : QualityScore.score(GateInput(submission.correction), flags: Set(all), record: reputations.record(for: submission.correction.userId))
            let allReasons = Set(submission.reasons + reasons).compactMap(ReviewReason.init(rawValue:))
            return held(submission.correction, receivedAt: submission.receivedAt,
                        verdict: QualityVerdict(flags: all.sorted().map(\.rawValue), quality: quality, reasons: allReasons.sorted().map(\.rawValue)))
        }
    }

    enum CommitResult: Equatable {
        case stored(Date), duplicate(String, Receipt.Status, Date), conflict, refused(RejectionCode, String)
    }

    /// What committing a batch came to: results in order and the events to publish.
    struct Committed {
        var corrections: [CommitResult]
        var outcomes: [CommitResult]
        var outbox: [OutboxBatch]
        /// Dead letters stored for the first time (a redelivered one is stored once).
        var deadLettered = 0
        /// The corrections as stored (the history rules may have held some for review).
        var submissions: [Submission] = []
        var privacy: [PrivacyAnswer] = []
    }

    enum PrivacyAnswer: Equatable {
        case done(PrivacyResult), refused(RejectionCode, String)
    }

    private enum Attempt {
        case committed(Committed), released, stopped
    }

    typealias Outcomes = [(outcome: Outcome, receivedAt: Date)]
    typealias DeadLetters = [(letter: DeadLetter, eventTopic: String)]

    /// Commits, retrying with backoff through the service's own trouble until `deadline`;
    /// isolates rows whose content the database refuses so their batch-mates are stored
    /// (``StoreFailure`` decides which failure is which).
    private func commit(_ submissions: [Submission], outcomes: Outcomes, deadLetters: DeadLetters, privacy: [PrivacyWork] = [],
                        until deadline: ContinuousClock.Instant) async -> Attempt {
        var attempt = 0
        while true {
            let failure: StoreFailure
            do {
                let started = ContinuousClock.now
                let stored = try await store.store(submissions, outcomes: outcomes, deadLetters: deadLetters, judge: holdForReview, privacy: privacy,
                                                   anonymizer: captureAnonymizer)
                board.committed(messages: submissions.count + outcomes.count + deadLetters.count + privacy.count, in: ContinuousClock.now - started)
                board.databaseAvailable()
                return .committed(Committed(corrections: stored.corrections.map(CommitResult.init), outcomes: stored.outcomes.map(CommitResult.init),
                                            outbox: stored.outbox.map { [$0] } ?? [], deadLettered: stored.deadLettered,
                                            submissions: stored.submissions, privacy: stored.privacy.map(PrivacyAnswer.done)))
            } catch {
                failure = StoreFailure(error)
            }
            switch failure {
            case .cancelled:
                return .stopped
            case let .contentRefused(code, message):
                board.databaseAvailable()
                guard submissions.count + outcomes.count + deadLetters.count + privacy.count > 1 else {
                    logger.error("row refused by the database", metadata: [
                        "error": "\(message)", "feedbackId": "\(submissions.first?.correction.feedbackId ?? outcomes.first?.outcome.outcomeId ?? "-")",
                    ])
                    let rejection = RejectionCode(rawValue: code) ?? .invalidValue, reason = "the database refused this value: \(message)"
                    let refused = CommitResult.refused(rejection, reason)
                    return .committed(Committed(corrections: submissions.map { _ in refused }, outcomes: outcomes.map { _ in refused }, outbox: [],
                                                submissions: submissions, privacy: privacy.map { _ in .refused(rejection, reason) }))
                }
                logger.error("batch refused; storing its rows one by one", metadata: ["error": "\(message)"])
                return await commitIndividually(submissions, outcomes: outcomes, deadLetters: deadLetters, privacy: privacy, until: deadline)
            case .transient(let reason):
                board.databaseFailed(reason)
                if Task.isCancelled { return .stopped }
                let delay = MQTTClientConfiguration.Backoff(initial: .milliseconds(100), maximum: .seconds(5)).delay(attempt: attempt)
                attempt += 1
                if ContinuousClock.now + delay >= deadline { return .released }
                logger.warning("cannot store; holding the batch and retrying", metadata: ["error": "\(reason)", "retryIn": "\(delay)"])
                do { try await Task.sleep(for: delay) } catch { return .stopped }
            }
        }
    }

    /// Stores each row in a transaction of its own, so one refused row fails alone.
    private func commitIndividually(_ submissions: [Submission], outcomes: Outcomes, deadLetters: DeadLetters, privacy: [PrivacyWork],
                                    until deadline: ContinuousClock.Instant) async -> Attempt {
        var all = Committed(corrections: [], outcomes: [], outbox: [])
        func one(_ submissions: [Submission], _ outcomes: Outcomes, _ deadLetters: DeadLetters, _ privacy: [PrivacyWork] = []) async -> Attempt? {
            switch await commit(submissions, outcomes: outcomes, deadLetters: deadLetters, privacy: privacy, until: deadline) {
            case .committed(let result):
                all.corrections += result.corrections
                all.submissions += result.submissions
                all.outcomes += result.outcomes
                all.outbox += result.outbox
                all.deadLettered += result.deadLettered
                all.privacy += result.privacy
                return nil
            case let other:
                return other
            }
        }
        for letter in deadLetters { if let stop = await one([], [], [letter]) { return stop } }
        for submission in submissions { if let stop = await one([submission], [], []) { return stop } }
        for outcome in outcomes { if let stop = await one([], [outcome], []) { return stop } }
        // Privacy requests first would change what the corrections above met; they come last,
        // in their order, as the batch would have applied them had it committed whole.
        for work in privacy { if let stop = await one([], [], [], [work]) { return stop } }
        return .committed(all)
    }

    private func send(_ replies: [Reply]) {
        for reply in replies {
            do {
                try publisher.enqueue(MQTTOutgoingMessage(
                    topic: reply.topic, payload: reply.receipt.encoded(), qos: .atLeastOnce,
                    properties: MQTTPublishProperties(correlationData: reply.correlationData, contentType: "application/json", payloadIsUTF8: true)
                ))
            } catch {
                logger.warning("receipt not sent", metadata: ["feedbackId": "\(reply.receipt.feedbackId ?? "-")", "error": "\(error)"])
            }
            let elapsed = ContinuousClock.now - reply.receivedAt
            board.record(latency: elapsed, status: reply.receipt.status)
            logger.debug("answered", metadata: ["feedbackId": "\(reply.receipt.feedbackId ?? "-")", "status": "\(reply.receipt.status.rawValue)",
                                                "topic": "\(reply.topic)"])
        }
    }
}

extension Receipt {
    /// Completes a receipt from what storing its message came to.
    mutating func apply(_ result: IngestService.CommitResult, status stored: Receipt.Status, flags storedFlags: [String], reasons: [String]) {
        switch result {
        case .stored(let committedAt):
            status = stored
            flags = storedFlags
            reviewReasons = reasons
            self.committedAt = committedAt
        case let .duplicate(originalId, originalStatus, committedAt):
            status = .duplicate
            originalFeedbackId = originalId
            self.originalStatus = originalStatus
            self.committedAt = committedAt
        case .conflict:
            status = .rejected
            errors = [ValidationIssue("", .idempotencyConflict, "this id is stored with different content")]
        case let .refused(code, reason):
            status = .rejected
            errors = [ValidationIssue("", code, reason)]
        }
    }

    /// Completes the receipt of a privacy request.
    mutating func apply(_ answer: IngestService.PrivacyAnswer) {
        switch answer {
        case let .done(.applied(counts, settings, appliedAt)):
            status = .applied
            self.counts = counts
            self.settings = settings.json
            committedAt = appliedAt
        case .done(.conflict):
            status = .rejected
            errors = [ValidationIssue("", .idempotencyConflict, "this requestId was used for another request")]
        case let .refused(code, reason):
            status = .rejected
            errors = [ValidationIssue("", code, reason)]
        }
    }
}

extension IngestService.CommitResult {
    init(_ result: StoreResult) {
        switch result {
        case .stored(let at): self = .stored(at)
        case let .duplicate(id, status, at): self = .duplicate(id, status, at)
        case .conflict: self = .conflict
        case .optedOut: self = .refused(.optedOut, "you have opted out: nothing of this message was stored")
        }
    }
}
