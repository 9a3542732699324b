import ArgumentParser
import Foundation
import Logging
import MorpheusCore
import MorpheusStorage
import Postgres

/// Fills a database with generated corrections through the service's own code (validation,
/// quality gate, training transform, the batch store), without a broker: the data that the
/// storage and dataset measurements run on (docs/performance.md).
struct Seeder: Sendable {
    let pool: PostgresPool
    let factory: CorrectionFactory
    /// Received times spread evenly over this many days before `end`.
    let days: Double
    let end: Date
    /// Distinct contributors; a few write most (quadratic skew), as in real editor populations.
    let contributors: Int

    /// Stores corrections `0..<count` in batches of 500 over `concurrency` connections.
    func seed(_ count: Int, concurrency: Int = 4, progress: @escaping @Sendable (Int) -> Void) async throws {
        let store = FeedbackStore(pool: pool, owner: "seeder", outboxLease: .zero)
        let transform = TrainingTransform(instructions: SystemInstructions())
        let pseudonymizer = Pseudonymizer(secret: Array("morpheus-seeder-secret".utf8))
        let gate = QualityGate()
        let batches = stride(from: 0, to: count, by: 500).map { $0..<min($0 + 500, count) }
        try await withThrowingTaskGroup(of: Int.self) { group in
            var next = 0, done = 0
            func add() {
                guard next < batches.count else { return }
                let range = batches[next]
                next += 1
                group.addTask {
                    var submissions: [Submission] = []
                    for sequence in range {
                        let received = end.addingTimeInterval(-days * 86_400 * Double(count - sequence) / Double(count))
                        // Deterministic skew: u² puts most corrections on the first contributors.
                        let u = Double((UInt64(sequence) &* 0x9E37_79B9_7F4A_7C15) >> 11) / Double(1 << 53)
                        let user = "seed-user-\(Int(u * u * Double(contributors)))"
                        let (modality, payload) = factory.correction(sequence: UInt64(sequence), connection: 0, user: user,
                                                                     occurredAt: RFC3339.format(received.addingTimeInterval(-30)))
                        guard case .valid(let correction) = CorrectionValidator().validate(payload, topicModality: modality, topicUserId: user, now: received)
                        else { throw ValidationError("generated correction \(sequence) is invalid") }
                        let verdict = gate.evaluate(correction, history: nil, record: nil)
                        if verdict.isHeld {
                            submissions.append(Submission(correction: correction, receivedAt: received, status: .flagged, flags: verdict.flags,
                                                          reasons: verdict.reasons, quality: verdict.quality, trainingExample: nil, events: []))
                        } else {
                            let example = transform.serializedExample(for: correction, quality: verdict.quality,
                                                                      contributor: pseudonymizer.pseudonym(for: user), createdAt: received)
                            submissions.append(Submission(correction: correction, receivedAt: received, status: .accepted, quality: verdict.quality,
                                                          trainingExample: SerializedExample(example), events: []))
                        }
                    }
                    _ = try await store.store(submissions, outcomes: [], deadLetters: [])
                    return submissions.count
                }
            }
            for _ in 0..<concurrency { add() }
            while let stored = try await group.next() {
                done += stored
                progress(done)
                add()
            }
        }
    }
}

/// `morpheus-bench seed`: N generated corrections into a database (migrated first).
struct SeedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "seed", abstract: "Store generated corrections directly (no broker), for measurements.")
    @Option(help: "PostgreSQL URL of the database to fill.") var databaseUrl: String
    @Option(help: "How many corrections.") var corrections = 100_000
    @Option(help: "Distinct contributors.") var contributors = 2000
    @Option(help: "Received times spread over this many days before now.") var days = 180.0

    func run() async throws {
        let pool = PostgresPool(configuration: try PostgresConfiguration(url: databaseUrl, applicationName: "morpheus-bench-seed"), size: 4)
        _ = try await Migrator.bundled().apply(to: pool, logger: Logger(label: "morpheus-bench"))
        let started = ContinuousClock.now
        try await Seeder(pool: pool, factory: CorrectionFactory(userCount: 1, nonce: RunCommand.nonce()), days: days, end: Date(),
                         contributors: contributors).seed(corrections) { done in
            if done % 50_000 < 500 { print("seeded \(done)") }
        }
        print("seeded \(corrections) corrections in \(ContinuousClock.now - started)")
        await pool.close()
    }
}

