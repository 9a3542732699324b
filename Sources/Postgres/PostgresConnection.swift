import CLibPQ
#if canImport(Glibc)
import Glibc
#endif

/// One libpq connection. Blocking; used by one thread at a time.
///
/// Reach it through ``PostgresPool/withConnection(_:)``, which runs your closure on the
/// connection's own thread, never on Swift's cooperative pool. A connection that broke
/// (server restart) reports `.connectionClosed` and is replaced on its next use.
public final class PostgresConnection {
    private var handle: OpaquePointer?
    /// SQL text → prepared statement name, for statements run with `prepared: true`.
    private var statements: [String: String] = [:]
    private static let statementCacheLimit = 512
    /// Set when libpq was left in a state the binding cannot recover from (see
    /// ``PostgresError/Code/protocolViolation``); the pool then replaces the connection.
    private var poisoned = false
    /// A transaction's BEGIN not sent yet: it goes out in the same round trip as the
    /// transaction's first statement (one round trip fewer per transaction).
    private var beginPending = false

    /// Opens a connection; a failed attempt still frees libpq's handle.
    public init(configuration: PostgresConfiguration) throws {
        let keywords = configuration.parameters.map { strdup($0.0) } + [nil]
        let values = configuration.parameters.map { strdup($0.1) } + [nil]
        defer {
            keywords.forEach { free($0) }
            values.forEach { free($0) }
        }
        let connection = keywords.withUnsafeBufferPointer { k in
            values.withUnsafeBufferPointer { v in
                k.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: k.count) { kp in
                    v.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: v.count) { vp in
                        PQconnectdbParams(kp, vp, configuration.expandsURL ? 1 : 0)
                    }
                }
            }
        }
        guard let connection, PQstatus(connection) == CONNECTION_OK else {
            let message = PostgresError.connectionMessage(connection)
            PQfinish(connection)
            throw PostgresError(.connectionFailed, message: message)
        }
        handle = connection
    }

    deinit {
        PQfinish(handle)
    }

    /// Closes the connection now; further use throws `.connectionClosed`.
    public func close() {
        PQfinish(handle)
        handle = nil
    }

    /// `false` once the connection broke, was closed, or was left in a state it cannot be
    /// used in (still in pipeline mode, inside a COPY, a missing result).
    public var isUsable: Bool {
        guard let handle, !poisoned else { return false }
        return PQstatus(handle) == CONNECTION_OK && PQpipelineStatus(handle) == PQ_PIPELINE_OFF
    }

    /// Marks the connection unusable when `body` fails with a protocol violation.
    private func guarding<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as PostgresError where error.code == .protocolViolation {
            poisoned = true
            throw error
        }
    }

    /// Whether a transaction is open (or failed and not yet rolled back).
    public var inTransaction: Bool {
        guard let handle else { return false }
        let status = PQtransactionStatus(handle)
        return status == PQTRANS_INTRANS || status == PQTRANS_INERROR
    }

    /// The server's process id for this session (useful to tell sessions apart).
    public var backendPID: Int32 { handle.map { PQbackendPID($0) } ?? 0 }

    private func connection(for query: String?) throws -> OpaquePointer {
        guard let handle, PQstatus(handle) == CONNECTION_OK else {
            throw PostgresError(.connectionClosed, message: "connection is closed", query: query)
        }
        guard !poisoned else {
            throw PostgresError(.protocolViolation, message: "connection was left in an unusable state", query: query)
        }
        return handle
    }

    /// Runs one statement with `$1…$n` parameters and returns its rows.
    ///
    /// Values are always bound, never spliced into the SQL. With `prepared`, the statement is
    /// parsed once per connection and reused.
    @discardableResult
    public func query(_ sql: String, _ parameters: [any PostgresEncodable] = [], prepared: Bool = false) throws -> PostgresRows {
        if beginPending {
            return try pipeline([(sql, parameters)], prepared: prepared)[0]
        }
        let connection = try connection(for: sql)
        let binds = try bind(parameters, sql: sql)
        let name = prepared ? try preparedName(for: sql, binds: binds, connection: connection) : nil
        let result = withParameterArrays(binds) { values, lengths, formats, types in
            if let name {
                return PQexecPrepared(connection, name, Int32(binds.count), values, lengths, formats, 0)
            }
            return PQexecParams(connection, sql, Int32(binds.count), types, values, lengths, formats, 0)
        }
        return try guarding { try PostgresRows.consume(result, connection: connection, query: sql) }
    }

    /// Runs SQL without parameters; may hold several statements (migrations).
    public func execute(script sql: String) throws {
        if beginPending {
            beginPending = false
            return try execute(script: "BEGIN;\n" + sql)
        }
        let connection = try connection(for: sql)
        _ = try guarding { try PostgresRows.consume(PQexec(connection, sql), connection: connection, query: sql) }
    }

    /// Runs `body` in a transaction: COMMIT when it returns, ROLLBACK when it throws.
    public func transaction<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        // BEGIN leaves with the first statement of `body` (see `beginPending`).
        beginPending = true
        do {
            let value = try body(self)
            if beginPending {
                beginPending = false
            } else {
                try query("COMMIT")
            }
            return value
        } catch {
            if beginPending {
                beginPending = false
            } else if isUsable {
                _ = try? query("ROLLBACK")
            }
            throw error
        }
    }

    /// Sends many statements in one round trip (libpq pipeline mode) and returns each one's rows.
    ///
    /// They run in order, each in its own implicit transaction unless the list itself contains
    /// BEGIN/COMMIT. After the first failure the server skips the rest; the first error is thrown
    /// once every result was read, so the connection stays usable.
    /// With `prepared`, each distinct statement is parsed once per connection and reused.
    @discardableResult
    public func pipeline(_ statements: [(sql: String, parameters: [any PostgresEncodable])], prepared usePrepared: Bool = false) throws -> [PostgresRows] {
        if beginPending {
            beginPending = false
            // BEGIN first in the same round trip; its (empty) result is not the caller's.
            return Array(try pipeline([("BEGIN", [])] + statements, prepared: usePrepared).dropFirst())
        }
        let connection = try connection(for: statements.first?.sql)
        let prepared = try statements.map { try bind($0.parameters, sql: $0.sql) }
        // Statements are prepared before pipeline mode starts (PQprepare is synchronous).
        var names: [String?] = Array(repeating: nil, count: statements.count)
        if usePrepared {
            for (index, (statement, binds)) in zip(statements, prepared).enumerated() {
                names[index] = try preparedName(for: statement.sql, binds: binds, connection: connection)
            }
        }
        guard PQenterPipelineMode(connection) == 1 else {
            throw PostgresError(.connectionClosed, message: PostgresError.connectionMessage(connection))
        }
        // Whatever happens below, the connection leaves pipeline mode or is given up: a
        // connection stuck in it would fail every later statement on it.
        defer { if PQexitPipelineMode(connection) != 1 { poisoned = true } }
        return try guarding { try runPipeline(statements, prepared: prepared, names: names, connection: connection) }
    }

    private func runPipeline(
        _ statements: [(sql: String, parameters: [any PostgresEncodable])], prepared: [[PostgresBind]], names: [String?],
        connection: OpaquePointer
    ) throws -> [PostgresRows] {
        for (index, (statement, binds)) in zip(statements, prepared).enumerated() {
            let sent = withParameterArrays(binds) { values, lengths, formats, types in
                if let name = names[index] {
                    return PQsendQueryPrepared(connection, name, Int32(binds.count), values, lengths, formats, 0)
                }
                return PQsendQueryParams(connection, statement.sql, Int32(binds.count), types, values, lengths, formats, 0)
            }
            guard sent == 1 else { throw Self.sendFailure(connection, query: statement.sql) }
        }
        guard PQpipelineSync(connection) == 1 else { throw Self.sendFailure(connection, query: nil) }
        var results: [PostgresRows] = []
        var firstError: PostgresError?
        for statement in statements {
            // Each statement yields its result, then a NULL that ends it.
            guard let result = PQgetResult(connection) else {
                throw PostgresError.from(result: nil, connection: connection, query: statement.sql)
            }
            let status = PQresultStatus(result)
            if status == PGRES_PIPELINE_ABORTED {
                PQclear(result)
                results.append(PostgresRows(columns: [], rows: [], affected: 0))
            } else {
                // A COPY cannot be finished here: libpq would hand out its result for ever.
                let unfinishable = status == PGRES_COPY_IN || status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH
                do {
                    results.append(try PostgresRows.consume(result, connection: connection, query: statement.sql))
                } catch let error as PostgresError {
                    if unfinishable { throw error }
                    firstError = firstError ?? error
                    results.append(PostgresRows(columns: [], rows: [], affected: 0))
                }
            }
            while let extra = PQgetResult(connection) { PQclear(extra) }
        }
        // The sync point's own result.
        while let result = PQgetResult(connection) {
            let status = PQresultStatus(result)
            PQclear(result)
            if status == PGRES_PIPELINE_SYNC { break }
        }
        if let firstError { throw firstError }
        return results
    }

    /// A statement that libpq would not even send: the connection broke, or it is in a state
    /// that accepts nothing (a protocol violation when the connection itself is fine).
    private static func sendFailure(_ connection: OpaquePointer, query: String?) -> PostgresError {
        if PQstatus(connection) != CONNECTION_OK {
            return PostgresError(.connectionClosed, message: PostgresError.connectionMessage(connection), query: query)
        }
        return PostgresError(.protocolViolation, message: PostgresError.connectionMessage(connection), query: query)
    }

    private func bind(_ parameters: [any PostgresEncodable], sql: String) throws -> [PostgresBind] {
        try parameters.enumerated().map { index, value in
            do {
                return try value.postgresBind()
            } catch let error as PostgresError {
                throw PostgresError(error.code, message: "parameter $\(index + 1): \(error.message)", query: sql)
            }
        }
    }

    /// The prepared statement for `sql`, preparing it on first use; `nil` once the cache is full
    /// (the caller then sends the statement unprepared).
    private func preparedName(for sql: String, binds: [PostgresBind], connection: OpaquePointer) throws -> String? {
        if let name = statements[sql] { return name }
        guard statements.count < Self.statementCacheLimit else { return nil }
        let name = "s\(statements.count)"
        let types = binds.map { Oid($0.oid) }
        let result = PQprepare(connection, name, sql, Int32(types.count), types)
        _ = try PostgresRows.consume(result, connection: connection, query: sql)
        statements[sql] = name
        return name
    }
}

