import Foundation
import MorpheusCore
import Postgres

/// A dataset version as recorded in `training_datasets`.
public struct DatasetVersion: Sendable, Equatable {
    public var name: String
    public var version: Int
    public var parentVersion: Int?
    public var modality: String
    public var format: String
    public var exampleCount: Int
    public var sha256: String
    public var location: String
    public var status: String
    public var createdAt: Date
    /// Rows per split, and rows left out per reason.
    public var counts: [String: Int]

    /// The retained `morpheus.dataset-version/1` announcement.
    public var announcement: JSONValue {
        .object([
            ("schema", .string("morpheus.dataset-version/1")), ("name", .string(name)), ("version", .number(Double(version))),
            ("parentVersion", parentVersion.map { .number(Double($0)) } ?? .null), ("modality", .string(modality)), ("format", .string(format)),
            ("exampleCount", .number(Double(exampleCount))), ("sha256", .string(sha256)), ("createdAt", .string(RFC3339.format(createdAt))),
            ("location", .string(location)),
        ])
    }
}

/// Builds immutable dataset versions from committed training examples and keeps their lineage
/// (`docs/datasets.md`). A build reads one consistent snapshot (REPEATABLE READ) through a
/// server-side cursor and writes the files as it reads, so memory stays bounded.
public struct DatasetStore: Sendable {
    public let pool: PostgresPool
    /// Rows fetched from the cursor at a time.
    public var fetchSize = 5000

    public init(pool: PostgresPool) {
        self.pool = pool
    }

    /// Builds version N+1 of `request.name` under `root/<name>/v<N+1>/`. With `announceOn`, the
    /// version's `morpheus.dataset-version/1` goes there retained, through the outbox (in the
    /// same transaction: announced exactly when recorded).
    public func build(_ request: DatasetRequest, root: URL, announceOn topic: String? = nil,
                      progress: @escaping @Sendable (Int) -> Void = { _ in }) async throws -> DatasetVersion {
        guard DatasetRequest.isName(request.name) else { throw PostgresError(.decoding, message: "dataset names are 1–64 of [A-Za-z0-9._-]") }
        let fetchSize = fetchSize
        return try await pool.withConnection { connection in
            try connection.transaction { connection in
                try connection.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                // One build of a name at a time: version numbers follow each other.
                try connection.query("SELECT pg_advisory_xact_lock(hashtextextended('morpheus/dataset/' || $1, 0))", [request.name])
                let previous = try connection.query("SELECT max(version) AS v FROM training_datasets WHERE name = $1", [request.name])
                    .first?.decodeIfPresent("v", as: Int.self)
                let version = (previous ?? 0) + 1
                let folder = root.appendingPathComponent(request.name).appendingPathComponent("v\(version)")
                try? FileManager.default.removeItem(at: folder)
                do {
                    let built = try Self.write(request, version: version, parent: previous, folder: folder, fetchSize: fetchSize, connection, progress: progress)
                    if let topic {
                        try connection.query("INSERT INTO outbox_batches (events, event_count, feedback_ids) VALUES ($1, 1, '{}')",
                                             [PostgresBytes(OutboxFraming.encode([OutboxEvent(topic: topic, json: built.announcement, retain: true)]))])
                    }
                    return built
                } catch {
                    try? FileManager.default.removeItem(at: folder)
                    throw error
                }
            }
        }
    }

    /// The candidates: committed examples of the modality (accepted, or approved by a
    /// reviewer — flagged corrections have none until then) with the format, of users who have
    /// not opted out. The values are the request's own (enum cases and numbers), so they are
    /// written into the cursor's query.
    static func candidates(_ request: DatasetRequest) -> String {
        """
        FROM training_examples t JOIN feedback f USING (feedback_id)
        WHERE t.modality = '\(request.modality.rawValue)'
          AND json_typeof(t.body -> '\(request.format.rawValue)') = 'object'
          AND NOT EXISTS (SELECT 1 FROM privacy_settings p WHERE p.user_id = f.user_id AND p.opted_out)
        """
    }

