import Foundation
import MorpheusCore
import MorpheusStorage
import Postgres
import Testing
import TestSupport

/// The retention policy against PostgreSQL, on a clock the tests set: which corrections are
/// archived when, what stays in the hot rows, restores, and privacy requests reaching archives.
@Suite("Retention against PostgreSQL")
struct RetentionStoreTests {
    let base = FeedbackStoreTests()
    let privacy = PrivacyStoreTests()
    let day: TimeInterval = 86_400

    func days(_ count: Double) -> Date { FeedbackStoreTests.received.addingTimeInterval(count * day) }

    /// The content columns of a correction and its example, as text (nil once archived).
    func content(_ feedbackId: String, _ pool: PostgresPool) async throws -> [String?] {
        try await pool.withConnection { connection in
            let row = try connection.query("""
                SELECT f.prompt, f.original::text AS original, f.corrected::text AS corrected, t.body::text AS body, f.archive_id::text AS archive
                FROM feedback f LEFT JOIN training_examples t USING (feedback_id) WHERE f.feedback_id = $1::uuid
                """, [feedbackId]).first!
            return try ["prompt", "original", "corrected", "body", "archive"].map { try row.decodeIfPresent($0, as: String.self) }
        }
    }

    /// Rows holding `text` in the hot tables (feedback, training examples) and in archives.
    /// (Unpublished outbox events hold example bytes too, until the publisher deletes them.)
    func hotAndArchived(_ text: String, _ pool: PostgresPool) async throws -> [Int] {
        let tables = try await ScratchDatabase.tables(containing: text, pool)
        return [(tables["feedback"] ?? 0) + (tables["training_examples"] ?? 0), tables["feedback_archives"] ?? 0]
    }

    /// Every archive's content hashes to its manifest's sha256 and holds row_count lines.
    func archivesAreConsistent(_ pool: PostgresPool) async throws -> Bool {
        try await pool.withConnection { connection in
            try connection.query("""
                SELECT bool_and(sha256 = encode(sha256(convert_to(content, 'UTF8')), 'hex')
                                AND row_count = cardinality(string_to_array(content, E'\\n'))) AS ok FROM feedback_archives
                """).first!.decodeIfPresent("ok", as: Bool.self) ?? true
        }
    }

    @Test("content is archived by the policy's two rules on the test's clock; the hot row keeps its metadata; reviews wait; dead letters expire; a dry run predicts the run")
    func policyOnAClock() async throws {
        try await base.withStore { store, pool in
            let inDataset = try (0..<3).map { try privacy.correction(user: "writer.a", text: "MARA: Trained line \($0).") }
            let notInDataset = try (0..<2).map { try privacy.correction(user: "writer.b", text: "MARA: Untrained line \($0).") }
            let waiting = try privacy.correction(user: "writer.c", text: "MARA: Waiting for a reviewer.")
            let held = Submission(correction: waiting.correction, receivedAt: waiting.receivedAt, status: .flagged, flags: ["pii"], quality: 0.2,
                                  trainingExample: nil, events: [])
            let letter = DeadLetter(topic: "morpheus/v1/corrections/text/writer.d", reason: "no readable feedbackId",
                                    receivedAt: FeedbackStoreTests.received, payload: Array("{}".utf8), userId: "writer.d")
            _ = try await store.store(inDataset + notInDataset + [held], outcomes: [], deadLetters: [(letter, "morpheus/v1/deadletter")])
            let before = try await content(inDataset[0].correction.feedbackId, pool)
            // In a dataset version: lineage rows as a build writes them.
            try await pool.withConnection { connection in
                let id = try connection.query("""
                    INSERT INTO training_datasets (name, version, modality, format, parameters, sha256, example_count, location)
                    VALUES ('d', 1, 'text', 'sft', '{}', '', 3, 'file:///tmp/d') RETURNING id
                    """).first!.decode("id", as: Int.self)
                try connection.query("""
                    INSERT INTO dataset_examples (dataset_id, example_id, feedback_id, split)
                    SELECT $1, gen_random_uuid(), unnest($2::text[]::uuid[]), 'train'
                    """, [id, inDataset.map(\.correction.feedbackId)])
            }
            let retention = RetentionStore(pool: pool)
            let policy = RetentionPolicy(archiveAfterDaysInDataset: 90, archiveAfterDays: 365, deadLetterDays: 30, archiveSize: 2)

            // Day 29: nothing is due.
            let early = try #require(try await retention.run(policy, now: days(29)))
            #expect(early.archived == 0 && early.deadLetters == 0)

            // Day 31: the dead letter goes; content stays.
            #expect(try await retention.plan(policy, now: days(31)).deadLetters == 1)
            #expect(try #require(try await retention.run(policy, now: days(31))).deadLetters == 1)
            #expect(try await base.count(pool, "SELECT count(*) FROM dead_letters") == 0)

            // Day 91: what reached a dataset is archived, two per archive.
            let planned = try await retention.plan(policy, now: days(91))
            #expect(planned.archivedInDataset == 3 && planned.archivedByAge == 0 && planned.archives == 2 && planned.dryRun)
            let ran = try #require(try await retention.run(policy, now: days(91)))
            #expect(ran.archivedInDataset == 3 && ran.archivedByAge == 0 && ran.archives == 2)
            #expect(ran.hotContentBytes == planned.hotContentBytes && ran.hotContentBytes > 0 && ran.archiveBytes > 0)
            for submission in inDataset {
                let archived = try await content(submission.correction.feedbackId, pool)
                #expect(archived[0..<4].allSatisfy { $0 == nil } && archived[4] != nil, "hot content gone, the row points at its archive")
            }
            #expect(try await base.count(pool, "SELECT count(*) FROM feedback WHERE archive_id IS NOT NULL AND model IS NOT NULL AND quality IS NOT NULL") == 3)
            #expect(try await hotAndArchived("Trained line 1", pool) == [0, 1])
            #expect(try await archivesAreConsistent(pool))
            // A second run at the same instant finds nothing more.
            #expect(try #require(try await retention.run(policy, now: days(91))).archived == 0)

            // Day 366: the rest by age, except what a reviewer has not decided.
            #expect(try #require(try await retention.run(policy, now: days(366))).archivedByAge == 2)
            #expect(try await content(waiting.correction.feedbackId, pool)[2] != nil)
            #expect(try await base.count(pool, "SELECT count(*) FROM feedback_archives") == 3)

            // A restore puts back exactly what was there and drops the emptied archive.
            let archiveColumn = try await content(inDataset[0].correction.feedbackId, pool)[4]
            let archive = try #require(archiveColumn.flatMap { Int($0) })
            let restored = try await retention.restore(archive: archive)
            #expect(restored >= 1)
            #expect(try await content(inDataset[0].correction.feedbackId, pool) == before)
            #expect(try await base.count(pool, "SELECT count(*) FROM feedback_archives WHERE id = \(archive)") == 0)
        }
    }

