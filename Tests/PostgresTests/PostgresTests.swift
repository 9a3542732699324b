import Foundation
import Postgres
import Testing
import TestSupport

func testConfiguration() throws -> PostgresConfiguration {
    let url = try #require(TestEnvironment.databaseURL, "MORPHEUS_TEST_DATABASE_URL is set by scripts/test.sh")
    return try PostgresConfiguration(url: url, applicationName: "morpheus-tests")
}

@Suite("PostgreSQL binding against the private server")
struct PostgresBindingTests {
    let pool: PostgresPool
    init() throws { pool = PostgresPool(configuration: try testConfiguration(), size: 2) }

    @Test("every supported type round-trips, non-ASCII text included")
    func typesRoundTrip() async throws {
        let id = UUID()
        let instant = Date(timeIntervalSince1970: 1_795_000_000.123456)
        let bytes = (0...255).map(UInt8.init)
        let row = try await pool.withConnection { connection in
            try connection.query(
                """
                SELECT $1::text AS t, $2::int8 AS i, $3::int4 AS i4, $4::bool AS b, $5::float8 AS d, $6::uuid AS u,
                       $7::timestamptz AS ts, $8::bytea AS bin, $9::text[] AS arr, $10::int8[] AS ints,
                       NULL::text AS missing, 'NaN'::float8 AS nan
                """,
                ["Grüße, 漫画 🎨 \"quoted\"", Int.max, Int32.min, true, 0.1, id, instant, PostgresBytes(bytes),
                 ["a,b", "with \"quote\"", "back\\slash", "NULL", "", "ü"], [1, -2, Int.min]]
            ).first!
        }
        #expect(try row.decode("t", as: String.self) == "Grüße, 漫画 🎨 \"quoted\"")
        #expect(try row.decode("i", as: Int.self) == Int.max)
        #expect(try row.decode("i4", as: Int32.self) == Int32.min)
        #expect(try row.decode("b", as: Bool.self) == true)
        #expect(try row.decode("d", as: Double.self) == 0.1)
        #expect(try row.decode("u", as: UUID.self) == id)
        let decoded = try row.decode("ts", as: Date.self)
        #expect(abs(decoded.timeIntervalSince1970 - instant.timeIntervalSince1970) < 0.000_001)
        #expect(try row.decode("bin", as: PostgresBytes.self).bytes == bytes)
        #expect(try row.decode("arr", as: [String].self) == ["a,b", "with \"quote\"", "back\\slash", "NULL", "", "ü"])
        #expect(try row.decode("ints", as: [Int].self) == [1, -2, Int.min])
        #expect(try row.decodeIfPresent("missing", as: String.self) == nil)
        #expect(try row.decode("nan", as: Double.self).isNaN)
        #expect(throws: PostgresError.self) { try row.decode("missing", as: String.self) }
        #expect(throws: PostgresError.self) { try row.decode("t", as: Int.self) }
    }