/// Hands libpq the four parallel parameter arrays, valid only inside `body`.
private func withParameterArrays<R>(
    _ binds: [PostgresBind],
    _ body: (UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?, UnsafePointer<Int32>?, UnsafePointer<Oid>?) -> R
) -> R {
    // Text values are copied with the NUL libpq reads them up to; binary values (a batch's
    // column arrays, megabytes) are passed where they are: libpq copies them once, into its
    // output buffer.
    var values: [UnsafePointer<CChar>?] = []
    values.reserveCapacity(binds.count)
    var copies: [UnsafeMutablePointer<CChar>] = []
    defer { copies.forEach { $0.deallocate() } }
    let lengths = binds.map { Int32($0.bytes?.count ?? 0) }
    let formats = binds.map { Int32($0.format == .binary ? 1 : 0) }
    let types = binds.map { Oid($0.oid) }

    func send() -> R {
        values.withUnsafeBufferPointer { v in
            lengths.withUnsafeBufferPointer { l in
                formats.withUnsafeBufferPointer { f in
                    types.withUnsafeBufferPointer { t in
                        body(v.baseAddress, l.baseAddress, f.baseAddress, t.baseAddress)
                    }
                }
            }
        }
    }
    // Each binary value's pointer is valid only inside its closure: the next value is taken
    // (and the statement sent) within it.
    func take(_ index: Int) -> R {
        guard index < binds.count else { return send() }
        guard let bytes = binds[index].bytes else {
            values.append(nil)
            return take(index + 1)
        }
        if binds[index].format == .binary, !bytes.isEmpty {
            return bytes.withUnsafeBytes { raw in
                values.append(raw.baseAddress!.assumingMemoryBound(to: CChar.self))
                return take(index + 1)
            }
        }
        let copy = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count + 1)
        copies.append(copy)
        bytes.withUnsafeBytes { raw in
            if raw.count > 0 { UnsafeMutableRawPointer(copy).copyMemory(from: raw.baseAddress!, byteCount: raw.count) }
        }
        copy[bytes.count] = 0
        values.append(UnsafePointer(copy))
        return take(index + 1)
    }
    return take(0)
}