    @Test("one instance at a time: a run finds the lock held and does nothing")
    func oneAtATime() async throws {
        try await base.withStore { store, pool in
            _ = try await store.store([try privacy.correction(user: "writer.a", text: "MARA: Old line.")], outcomes: [], deadLetters: [])
            let holder = PostgresPool(configuration: pool.configuration, size: 1)
            defer { Task { await holder.close() } }
            try await holder.withConnection { try $0.query("SELECT pg_advisory_lock(hashtextextended('morpheus/retention', 0))") }
            let policy = RetentionPolicy(archiveAfterDaysInDataset: nil, archiveAfterDays: 1, deadLetterDays: nil)
            #expect(try await RetentionStore(pool: pool).run(policy, now: days(10)) == nil)
            #expect(try await base.count(pool, "SELECT count(*) FROM feedback_archives") == 0)
            try await holder.withConnection { try $0.query("SELECT pg_advisory_unlock_all()") }
            #expect(try await RetentionStore(pool: pool).run(policy, now: days(10))?.archivedByAge == 1)
        }
    }

    @Test("erasure and anonymization reach the archives; other users' archived lines stay; a dataset build leaves archived content out")
    func privacyReachesArchives() async throws {
        try await base.withStore { store, pool in
            let email = "mara.v@gmx.de"
            let erased = try privacy.correction(user: "erase.me", text: "MARA: My erased line.")
            let scrubbed = try privacy.correction(user: "anon.me", text: "MARA: Write to \(email) tonight.")
            let bystander = try privacy.correction(user: "bystander", text: "MARA: A bystander's line.")
            _ = try await store.store([erased, scrubbed, bystander], outcomes: [], deadLetters: [])
            let policy = RetentionPolicy(archiveAfterDaysInDataset: nil, archiveAfterDays: 1, deadLetterDays: nil, archiveSize: 10)
            #expect(try await RetentionStore(pool: pool).run(policy, now: days(2))?.archivedByAge == 3)

            let root = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.unique("datasets"))
            defer { try? FileManager.default.removeItem(at: root) }
            let built = try await DatasetStore(pool: pool).build(DatasetRequest(name: "archived", modality: .text, format: .sft), root: root)
            #expect(built.exampleCount == 0 && built.counts["excludedArchived"] == 3)

            let erasure = try await store.store([], outcomes: [], deadLetters: [], privacy: [privacy.request(.erase, user: "erase.me")])
            guard case let .applied(counts, _, _)? = erasure.privacy.first else { Issue.record("\(erasure.privacy)"); return }
            #expect(counts["archivedCorrections"] == 1 && counts["corrections"] == 1)
            #expect(try await ScratchDatabase.tables(containing: "erase.me", pool).isEmpty)
            #expect(try await ScratchDatabase.rows(containing: "My erased line", pool) == 0)

            var anonymize = privacy.request(.anonymize, user: "anon.me")
            anonymize.rebuild = privacy.rebuild
            let anonymized = try await store.store([], outcomes: [], deadLetters: [], privacy: [anonymize])
            guard case let .applied(anonymizeCounts, _, _)? = anonymized.privacy.first else { Issue.record("\(anonymized.privacy)"); return }
            #expect(anonymizeCounts["archivedCorrections"] == 1 && anonymizeCounts["trainingExamples"] == 1)
            #expect(try await ScratchDatabase.rows(containing: email, pool) == 0)
            #expect(try await ScratchDatabase.tables(containing: "anon.me", pool) == ["privacy_settings": 1])

            // The bystander's line is still archived, and the archive still matches its manifest.
            #expect(try await hotAndArchived("A bystander's line", pool) == [0, 1])
            #expect(try await base.count(pool, "SELECT row_count FROM feedback_archives") == 1)
            #expect(try await archivesAreConsistent(pool))
        }
    }
}