    @Test("jsonb goes in as text and comes back as equivalent JSON")
    func jsonbRoundTrip() async throws {
        let document = #"{"text": "Über \"uns\" \u2603", "n": [1, 2.5, null], "nested": {"ok": true}}"#
        let text = try await pool.withConnection { connection in
            try connection.query("SELECT $1::jsonb AS j", [PostgresJSONB(document)]).first!.decode("j", as: PostgresJSONB.self).text
        }
        let expected = try JSONSerialization.jsonObject(with: Data(document.utf8)) as? NSDictionary
        let actual = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? NSDictionary
        #expect(expected == actual)
        await #expect(throws: PostgresError.self) {
            try await pool.withConnection { try $0.query("SELECT $1::jsonb", [PostgresJSONB("{not json")]) }
        }
    }

    @Test("a NUL inside text is refused before it reaches the server, and the connection stays usable")
    func nulIsRejected() async throws {
        let outcome = try await pool.withConnection { connection -> (PostgresError?, Int) in
            var failure: PostgresError?
            do {
                try connection.query("SELECT $1::int8, $2::text", [1, "bad\u{0}text"])
            } catch let error as PostgresError {
                failure = error
            }
            return (failure, try connection.query("SELECT 7").first!.decode(0, as: Int.self))
        }
        let error = try #require(outcome.0)
        #expect(error.code == .invalidParameter)
        #expect(error.sqlState == nil)
        #expect(error.message.contains("$2"))
        #expect(error.message.contains("NUL"))
        #expect(outcome.1 == 7)
    }

    @Test("a unique violation is recognisable by SQLSTATE and constraint")
    func uniqueViolation() async throws {
        let error = try await pool.withConnection { connection -> PostgresError? in
            try connection.query("CREATE TEMP TABLE u (id text CONSTRAINT u_id_key UNIQUE)")
            try connection.query("INSERT INTO u VALUES ($1)", ["x"])
            defer { _ = try? connection.query("DROP TABLE u") }
            do {
                try connection.query("INSERT INTO u VALUES ($1)", ["x"])
                return nil
            } catch let error as PostgresError {
                return error
            }
        }
        let failure = try #require(error)
        #expect(failure.code == .server)
        #expect(failure.sqlState == "23505")
        #expect(failure.isUniqueViolation)
        #expect(failure.constraint == "u_id_key")
        #expect(failure.table == "u")
        #expect(failure.detail?.contains("already exists") == true)
    }

    @Test("a transaction that throws is rolled back")
    func rollbackOnError() async throws {
        struct Boom: Error {}
        let table = "rollback_\(UUID().uuidString.prefix(8).lowercased())"
        try await pool.withConnection { try $0.query("CREATE TABLE \(table) (v int)") }
        await #expect(throws: Boom.self) {
            try await pool.transaction { connection in
                try connection.query("INSERT INTO \(table) VALUES (1)")
                throw Boom()
            }
        }
        try await pool.transaction { try $0.query("INSERT INTO \(table) VALUES (2)") }
        let values = try await pool.withConnection { connection in
            try connection.query("SELECT v FROM \(table) ORDER BY v").map { try $0.decode(0, as: Int.self) }
        }
        #expect(values == [2])
        try await pool.withConnection { try $0.query("DROP TABLE \(table)") }
    }

    @Test("a pipeline sends many statements at once; a failure aborts the rest and is reported")
    func pipeline() async throws {
        let (counts, failure, afterwards) = try await pool.withConnection { connection -> ([Int], PostgresError?, Int) in
            try connection.query("CREATE TEMP TABLE p (id int PRIMARY KEY)")
            defer { _ = try? connection.query("DROP TABLE p") }
            let inserts = (0..<200).map { (sql: "INSERT INTO p VALUES ($1)", parameters: [Int32($0)] as [any PostgresEncodable]) }
            let results = try connection.pipeline(inserts)
            var failure: PostgresError?
            do {
                try connection.pipeline([
                    ("BEGIN", []), ("INSERT INTO p VALUES (1000)", []), ("INSERT INTO p VALUES (5)", []),
                    ("INSERT INTO p VALUES (1001)", []), ("COMMIT", []),
                ])
            } catch let error as PostgresError {
                failure = error
            }
            if connection.inTransaction { try connection.query("ROLLBACK") }
            let count = try connection.query("SELECT count(*) FROM p").first!.decode(0, as: Int.self)
            return (results.map(\.affected), failure, count)
        }
        #expect(counts == Array(repeating: 1, count: 200))
        #expect(failure?.isUniqueViolation == true)
        #expect(afterwards == 200)
    }

    @Test("a result the binding cannot use (a COPY) is a protocol violation, not a lost connection, and the pool replaces that connection", arguments: [false, true])
    func protocolViolation(inPipeline: Bool) async throws {
        let single = PostgresPool(configuration: try testConfiguration(), size: 1)
        let firstPID = try await single.withConnection { $0.backendPID }
        do {
            try await single.withConnection { connection in
                if inPipeline {
                    try connection.pipeline([("SELECT 1", []), ("COPY (SELECT 1) TO STDOUT", []), ("SELECT 2", [])])
                } else {
                    try connection.query("COPY (SELECT 1) TO STDOUT")
                }
            }
            Issue.record("a COPY must not pass as a result")
        } catch let error as PostgresError {
            #expect(error.code == .protocolViolation, "\(error)")
            #expect(!error.isConnectionFailure)
        }
        // The next use works, on a fresh connection: the broken one was not handed out again.
        let (value, pid) = try await single.withConnection { connection in
            (try connection.query("SELECT 42 AS v").first!.decode("v", as: Int.self), connection.backendPID)
        }
        #expect(value == 42)
        #expect(pid != firstPID)
        await single.close()
    }

    @Test("prepared statements are reused across calls")
    func preparedStatements() async throws {
        let sums = try await pool.withConnection { connection in
            try (0..<5).map { try connection.query("SELECT $1::int8 + 1", [$0], prepared: true).first!.decode(0, as: Int.self) }
        }
        #expect(sums == [1, 2, 3, 4, 5])
        let prepared = try await pool.withConnection { connection in
            try connection.query("SELECT $1::int8 + 1", [9], prepared: true)
            return try connection.query("SELECT count(*) FROM pg_prepared_statements WHERE statement = 'SELECT $1::int8 + 1'").first!.decode(0, as: Int.self)
        }
        #expect(prepared == 1)
    }

    @Test("openAll opens every connection of the pool up front: callers at once find them open")
    func openAll() async throws {
        let pool = PostgresPool(configuration: try testConfiguration(), size: 3)
        try await pool.openAll()
        let opened = Date()
        // Three callers holding their connection at the same time use the three slots.
        let backends = try await withThrowingTaskGroup(of: (Int32, Date).self) { group in
            for _ in 0..<3 {
                group.addTask {
                    try await pool.withConnection { connection in
                        usleep(200_000)
                        let started = try connection.query("SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()")
                            .first!.decode(0, as: Date.self)
                        return (connection.backendPID, started)
                    }
                }
            }
            return try await group.reduce(into: [Int32: Date]()) { $0[$1.0] = $1.1 }
        }
        #expect(backends.count == 3)
        #expect(backends.values.allSatisfy { $0 < opened }, "\(backends) opened after \(opened)")
        try await pool.openAll()
        let again = try await pool.withConnection { $0.backendPID }
        #expect(backends.keys.contains(again))
        await pool.close()
    }

    @Test("many concurrent callers share a small pool")
    func poolConcurrency() async throws {
        let results = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<40 {
                group.addTask {
                    try await pool.withConnection { try $0.query("SELECT $1::int8 * 2", [index]).first!.decode(0, as: Int.self) }
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.sorted() == (0..<40).map { $0 * 2 })
        let backends = try await withThrowingTaskGroup(of: Int32.self) { group in
            for _ in 0..<10 { group.addTask { try await pool.withConnection { $0.backendPID } } }
            return try await group.reduce(into: Set<Int32>()) { $0.insert($1) }
        }
        #expect(backends.count <= 2)
        await pool.close()
        await #expect(throws: PostgresError.self) { try await pool.withConnection { _ in 1 } }
    }
}