/// `morpheus-bench storage`: bytes per correction in PostgreSQL before and after the retention
/// policy archived every correction (table + indexes + TOAST; docs/privacy.md#retention).
struct StorageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "storage", abstract: "Bytes per correction before and after archiving.")
    @Option(help: "PostgreSQL URL of an existing database; the measurement creates its own database beside it.") var databaseUrl: String
    @Option(help: "Name of the measurement's database (dropped and created anew).") var storageDatabase = "morpheus_storage"
    @Option(help: "How many corrections.") var corrections = 100_000
    @Option(help: "Corrections per archive.") var archiveSize = 2000
    @Option(help: "The archives' compression: lz4 (the migration's) or pglz.") var compression = "lz4"

    func run() async throws {
        guard ["lz4", "pglz"].contains(compression) else { throw ValidationError("--compression lz4|pglz") }
        let url = try RunCommand.databaseURL(databaseUrl, replacingNameWith: storageDatabase)
        try RunCommand.recreateDatabase(adminURL: databaseUrl, name: storageDatabase)
        let pool = PostgresPool(configuration: try PostgresConfiguration(url: url, applicationName: "morpheus-bench-storage"), size: 4)
        _ = try await Migrator.bundled().apply(to: pool, logger: Logger(label: "morpheus-bench"))
        try await pool.withConnection { [compression] in try $0.query("ALTER TABLE feedback_archives ALTER COLUMN content SET COMPRESSION \(compression)") }
        let now = Date()
        try await Seeder(pool: pool, factory: CorrectionFactory(userCount: 1, nonce: RunCommand.nonce()), days: 30, end: now,
                         contributors: 2000).seed(corrections) { _ in }
        let tables = ["feedback", "training_examples", "feedback_archives"]
        func sizes() async throws -> [String: Int] {
            try await pool.withConnection { connection in
                // Rewritten tables: the space archiving freed is counted as freed (in production
                // autovacuum makes it reusable for new rows instead of returning it).
                for table in tables { try connection.execute(script: "VACUUM FULL ANALYZE \(table)") }
                var result: [String: Int] = [:]
                for table in tables {
                    result[table] = try connection.query("SELECT pg_total_relation_size($1::regclass) AS n", [table]).first!.decode("n", as: Int.self)
                }
                return result
            }
        }
        let before = try await sizes()
        let started = ContinuousClock.now
        let policy = RetentionPolicy(archiveAfterDaysInDataset: nil, archiveAfterDays: 1, deadLetterDays: nil, archiveSize: archiveSize)
        guard let report = try await RetentionStore(pool: PostgresPool(configuration: pool.configuration, size: 1)).run(policy, now: now.addingTimeInterval(40 * 86_400))
        else { throw ValidationError("the retention lock is held") }
        let took = ContinuousClock.now - started
        let after = try await sizes()
        func perCorrection(_ sizes: [String: Int]) -> String {
            let total = sizes.values.reduce(0, +)
            return "\(total / corrections) B/correction (" + tables.map { "\($0) \(sizes[$0] ?? 0)" }.joined(separator: ", ") + ")"
        }
        print("corrections: \(corrections), archived: \(report.archived) in \(report.archives) archives of \(archiveSize) (\(compression)) in \(took)")
        print("before: " + perCorrection(before))
        print("after:  " + perCorrection(after))
        print(String(format: "ratio after/before: %.3f; hot content %d B -> archives %d B (%.1fx)",
                     Double(after.values.reduce(0, +)) / Double(before.values.reduce(0, +)), report.hotContentBytes, report.archiveBytes,
                     Double(report.hotContentBytes) / Double(max(report.archiveBytes, 1))))
        await pool.close()
    }
}