/// The rows of one statement, copied out of libpq (the result is freed at once).
public struct PostgresRows: Sendable, Sequence {
    public let columns: [String]
    public let rows: [PostgresRow]
    /// Rows inserted, updated or deleted (`PQcmdTuples`), 0 for other statements.
    public let affected: Int

    init(columns: [String], rows: [PostgresRow], affected: Int) {
        self.columns = columns
        self.rows = rows
        self.affected = affected
    }

    public func makeIterator() -> IndexingIterator<[PostgresRow]> { rows.makeIterator() }
    public var first: PostgresRow? { rows.first }
    public var count: Int { rows.count }

    /// Reads a result and clears it on every path.
    static func consume(_ result: OpaquePointer?, connection: OpaquePointer, query: String?) throws -> PostgresRows {
        defer { PQclear(result) }
        let status = result.map { PQresultStatus($0) } ?? PGRES_FATAL_ERROR
        guard status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK else {
            throw PostgresError.from(result: result, connection: connection, query: query)
        }
        guard let result else { return PostgresRows(columns: [], rows: [], affected: 0) }
        let columnCount = Int(PQnfields(result))
        let columns = (0..<columnCount).map { String(cString: PQfname(result, Int32($0))) }
        let index = Dictionary(columns.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        let rowCount = Int(PQntuples(result))
        var rows: [PostgresRow] = []
        rows.reserveCapacity(rowCount)
        for row in 0..<rowCount {
            var values: [String?] = []
            values.reserveCapacity(columnCount)
            for column in 0..<columnCount {
                if PQgetisnull(result, Int32(row), Int32(column)) == 1 {
                    values.append(nil)
                } else {
                    values.append(String(cString: PQgetvalue(result, Int32(row), Int32(column))))
                }
            }
            rows.append(PostgresRow(values: values, index: index))
        }
        let affected = Int(String(cString: PQcmdTuples(result))) ?? 0
        return PostgresRows(columns: columns, rows: rows, affected: affected)
    }
}

/// One row, its values in PostgreSQL's text format until decoded.
public struct PostgresRow: Sendable {
    let values: [String?]
    let index: [String: Int]

    /// Decodes column `name`; throws `.decoding` when it is NULL or not of that type.
    public func decode<T: PostgresDecodable>(_ name: String, as type: T.Type = T.self) throws -> T {
        guard let position = index[name] else { throw PostgresError(.decoding, message: "no column \(name)") }
        return try decode(position, as: type)
    }

    /// Decodes the column at `position` (0-based).
    public func decode<T: PostgresDecodable>(_ position: Int, as type: T.Type = T.self) throws -> T {
        guard position < values.count else { throw PostgresError(.decoding, message: "no column \(position)") }
        guard let text = values[position] else { throw PostgresError(.decoding, message: "column \(position) is NULL") }
        return try T(postgresText: text)
    }

    /// Decodes column `name`, or `nil` when it is NULL.
    public func decodeIfPresent<T: PostgresDecodable>(_ name: String, as type: T.Type = T.self) throws -> T? {
        guard let position = index[name] else { throw PostgresError(.decoding, message: "no column \(name)") }
        guard let text = values[position] else { return nil }
        return try T(postgresText: text)
    }
}