@Suite("PostgreSQL connection failures")
struct PostgresFailureTests {
    @Test("a refused connection fails with connectionFailed and never prints the password")
    func refusedConnection() async throws {
        let port = TestEnvironment.freePort()
        let configuration = try PostgresConfiguration(url: "postgres://morpheus:s3cr3t-pw@127.0.0.1:\(port)/morpheus", connectTimeout: .seconds(2))
        #expect(!configuration.description.contains("s3cr3t-pw"))
        #expect(configuration.description.contains("127.0.0.1:\(port)"))
        let pool = PostgresPool(configuration: configuration, size: 1)
        do {
            _ = try await pool.withConnection { $0.backendPID }
            Issue.record("connected to a port nothing listens on")
        } catch let error as PostgresError {
            #expect(error.code == .connectionFailed)
            #expect(error.isConnectionFailure)
            #expect(!error.description.contains("s3cr3t-pw"))
            #expect(!error.debugDescription.contains("s3cr3t-pw"))
        }
    }

    @Test("wrong credentials are a connectionFailed error")
    func wrongPassword() async throws {
        let url = try #require(TestEnvironment.databaseURL)
        var components = try #require(URLComponents(string: url))
        components.password = "definitely-wrong"
        let pool = PostgresPool(configuration: try PostgresConfiguration(url: components.string!), size: 1)
        await #expect(throws: PostgresError.self) { try await pool.withConnection { $0.backendPID } }
    }

