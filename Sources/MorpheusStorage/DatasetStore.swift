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
    /// The bias report (`BiasReport.json`).
    public var bias: JSONValue = .object([])

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
    public func build(_ request: DatasetRequest, root: URL, announceOn topic: String? = nil, thresholds: BiasThresholds = BiasThresholds(),
                      progress: @escaping @Sendable (Progress) -> Void = { _ in }) async throws -> DatasetVersion {
        guard DatasetRequest.isName(request.name) else { throw PostgresError(.decoding, message: "dataset names are 1–64 of [A-Za-z0-9._-]") }
        let fetchSize = fetchSize
        return try await pool.withConnection { connection in
            try connection.transaction { connection in
                try connection.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                // Pass one sorts every matching row's small values, and joins two large tables:
                // in memory, not in temporary files (this transaction only).
                try connection.query("SET LOCAL work_mem = '256MB'")
                // Compiling pass one's expressions cost 2 s of a 16 s query and saved nothing.
                try connection.query("SET LOCAL jit = off")
                // Pass one reads every row of its cursor: plan for the whole, not the first rows.
                try connection.query("SET LOCAL cursor_tuple_fraction = 1.0")
                // One build of a name at a time: version numbers follow each other.
                try connection.query("SELECT pg_advisory_xact_lock(hashtextextended('morpheus/dataset/' || $1, 0))", [request.name])
                let previous = try connection.query("SELECT max(version) AS v FROM training_datasets WHERE name = $1", [request.name])
                    .first?.decodeIfPresent("v", as: Int.self)
                let version = (previous ?? 0) + 1
                let folder = root.appendingPathComponent(request.name).appendingPathComponent("v\(version)")
                try? FileManager.default.removeItem(at: folder)
                do {
                    let built = try Self.write(request, version: version, parent: previous, folder: folder, fetchSize: fetchSize,
                                               thresholds: thresholds, connection, progress: progress)
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

    /// A build's progress: examples written of those selected.
    public struct Progress: Sendable {
        public var written: Int
        public var total: Int
    }

    /// The SQL of a request: which committed examples match it and how each is classified.
    /// Filter values are the request's own (enum cases, numbers, formatted instants) or quoted
    /// literals, so they are written into the cursors' queries.
    struct Query {
        let request: DatasetRequest

        static func literal(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "''") + "'" }

        /// Examples of the modality that match the request's filters (time, types, model).
        var matching: String {
            var conditions = ["t.modality = '\(request.modality.rawValue)'"]
            if let since = request.since { conditions.append("f.received_at >= '\(RFC3339.format(since))'") }
            if let until = request.until { conditions.append("f.received_at < '\(RFC3339.format(until))'") }
            if !request.correctionTypes.isEmpty {
                conditions.append("f.correction_type IN (\(request.correctionTypes.map { "'\($0.rawValue)'" }.joined(separator: ", ")))")
            }
            if let model = request.model {
                let parts = model.split(separator: "@", maxSplits: 1).map(String.init)
                conditions.append("f.model = \(Self.literal(parts[0]))")
                if parts.count == 2 { conditions.append("f.model_version = \(Self.literal(parts[1]))") }
            }
            return """
                FROM training_examples t JOIN feedback f USING (feedback_id)
                LEFT JOIN privacy_settings p ON p.user_id = f.user_id AND p.opted_out
                WHERE
                """ + " " + conditions.joined(separator: " AND ")
        }

        /// Why a matching row is left out, 0 for a candidate: archived (its correction points at
        /// an archive; the body is never read in pass one), without the
        /// format, of a user who opted out (`p`: the user's opted-out setting, joined), below the
        /// quality. Accepted or approved only: flagged corrections have no example until a
        /// reviewer approves them.
        var exclusion: String {
            """
            CASE WHEN f.archive_id IS NOT NULL THEN 1 WHEN t.formats & \(request.format.bit) = 0 THEN 2 WHEN p.user_id IS NOT NULL THEN 3
                 WHEN coalesce(f.quality, 0) < \(request.minQuality) THEN 4 ELSE 0 END
            """
        }
        static let exclusionNames = ["", "excludedArchived", "excludedNoFormat", "excludedOptedOut", "excludedLowQuality"]

        var stratum: String { Self.stratum(request.stratifyBy) }

        /// The SQL expression of a row's stratum (over `f`, the feedback row).
        static func stratum(_ keys: [DatasetRequest.StratumKey]) -> String {
            guard !keys.isEmpty else { return "'all'" }
            let parts = keys.map { key -> String in
                switch key {
                case .correctionType: "f.correction_type"
                case .model: "f.model"
                case .modelVersion: "f.model || '@' || f.model_version"
                case .experimentArm: "coalesce(f.experiment_id || ':' || f.experiment_arm, 'none')"
                }
            }
            return parts.count == 1 ? parts[0] : "concat_ws(' / ', \(parts.joined(separator: ", ")))"
        }
    }

    /// Pass one: every matching row's exclusion, and each candidate's id, stratum,
    /// contributor, model version, arm and quality, in the build's order (small values; the
    /// bodies stay in PostgreSQL until pass two).
    struct Candidates {
        var ids: [UUIDBits] = []
        var rows: [(stratum: Int32, contributor: Int32)] = []
        var strata: [String] = []
        var contributors = 0
        var modelVersions: [Int32] = []
        var modelVersionNames: [String] = []
        var arms: [Int32] = []
        var armNames: [String] = []
        var qualities: [Float] = []
        var excluded: [String: Int] = [:]
    }

    static func candidates(_ query: Query, fetchSize: Int, _ connection: PostgresConnection) throws -> Candidates {
        var result = Candidates()
        var strata: [String: Int32] = [:], contributors: [String: Int32] = [:], versions: [String: Int32] = [:], arms: [String: Int32] = [:]
        func index(_ key: String, _ table: inout [String: Int32], _ names: inout [String]) -> Int32 {
            if let known = table[key] { return known }
            let next = Int32(table.count)
            table[key] = next
            names.append(key)
            return next
        }
        var contributorNames: [String] = []
        var excluded = [Int](repeating: 0, count: Query.exclusionNames.count)
        try connection.query("""
            DECLARE dataset_candidates NO SCROLL CURSOR FOR
            SELECT \(query.exclusion) AS excluded, t.example_id::text AS example_id, \(query.stratum) AS stratum, f.user_id,
                   f.model || '@' || f.model_version AS model_version, coalesce(f.experiment_id || ':' || f.experiment_arm, '') AS arm,
                   coalesce(f.quality, 0)::float8 AS quality
            \(query.matching)
            """)
        while true {
            let rows = try connection.query("FETCH \(fetchSize) FROM dataset_candidates")
            if rows.count == 0 { break }
            for row in rows {
                let reason = try row.decode(0, as: Int.self)
                guard reason == 0 else {
                    excluded[reason] += 1
                    continue
                }
                guard let id = UUIDBits(try row.decode(1, as: String.self)) else { throw PostgresError(.decoding, message: "example id") }
                result.ids.append(id)
                let stratum = index(try row.decode(2, as: String.self), &strata, &result.strata)
                let contributor = index(try row.decode(3, as: String.self), &contributors, &contributorNames)
                result.rows.append((stratum, contributor))
                result.modelVersions.append(index(try row.decode(4, as: String.self), &versions, &result.modelVersionNames))
                result.arms.append(index(try row.decode(5, as: String.self), &arms, &result.armNames))
                result.qualities.append(Float(try row.decode(6, as: Double.self)))
            }
        }
        try connection.query("CLOSE dataset_candidates")
        result.contributors = contributors.count
        // The build's order, sorted here: a cursor's plan is never parallel, and sorting a
        // million rows in PostgreSQL took most of this pass.
        let keys = result.ids.map { query.request.orderKey($0.text) }
        let order = result.ids.indices.sorted { keys[$0] != keys[$1] ? keys[$0] < keys[$1] : result.ids[$0] < result.ids[$1] }
        result.ids = order.map { result.ids[$0] }
        result.rows = order.map { result.rows[$0] }
        result.modelVersions = order.map { result.modelVersions[$0] }
        result.arms = order.map { result.arms[$0] }
        result.qualities = order.map { result.qualities[$0] }
        for (reason, name) in Query.exclusionNames.enumerated() where reason > 0 { result.excluded[name] = excluded[reason] }
        return result
    }

    static func write(_ request: DatasetRequest, version: Int, parent: Int?, folder: URL, fetchSize: Int, thresholds: BiasThresholds,
                      _ connection: PostgresConnection, progress: (Progress) -> Void) throws -> DatasetVersion {
        let data = folder.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        let location = "file://" + folder.standardizedFileURL.path
        let datasetId = try connection.query("""
            INSERT INTO training_datasets (name, version, parent_version, modality, format, parameters, sha256, example_count, location)
            VALUES ($1, $2, $3, $4, $5, $6::jsonb, '', 0, $7) RETURNING id
            """, [request.name, Int32(version), parent.map(Int32.init), request.modality.rawValue, request.format.rawValue,
                  request.parameters.serializedString, location]).first!.decode("id", as: Int.self)
        let query = Query(request: request)

        // Pass one, then the choice: quotas per stratum, the contributor cap.
        let candidates = try candidates(query, fetchSize: fetchSize, connection)
        var available = [Int](repeating: 0, count: candidates.strata.count)
        for row in candidates.rows { available[Int(row.stratum)] += 1 }
        let quotas = Sampling.quotas(available: available, target: request.limit ?? candidates.rows.count, allocation: request.allocation,
                                     floor: request.stratumFloor)
        let selection = Sampling.select(rows: candidates.rows, quotas: quotas, maxContributorShare: request.maxContributorShare)

        var files: [(name: String, handle: FileHandle, hash: StreamingSHA256, rows: Int)] = []
        for split in ["train", "validation"] {
            let url = data.appendingPathComponent("\(split).jsonl")
            guard FileManager.default.createFile(atPath: url.path, contents: nil) else { throw CocoaError(.fileWriteUnknown) }
            files.append((split, try FileHandle(forWritingTo: url), StreamingSHA256(), 0))
        }
        defer { for file in files { try? file.handle.close() } }

        // Pass two: the selected bodies, fetched by id a chunk at a time (primary-key look-ups,
        // no second sort of the bodies) and written in the build's order as they arrive.
        let selectedIds = candidates.ids.indices.lazy.filter { selection.selected[$0] }.map { candidates.ids[$0] }
        var total = 0
        var languages: [String: Int] = [:]
        let languageSample = request.modality == .text ? 10_000 : 0
        var chunk: [UUIDBits] = []
        chunk.reserveCapacity(fetchSize)
        var lineage: [(example: UUIDBits, feedback: UUIDBits, validation: Bool)] = []
        lineage.reserveCapacity(selection.count)
        func flush() throws {
            guard !chunk.isEmpty else { return }
            var ids = PostgresTextArray()
            for id in chunk { try ids.append(id.text) }
            var bodies: [UUIDBits: (feedbackId: UUIDBits, line: String)] = [:]
            bodies.reserveCapacity(chunk.count)
            for row in try connection.query("""
                SELECT example_id::text AS example_id, feedback_id::text AS feedback_id, (body -> '\(request.format.rawValue)')::text AS line
                FROM training_examples WHERE example_id = ANY($1::text[]::uuid[])
                """, [ids]) {
                guard let id = UUIDBits(try row.decode(0, as: String.self)), let feedbackId = UUIDBits(try row.decode(1, as: String.self)) else { continue }
                bodies[id] = (feedbackId, try row.decode(2, as: String.self))
            }
            var buffers = [[UInt8]](repeating: [], count: 2)
            var sampled = 0
            for id in chunk {
                guard let (feedbackId, line) = bodies[id] else { throw PostgresError(.decoding, message: "example \(id) vanished within the snapshot") }
                let split = request.isValidation(id.text) ? 1 : 0
                buffers[split] += Array(line.utf8)
                buffers[split].append(0x0A)
                files[split].rows += 1
                lineage.append((id, feedbackId, split == 1))
                // The order is random: the first rows are a uniform sample.
                sampled += 1
                if total + sampled <= languageSample, let text = Self.text(ofLine: line, format: request.format) {
                    languages[LanguageGuess.guess(text), default: 0] += 1
                }
            }
            for index in files.indices where !buffers[index].isEmpty {
                files[index].hash.update(buffers[index])
                try files[index].handle.write(contentsOf: buffers[index])
            }
            total += chunk.count
            chunk.removeAll(keepingCapacity: true)
            progress(Progress(written: total, total: selection.count))
        }
        for selectedId in selectedIds {
            chunk.append(selectedId)
            if chunk.count == fetchSize { try flush() }
        }
        try flush()

        // Lineage rows in example-id order: this version's primary-key entries are appended at
        // the index's end instead of scattered (a third of the build's time in random order).
        lineage.sort { $0.example < $1.example }
        for start in stride(from: 0, to: lineage.count, by: 20_000) {
            var examples = PostgresTextArray(), feedback = PostgresTextArray(), splits = PostgresTextArray()
            for row in lineage[start..<min(start + 20_000, lineage.count)] {
                try examples.append(row.example.text)
                try feedback.append(row.feedback.text)
                try splits.append(row.validation ? "validation" : "train")
            }
            try connection.query("""
                INSERT INTO dataset_examples (dataset_id, example_id, feedback_id, split)
                SELECT $1, e::uuid, f::uuid, s FROM unnest($2::text[], $3::text[], $4::text[]) AS r (e, f, s)
                """, [datasetId, examples, feedback, splits])
        }

        // The bias report of what was selected.
        var perContributor = [Int](repeating: 0, count: candidates.contributors)
        var selectedPerStratum = [Int](repeating: 0, count: candidates.strata.count)
        var versions: [String: Int] = [:], arms: [String: Int] = [:]
        var qualities: [Double] = []
        qualities.reserveCapacity(selection.count)
        for (index, row) in candidates.rows.enumerated() where selection.selected[index] {
            perContributor[Int(row.contributor)] += 1
            selectedPerStratum[Int(row.stratum)] += 1
            versions[candidates.modelVersionNames[Int(candidates.modelVersions[index])], default: 0] += 1
            let arm = candidates.armNames[Int(candidates.arms[index])]
            if !arm.isEmpty { arms[arm, default: 0] += 1 }
            qualities.append(Double(candidates.qualities[index]))
        }
        let strata = candidates.strata.indices.map { (name: candidates.strata[$0], available: available[$0], selected: selectedPerStratum[$0]) }
            .sorted { $0.name < $1.name }
        let bias = BiasReport.make(perContributor: perContributor, strata: request.stratifyBy.isEmpty ? [] : strata, modelVersions: versions,
                                   arms: arms, qualities: qualities, languages: languages, thresholds: thresholds)

        var counts: [String: Int] = ["train": files[0].rows, "validation": files[1].rows]
        counts.merge(candidates.excluded) { $1 }
        counts["excludedContributorCap"] = selection.cappedRows
        counts["excludedBySampling"] = candidates.rows.count - selection.count - selection.cappedRows
        counts["candidates"] = candidates.rows.count
        func object(_ counts: [String: Int]) -> JSONValue { .object(counts.sorted { $0.key < $1.key }.map { ($0.key, .number(Double($0.value))) }) }
        let manifest = JSONValue.object([
            ("schema", .string("morpheus.dataset-manifest/1")), ("name", .string(request.name)), ("version", .number(Double(version))),
            ("parentVersion", parent.map { .number(Double($0)) } ?? .null), ("parameters", request.parameters),
            ("files", .array(files.map { file in
                .object([("path", .string("data/\(file.name).jsonl")), ("rows", .number(Double(file.rows))), ("sha256", .string(file.hash.hex()))])
            })),
            ("counts", object(counts)),
            ("contributorCap", selection.cap.map { .number(Double($0)) } ?? .null),
            ("bias", bias.json),
        ])
        // The version's identity: its files' content.
        let sha = sha256Hex(Array(files.map { "\($0.name) \($0.hash.hex())" }.joined(separator: "\n").utf8))
        try Data(manifest.serialized() + [0x0A]).write(to: folder.appendingPathComponent("manifest.json"))
        try Data(card(request, version: version, parent: parent, counts: counts, bias: bias).utf8).write(to: folder.appendingPathComponent("README.md"))
        let created = try connection.query("""
            UPDATE training_datasets SET sha256 = $2, example_count = $3, counts = $4::jsonb, report = $5::jsonb WHERE id = $1 RETURNING created_at
            """, [datasetId, sha, Int32(total), object(counts).serializedString, bias.json.serializedString])
            .first!.decode("created_at", as: Date.self)
        return DatasetVersion(name: request.name, version: version, parentVersion: parent, modality: request.modality.rawValue,
                              format: request.format.rawValue, exampleCount: total, sha256: sha, location: location, status: "ready",
                              createdAt: created, counts: counts, bias: bias.json)
    }

    /// The corrected text of a text example's line (the assistant's message), for the language mix.
    static func text(ofLine line: String, format: DatasetRequest.Format) -> String? {
        var parser = JSONParser(bytes: Array(line.utf8))
        guard let document = try? parser.parse() else { return nil }
        let messages = format == .sft ? document["messages"] : document["chosen"]
        guard case .array(let list)? = messages, case .string(let text)? = list.last?["content"] else { return nil }
        return text
    }

    /// The dataset card: a YAML header as dataset hubs read it, then what the version holds.
    static func card(_ request: DatasetRequest, version: Int, parent: Int?, counts: [String: Int], bias: BiasReport) -> String {
        let task = request.format == .sft ? "text-generation" : "reinforcement-learning"
        var sampling = "all candidates"
        if !request.stratifyBy.isEmpty || request.limit != nil {
            sampling = "\(request.limit.map { "up to \($0) examples" } ?? "all candidates")"
            if !request.stratifyBy.isEmpty {
                sampling += ", stratified by \(request.stratifyBy.map(\.rawValue).joined(separator: " × ")) (\(request.allocation.rawValue) allocation, floor \(request.stratumFloor))"
            }
        }
        if let share = request.maxContributorShare { sampling += ", at most \(share * 100) % per contributor" }
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
            (built by `morpheus dataset build`\(parent.map { "; parent: v\($0)" } ?? ""); parameters and file hashes in `manifest.json`).
            Rows are in a seeded random order (seed \(request.seed)); sampling: \(sampling).

            | split | rows |
            |---|---:|
            | train | \(counts["train"] ?? 0) |
            | validation | \(counts["validation"] ?? 0) |

            Left out: \(counts["excludedLowQuality"] ?? 0) below quality \(request.minQuality), \(counts["excludedOptedOut"] ?? 0) of users who opted out, \
            \(counts["excludedArchived"] ?? 0) archived, \(counts["excludedNoFormat"] ?? 0) without this format, \
            \(counts["excludedContributorCap"] ?? 0) over the contributor cap, \(counts["excludedBySampling"] ?? 0) by sampling.

            \(bias.markdown)
            """
    }

    /// Every version, newest first (optionally of one name).
    public func list(name: String? = nil) async throws -> [DatasetVersion] {
        try await pool.withConnection { connection in
            try connection.query("""
                SELECT name, version, parent_version, modality, format, example_count, sha256, location, status, created_at, counts::text AS counts
                FROM training_datasets WHERE ($1::text IS NULL OR name = $1) AND sha256 <> '' ORDER BY name, version DESC
                """, [name]).map(Self.version)
        }
    }

    /// One version with its parameters and bias report (the newest of `name` without `version`).
    public func version(_ name: String, _ version: Int? = nil) async throws -> (version: DatasetVersion, parameters: JSONValue)? {
        try await pool.withConnection { connection in
            guard let row = try connection.query("""
                SELECT name, version, parent_version, modality, format, example_count, sha256, location, status, created_at,
                       counts::text AS counts, parameters::text AS parameters, report::text AS report
                FROM training_datasets WHERE name = $1 AND ($2::int IS NULL OR version = $2) AND sha256 <> '' ORDER BY version DESC LIMIT 1
                """, [name, version.map(Int32.init)]).first else { return nil }
            func json(_ column: String) throws -> JSONValue {
                var parser = JSONParser(bytes: Array(try row.decode(column, as: String.self).utf8))
                return try parser.parse()
            }
            var found = try Self.version(row)
            found.bias = try json("report")
            return (found, try json("parameters"))
        }
    }

    static func version(_ row: PostgresRow) throws -> DatasetVersion {
        DatasetVersion(name: try row.decode("name", as: String.self), version: try row.decode("version", as: Int.self),
                       parentVersion: try row.decodeIfPresent("parent_version", as: Int.self), modality: try row.decode("modality", as: String.self),
                       format: try row.decode("format", as: String.self), exampleCount: try row.decode("example_count", as: Int.self),
                       sha256: try row.decode("sha256", as: String.self), location: try row.decode("location", as: String.self),
                       status: try row.decode("status", as: String.self), createdAt: try row.decode("created_at", as: Date.self),
                       counts: try PrivacyStore.counts(row.decode("counts", as: String.self)))
    }

    /// What changed from one version to another: examples added and removed per stratum
    /// (`by`; a correction erased since counts under `(erased)`), and a few of each.
    public struct Difference: Sendable {
        public var added: [(stratum: String, count: Int)]
        public var removed: [(stratum: String, count: Int)]
        public var samples: [(side: String, exampleId: String, stratum: String, text: String?)]
        public var unchanged: Int
    }

    public func diff(_ name: String, from old: Int, to new: Int, by key: DatasetRequest.StratumKey, samples: Int = 3) async throws -> Difference? {
        try await pool.withConnection { connection in
            let ids = try connection.query("SELECT version, id FROM training_datasets WHERE name = $1 AND version IN ($2, $3)",
                                           [name, Int32(old), Int32(new)])
                .reduce(into: [Int: Int]()) { $0[try $1.decode("version", as: Int.self)] = try $1.decode("id", as: Int.self) }
            guard let a = ids[old], let b = ids[new] else { return nil }
            let stratum = "coalesce(\(Query.stratum([key])), '(erased)')"
            let sides = """
                WITH a AS (SELECT example_id, feedback_id FROM dataset_examples WHERE dataset_id = $1),
                     b AS (SELECT example_id, feedback_id FROM dataset_examples WHERE dataset_id = $2),
                     changes AS (
                         SELECT 'added' AS side, b.* FROM b WHERE NOT EXISTS (SELECT 1 FROM a WHERE a.example_id = b.example_id)
                         UNION ALL
                         SELECT 'removed', a.* FROM a WHERE NOT EXISTS (SELECT 1 FROM b WHERE b.example_id = a.example_id))
                """
            var difference = Difference(added: [], removed: [], samples: [], unchanged: 0)
            for row in try connection.query("""
                \(sides) SELECT side, \(stratum) AS stratum, count(*) AS n FROM changes c LEFT JOIN feedback f USING (feedback_id)
                GROUP BY 1, 2 ORDER BY 1, 2
                """, [a, b]) {
                let entry = (stratum: try row.decode("stratum", as: String.self), count: try row.decode("n", as: Int.self))
                if try row.decode("side", as: String.self) == "added" { difference.added.append(entry) } else { difference.removed.append(entry) }
            }
            difference.samples = try connection.query("""
                \(sides), ranked AS (
                    SELECT c.side, c.example_id, \(stratum) AS stratum, left(f.corrected ->> 'text', 120) AS text,
                           row_number() OVER (PARTITION BY c.side ORDER BY c.example_id) AS n
                    FROM changes c LEFT JOIN feedback f USING (feedback_id))
                SELECT side, example_id::text AS example_id, stratum, text FROM ranked WHERE n <= $3 ORDER BY side, example_id
                """, [a, b, Int32(samples)]).map { row in
                (try row.decode("side", as: String.self), try row.decode("example_id", as: String.self), try row.decode("stratum", as: String.self),
                 try row.decodeIfPresent("text", as: String.self))
            }
            difference.unchanged = try connection.query("""
                SELECT count(*) AS n FROM dataset_examples a JOIN dataset_examples b ON b.example_id = a.example_id AND b.dataset_id = $2 WHERE a.dataset_id = $1
                """, [a, b]).first!.decode("n", as: Int.self)
            return difference
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