    static func write(_ request: DatasetRequest, version: Int, parent: Int?, folder: URL, fetchSize: Int, _ connection: PostgresConnection,
                      progress: (Int) -> Void) throws -> DatasetVersion {
        let data = folder.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        let location = "file://" + folder.standardizedFileURL.path
        let id = try connection.query("""
            INSERT INTO training_datasets (name, version, parent_version, modality, format, parameters, sha256, example_count, location)
            VALUES ($1, $2, $3, $4, $5, $6::jsonb, '', 0, $7) RETURNING id
            """, [request.name, Int32(version), parent.map(Int32.init), request.modality.rawValue, request.format.rawValue,
                  request.parameters.serializedString, location]).first!.decode("id", as: Int.self)

        // Why rows were left out, over the same snapshot.
        let excluded = try connection.query("""
            SELECT count(*) FILTER (WHERE coalesce(f.quality, 0) < \(request.minQuality)) AS low_quality,
                   count(*) FILTER (WHERE EXISTS (SELECT 1 FROM privacy_settings p WHERE p.user_id = f.user_id AND p.opted_out)) AS opted_out,
                   count(*) FILTER (WHERE t.body IS NULL) AS archived
            FROM training_examples t JOIN feedback f USING (feedback_id) WHERE t.modality = '\(request.modality.rawValue)'
            """).first
        var files: [(name: String, handle: FileHandle, hash: StreamingSHA256, rows: Int)] = []
        for split in ["train", "validation"] {
            let url = data.appendingPathComponent("\(split).jsonl")
            guard FileManager.default.createFile(atPath: url.path, contents: nil) else { throw CocoaError(.fileWriteUnknown) }
            files.append((split, try FileHandle(forWritingTo: url), StreamingSHA256(), 0))
        }
        defer { for file in files { try? file.handle.close() } }

        try connection.query("""
            DECLARE dataset_rows NO SCROLL CURSOR FOR
            SELECT t.example_id::text AS example_id, t.feedback_id::text AS feedback_id, (t.body -> '\(request.format.rawValue)')::text AS line
            \(candidates(request)) AND coalesce(f.quality, 0) >= \(request.minQuality)
            ORDER BY t.example_id\(request.limit.map { " LIMIT \($0)" } ?? "")
            """)
        var total = 0
        while true {
            let rows = try connection.query("FETCH \(fetchSize) FROM dataset_rows")
            if rows.count == 0 { break }
            var buffers = [[UInt8]](repeating: [], count: 2)
            var lineage = (examples: PostgresTextArray(), feedback: PostgresTextArray(), splits: PostgresTextArray())
            for row in rows {
                let exampleId = try row.decode("example_id", as: String.self)
                let split = request.isValidation(exampleId) ? 1 : 0
                buffers[split] += Array(try row.decode("line", as: String.self).utf8)
                buffers[split].append(0x0A)
                files[split].rows += 1
                try lineage.examples.append(exampleId)
                try lineage.feedback.append(try row.decode("feedback_id", as: String.self))
                try lineage.splits.append(files[split].name)
            }
            for index in files.indices where !buffers[index].isEmpty {
                files[index].hash.update(buffers[index])
                try files[index].handle.write(contentsOf: buffers[index])
            }
            try connection.query("""
                INSERT INTO dataset_examples (dataset_id, example_id, feedback_id, split)
                SELECT $1, e::uuid, f::uuid, s FROM unnest($2::text[], $3::text[], $4::text[]) AS r (e, f, s)
                """, [id, lineage.examples, lineage.feedback, lineage.splits])
            total += rows.count
            progress(total)
        }
        try connection.query("CLOSE dataset_rows")

        var counts: [String: Int] = ["train": files[0].rows, "validation": files[1].rows]
        counts["excludedLowQuality"] = try excluded?.decode("low_quality", as: Int.self) ?? 0
        counts["excludedOptedOut"] = try excluded?.decode("opted_out", as: Int.self) ?? 0
        // Content archived by the retention policy (`morpheus retention restore` brings it back).
        counts["excludedArchived"] = try excluded?.decode("archived", as: Int.self) ?? 0
        let manifest = JSONValue.object([
            ("schema", .string("morpheus.dataset-manifest/1")), ("name", .string(request.name)), ("version", .number(Double(version))),
            ("parentVersion", parent.map { .number(Double($0)) } ?? .null), ("parameters", request.parameters),
            ("files", .array(files.map { file in
                .object([("path", .string("data/\(file.name).jsonl")), ("rows", .number(Double(file.rows))), ("sha256", .string(file.hash.hex()))])
            })),
            ("counts", .object(counts.sorted { $0.key < $1.key }.map { ($0.key, .number(Double($0.value))) })),
        ])
        // The version's identity: its files' content.
        let sha = sha256Hex(Array(files.map { "\($0.name) \($0.hash.hex())" }.joined(separator: "\n").utf8))
        try Data(manifest.serialized() + [0x0A]).write(to: folder.appendingPathComponent("manifest.json"))
        try Data(card(request, version: version, counts: counts).utf8).write(to: folder.appendingPathComponent("README.md"))
        let created = try connection.query("""
            UPDATE training_datasets SET sha256 = $2, example_count = $3, counts = $4::jsonb WHERE id = $1 RETURNING created_at
            """, [id, sha, Int32(total), JSONValue.object(counts.sorted { $0.key < $1.key }.map { ($0.key, .number(Double($0.value))) }).serializedString])
            .first!.decode("created_at", as: Date.self)
        return DatasetVersion(name: request.name, version: version, parentVersion: parent, modality: request.modality.rawValue,
                              format: request.format.rawValue, exampleCount: total, sha256: sha, location: location, status: "ready",
                              createdAt: created, counts: counts)
    }