    @Test("a malformed URL is refused when the configuration is made")
    func malformedURL() {
        #expect(throws: PostgresError.self) { try PostgresConfiguration(url: "postgres://host:notaport:/db?bad") }
    }

    @Test("after a server restart the pool reconnects by itself")
    func serverRestart() async throws {
        let (directory, port) = try await startPrivatePostgres()
        let url = try await runScript("postgres.sh", ["url", directory, "\(port)"]).trimmingCharacters(in: .whitespacesAndNewlines)
        let pool = PostgresPool(configuration: try PostgresConfiguration(url: url), size: 1)
        let before = try await pool.withConnection { $0.backendPID }

        try await runScript("postgres.sh", ["restart", directory, "\(port)"])
        // The first use may discover the broken session; within a deadline, work resumes.
        var failures: [PostgresError.Code] = []
        var after: Int32 = 0
        try await waitUntil("a query after the restart", timeout: .seconds(30)) {
            do {
                after = try await pool.withConnection { try $0.query("SELECT pg_backend_pid()").first!.decode(0, as: Int32.self) }
                return true
            } catch let error as PostgresError {
                failures.append(error.code)
                return false
            }
        }
        #expect(after != before)
        #expect(failures.allSatisfy { $0 == .connectionClosed || $0 == .connectionFailed })
        #expect(failures.count <= 1)
        await pool.close()
        try await runScript("postgres.sh", ["stop", directory, "\(port)"])
        try? FileManager.default.removeItem(atPath: directory)
    }
}

@Suite("Binary text arrays for batched inserts")
struct PostgresTextArrayTests {
    let pool: PostgresPool
    init() throws { pool = PostgresPool(configuration: try testConfiguration(), size: 1) }

    @Test("elements arrive byte for byte, NULLs included, and cast to other types in SQL")
    func roundTrip() async throws {
        let texts: [String?] = ["plain", nil, "with \"quotes\", {braces} and \\ backslash", "", "NULL", "Grüße 漫画 🎨", #"{"json": [1, "two"]}"#]
        let rows = try await pool.withConnection { connection in
            try connection.query("SELECT ordinality AS n, value FROM unnest($1::text[]) WITH ORDINALITY AS u(value, ordinality) ORDER BY n",
                                 [try PostgresTextArray(texts)])
        }
        #expect(try rows.map { try $0.decodeIfPresent("value", as: String.self) } == texts)
        let casts = try await pool.withConnection { connection in
            try connection.query("""
                SELECT (SELECT sum(v) FROM unnest($1::text[]::int4[]) v) AS total,
                       (SELECT string_agg(j->>'k', ',') FROM unnest($2::text[]::jsonb[]) j) AS keys,
                       cardinality($3::text[]) AS empty
                """, [try PostgresTextArray(["1", "2", "39"]), try PostgresTextArray([#"{"k":"a"}"#, #"{"k":"b"}"#]), PostgresTextArray()]).first!
        }
        #expect(try casts.decode("total", as: Int.self) == 42)
        #expect(try casts.decode("keys", as: String.self) == "a,b")
        #expect(try casts.decode("empty", as: Int.self) == 0)
    }

    @Test("binary values bound in place and text values copied arrive side by side, empty and NULL ones too")
    func mixedParameters() async throws {
        let bytes = (0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        var column = PostgresTextArray()
        try column.append(nil)
        try column.append(bytes: Array("ab".utf8))
        let parameters: [any PostgresEncodable] = [String?("Grüße"), PostgresBytes([]), PostgresBytes(bytes), PostgresBytes(bytes), Int?.none, column]
        let row = try await pool.withConnection { connection in
            try connection.query("""
                SELECT $1 AS text, length($2::bytea) AS empty, $3::bytea = $4::bytea AS same, $3::bytea AS echo,
                       $5::int4 IS NULL AS null, array_to_string($6::text[], ',', '-') AS column
                """, parameters).first!
        }
        #expect(try row.decode("text", as: String.self) == "Grüße")
        #expect(try row.decode("empty", as: Int.self) == 0)
        #expect(try row.decode("same", as: Bool.self))
        #expect(try row.decode("echo", as: PostgresBytes.self).bytes == bytes)
        #expect(try row.decode("null", as: Bool.self))
        #expect(try row.decode("column", as: String.self) == "-,ab")
    }

    @Test("ids bound as uuid[] compare as uuids, and a filter on them parses the array once, not per row as a cast of text[] does")
    func uuidArrays() async throws {
        let ids = ["6F9619FF-8B86-D011-B42D-00C04FC964FF", "0e7c3a4e-5c1b-4f7e-9a3d-2b8f6c1d0a11"]
        let (typed, plans) = try await pool.withConnection { connection in
            let typed = try connection.query("""
                SELECT pg_typeof($1::uuid[])::text AS type, '6f9619ff-8b86-d011-b42d-00c04fc964ff'::uuid = ANY($1::uuid[]) AS found,
                       cardinality($1::uuid[]) AS n
                """, [PostgresUUIDArray(ids)]).first!
            // The statements as the store prepares them, then their plan from the sixth run on.
            let filter = "SELECT g FROM generate_series(1, 3) g WHERE md5(g::text)::uuid <> ALL"
            let statements = ["\(filter)($1::uuid[])", "\(filter)($1::text[]::uuid[])"]
            _ = try connection.query(statements[0], [PostgresUUIDArray(ids)], prepared: true)
            _ = try connection.query(statements[1], [ids], prepared: true)
            try connection.query("SET plan_cache_mode = force_generic_plan")
            defer { _ = try? connection.query("RESET plan_cache_mode") }
            let plans = try statements.map { sql in
                let prepared = try connection.query("SELECT name, parameter_types::text AS types FROM pg_prepared_statements WHERE statement = $1", [sql]).first!
                let name = try prepared.decode("name", as: String.self)
                let plan = try connection.query("EXPLAIN EXECUTE \"\(name)\"('{}')").map { try $0.decode(0, as: String.self) }.joined(separator: "\n")
                return try prepared.decode("types", as: String.self) + " " + plan
            }
            return (typed, plans)
        }
        #expect(try typed.decode("type", as: String.self) == "uuid[]")
        #expect(try typed.decode("found", as: Bool.self))
        #expect(try typed.decode("n", as: Int.self) == 2)
        #expect(plans[0].hasPrefix("{uuid[]} ") && plans[0].contains("<> ALL ($1)"), "\(plans[0])")
        #expect(plans[1].hasPrefix("{text[]} ") && plans[1].contains("($1)::uuid[]"), "the cast stays in the filter: \(plans[1])")
    }

    @Test("a NUL inside an element is refused before anything is sent")
    func nulRefused() {
        #expect(throws: PostgresError.self) { try PostgresTextArray(["fine", "bad\u{0}"]) }
    }
}