    /// The dataset card: a YAML header as dataset hubs read it, then what the version holds.
    static func card(_ request: DatasetRequest, version: Int, counts: [String: Int]) -> String {
        let task = request.format == .sft ? "text-generation" : "reinforcement-learning"
        return """
            ---
            license: other
            task_categories:
            - \(task)
            configs:
            - config_name: default
              data_files:
              - split: train
                path: data/train.jsonl
              - split: validation
                path: data/validation.jsonl
            ---
            # \(request.name) v\(version)

            Corrections of Morpheus's \(request.modality.rawValue) generations by their users, as \(request.format.rawValue) examples
            (built by `morpheus dataset build`; parameters and file hashes in `manifest.json`).

            | split | rows |
            |---|---:|
            | train | \(counts["train"] ?? 0) |
            | validation | \(counts["validation"] ?? 0) |

            Left out: \(counts["excludedLowQuality"] ?? 0) below quality \(request.minQuality), \(counts["excludedOptedOut"] ?? 0) of users who opted out.

            """
    }

    /// Every version, newest first (optionally of one name).
    public func list(name: String? = nil) async throws -> [DatasetVersion] {
        try await pool.withConnection { connection in
            try connection.query("""
                SELECT name, version, parent_version, modality, format, example_count, sha256, location, status, created_at, counts::text AS counts
                FROM training_datasets WHERE ($1::text IS NULL OR name = $1) AND sha256 <> '' ORDER BY name, version DESC
                """, [name]).map { row in
                DatasetVersion(name: try row.decode("name", as: String.self), version: try row.decode("version", as: Int.self),
                               parentVersion: try row.decodeIfPresent("parent_version", as: Int.self), modality: try row.decode("modality", as: String.self),
                               format: try row.decode("format", as: String.self), exampleCount: try row.decode("example_count", as: Int.self),
                               sha256: try row.decode("sha256", as: String.self), location: try row.decode("location", as: String.self),
                               status: try row.decode("status", as: String.self), createdAt: try row.decode("created_at", as: Date.self),
                               counts: try PrivacyStore.counts(row.decode("counts", as: String.self)))
            }
        }
    }

    /// Every version a correction reached: (name, version, split, example id, status).
    public func lineage(feedbackId: String) async throws -> [(name: String, version: Int, split: String, exampleId: String, status: String)] {
        try await pool.withConnection { connection in
            try connection.query("""
                SELECT d.name, d.version, e.split, e.example_id::text AS example_id, d.status
                FROM dataset_examples e JOIN training_datasets d ON d.id = e.dataset_id WHERE e.feedback_id = $1::uuid ORDER BY d.name, d.version
                """, [feedbackId]).map { row in
                (try row.decode("name", as: String.self), try row.decode("version", as: Int.self), try row.decode("split", as: String.self),
                 try row.decode("example_id", as: String.self), try row.decode("status", as: String.self))
            }
        }
    }

    /// Where an example came from: its correction, the contributor's pseudonym (as the example
    /// names it), the review decision if it was held, and the versions that contain it.
    public struct Origin: Sendable {
        public var feedbackId: String
        public var contributor: String?
        public var status: String
        public var decision: (decision: String, reviewer: String, at: Date)?
        public var versions: [(name: String, version: Int, split: String)]
    }

    public func origin(exampleId: String) async throws -> Origin? {
        try await pool.withConnection { connection in
            guard let row = try connection.query("""
                SELECT t.feedback_id::text AS feedback_id, t.body ->> 'contributor' AS contributor, f.status
                FROM training_examples t JOIN feedback f USING (feedback_id) WHERE t.example_id = $1::uuid
                """, [exampleId]).first else { return nil }
            let feedbackId = try row.decode("feedback_id", as: String.self)
            let decision = try connection.query("""
                SELECT decision, reviewer, decided_at FROM review_decisions WHERE feedback_id = $1::uuid ORDER BY decided_at DESC, id DESC LIMIT 1
                """, [feedbackId]).first.map { row in
                (try row.decode("decision", as: String.self), try row.decode("reviewer", as: String.self), try row.decode("decided_at", as: Date.self))
            }
            let versions = try connection.query("""
                SELECT d.name, d.version, e.split FROM dataset_examples e JOIN training_datasets d ON d.id = e.dataset_id
                WHERE e.example_id = $1::uuid ORDER BY d.name, d.version
                """, [exampleId]).map { row in
                (try row.decode("name", as: String.self), try row.decode("version", as: Int.self), try row.decode("split", as: String.self))
            }
            return Origin(feedbackId: feedbackId, contributor: try row.decodeIfPresent("contributor", as: String.self),
                          status: try row.decode("status", as: String.self), decision: decision, versions: versions)
        }
    }
}
