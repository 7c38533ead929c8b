import CShardSQLite

/// One SQLite connection (`sqlite3`), closed when the last reference goes away.
///
/// A `Database` belongs to one thread at a time: it is opened with `SQLITE_OPEN_NOMUTEX` and is
/// not `Sendable`; open one per thread. Every connection has foreign keys on, extended result
/// codes on, and a 5-second busy timeout.
///
/// ```swift
/// let db = try Database(path: "/data/index.sqlite", mode: .readWriteCreate)
/// try db.inTransaction {
///     try db.cachedStatement("INSERT INTO metadata(key, value) VALUES (?, ?)")
///         .execute(["producer", "shardstore 0.1"])
/// }
/// let count = try db.scalarInt("SELECT count(*) FROM metadata") ?? 0
/// ```
public final class Database {
    /// How a database file is opened.
    public enum Mode: Sendable {
        /// `SQLITE_OPEN_READONLY`: every write fails with `.readonly`; the file must exist.
        case readOnly
        /// `SQLITE_OPEN_READWRITE`: the file must exist.
        case readWrite
        /// `SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE`: the file is created when missing.
        case readWriteCreate
    }

    /// The path the database was opened with (`":memory:"` for an in-memory database).
    public let path: String

    /// The mode the database was opened with.
    public let mode: Mode

    /// The connection; `nil` once closed.
    private var handle: OpaquePointer?

    /// Shared with this connection's statements, so they refuse to run once it is closed.
    let lifetime = ConnectionLifetime()

    /// Statements kept by `cachedStatement(_:)`, by SQL text.
    private var statementCache: [String: Statement] = [:]

    /// The busy timeout every connection starts with, in milliseconds.
    public static let defaultBusyTimeout: Int32 = 5000

    /// Opens (or, with `.readWriteCreate`, creates) the database at `path`.
    ///
    /// Uses `sqlite3_open_v2` with `SQLITE_OPEN_NOMUTEX`. URI filenames are off: a path that
    /// starts with `file:` is opened as a relative file of that name. Then turns on extended
    /// result codes and foreign keys, and sets a busy timeout of 5000 ms.
    ///
    /// ```swift
    /// let db = try Database(path: indexPath, mode: .readOnly)
    /// ```
    ///
    /// - Parameters:
    ///   - path: a file path, or `":memory:"` for a private in-memory database.
    ///   - mode: read-only, read-write, or read-write creating the file.
    ///   - followingSymlinks: false adds `SQLITE_OPEN_NOFOLLOW`: the open fails if any component
    ///     of `path` is a symbolic link (for a file this process just created, such as a new
    ///     index's temporary file, whose name must not be redirected).
    /// - Throws: `SQLiteError` naming the path: `.cantOpen` when the file (or, for
    ///   `.readWriteCreate`, its folder) does not exist or may not be opened, or is reached
    ///   through a symbolic link without `followingSymlinks`.
    /// - Complexity: O(1); the file's header is read lazily, by the first statement.
    public init(path: String, mode: Mode, followingSymlinks: Bool = true) throws(SQLiteError) {
        self.path = path
        self.mode = mode
        var flags = SQLITE_OPEN_NOMUTEX
        switch mode {
        case .readOnly: flags |= SQLITE_OPEN_READONLY
        case .readWrite: flags |= SQLITE_OPEN_READWRITE
        case .readWriteCreate: flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
        }
        if !followingSymlinks { flags |= SQLITE_OPEN_NOFOLLOW }
        // Debian's SQLite is built with SQLITE_USE_URI=1, so a leading "file:" would be parsed as
        // a URI even without SQLITE_OPEN_URI; "./file:x" is the same file without that meaning.
        let filename = path.hasPrefix("file:") ? "./" + path : path
        var connection: OpaquePointer?
        let rc = sqlite3_open_v2(filename, &connection, flags, nil)
        guard rc == SQLITE_OK, let connection else {
            let error = SQLiteError(resultCode: rc, connection: connection, sql: nil, path: path)
            sqlite3_close_v2(connection)
            throw error
        }
        handle = connection
        sqlite3_extended_result_codes(connection, 1)
        sqlite3_busy_timeout(connection, Self.defaultBusyTimeout)
        do {
            try execute("PRAGMA foreign_keys = ON")
        } catch {
            close()
            throw error
        }
    }

    deinit {
        close()
    }

    /// Closes the connection: drops the cached statements, then calls `sqlite3_close_v2`.
    ///
    /// Statements still referenced elsewhere keep SQLite's connection alive (a "zombie") until
    /// they are released; their `step()` throws `.misuse` in the meantime. Closing twice does
    /// nothing, and every later call on this `Database` throws `.misuse` (or traps, for the
    /// properties).
    ///
    /// ```swift
    /// db.close()
    /// ```
    ///
    /// - Complexity: O(n) in the cached statements.
    public func close() {
        guard let connection = handle else { return }
        lifetime.isOpen = false
        statementCache.removeAll()
        sqlite3_close_v2(connection)
        handle = nil
    }

    /// Whether `close()` was called.
    public var isClosed: Bool { handle == nil }

    /// The open connection, or a `.misuse` error naming the path.
    func connection() throws(SQLiteError) -> OpaquePointer {
        guard let handle else {
            throw SQLiteError(code: .misuse, message: "the database is closed", sql: nil, path: path)
        }
        return handle
    }

    /// The open connection; traps when closed.
    private var openHandle: OpaquePointer {
        guard let handle else { preconditionFailure("the database \(path) is closed") }
        return handle
    }

    // MARK: Running SQL

    /// Runs one or more SQL statements separated by semicolons, skipping any rows they return.
    ///
    /// Meant for schema changes, pragmas and migrations; values never go into the SQL text:
    /// use `prepare(_:)` or `cachedStatement(_:)` and bind them. Statements run one after the
    /// other; those before a failing one stay done (wrap the call in `inTransaction` to undo).
    ///
    /// ```swift
    /// try db.execute("""
    ///     CREATE TABLE t(id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE);
    ///     CREATE INDEX t_key ON t(key);
    ///     """)
    /// ```
    ///
    /// - Throws: `SQLiteError` whose `sql` is the statement that failed.
    /// - Complexity: whatever the statements cost.
    public func execute(_ sql: String) throws(SQLiteError) {
        let connection = try connection()
        var script = sql
        let failure: SQLiteError? = script.withUTF8 { utf8 in
            guard let base = utf8.baseAddress else { return nil }
            var offset = 0
            while offset < utf8.count {
                let start = base + offset
                var statement: OpaquePointer?
                var tail: UnsafePointer<CChar>?
                let rc = start.withMemoryRebound(to: CChar.self, capacity: utf8.count - offset) {
                    sqlite3_prepare_v2(connection, $0, Int32(utf8.count - offset), &statement, &tail)
                }
                let consumed = tail.map { UnsafeRawPointer($0) - UnsafeRawPointer(start) }
                guard rc == SQLITE_OK else {
                    sqlite3_finalize(statement)
                    let rest = String(decoding: UnsafeBufferPointer(rebasing: utf8[offset...]), as: UTF8.self)
                    return SQLiteError(
                        resultCode: rc,
                        connection: connection,
                        sql: Self.firstStatement(in: rest),
                        path: path
                    )
                }
                guard let consumed, consumed > 0 else { return nil }
                let text = String(
                    decoding: UnsafeBufferPointer(start: start, count: consumed), as: UTF8.self)
                offset += consumed
                guard let statement else { continue }  // only whitespace or a comment
                var stepRC = sqlite3_step(statement)
                while stepRC == SQLITE_ROW { stepRC = sqlite3_step(statement) }
                if stepRC != SQLITE_DONE {
                    let error = SQLiteError(
                        resultCode: stepRC,
                        connection: connection,
                        sql: Self.trimmed(text),
                        path: path
                    )
                    sqlite3_finalize(statement)
                    return error
                }
                sqlite3_finalize(statement)
            }
            return nil
        }
        if let failure { throw failure }
    }

    /// Compiles one SQL statement (`sqlite3_prepare_v3`).
    ///
    /// The statement is yours: it is finalized when you release it. For statements that run
    /// often, `cachedStatement(_:)` compiles once per connection.
    ///
    /// ```swift
    /// let select = try db.prepare("SELECT key FROM samples WHERE id = ?")
    /// ```
    ///
    /// - Throws: `SQLiteError` for invalid SQL (code `.error`, SQLite's message, the SQL), and
    ///   `.misuse` when `sql` holds no statement or more than one.
    /// - Complexity: O(n) in the SQL's length, plus SQLite's planning.
    public func prepare(_ sql: String) throws(SQLiteError) -> Statement {
        try makeStatement(sql, persistent: false)
    }

    /// Returns this connection's compiled statement for `sql`, compiling it on first use.
    ///
    /// The statement comes back reset, with all bindings NULL. Two users of the same SQL share
    /// one statement: finish stepping through one before asking for it again.
    ///
    /// ```swift
    /// let insert = try db.cachedStatement("INSERT INTO members(sample, ext, offset) VALUES (?, ?, ?)")
    /// try insert.bind(sampleID, at: 1)
    /// ```
    ///
    /// - Throws: as `prepare(_:)`, the first time only.
    /// - Complexity: O(n) in the SQL's length (one hash lookup) after the first call.
    public func cachedStatement(_ sql: String) throws(SQLiteError) -> Statement {
        if let statement = statementCache[sql] {
            statement.reset()
            statement.clearBindings()
            return statement
        }
        let statement = try makeStatement(sql, persistent: true)
        statementCache[sql] = statement
        return statement
    }

    /// Compiles exactly one statement, rejecting empty SQL and trailing statements.
    private func makeStatement(_ sql: String, persistent: Bool) throws(SQLiteError) -> Statement {
        let connection = try connection()
        let flags = persistent ? UInt32(SQLITE_PREPARE_PERSISTENT) : 0
        var text = sql
        var statement: OpaquePointer?
        var rc = SQLITE_OK
        var trailing = false
        text.withUTF8 { utf8 in
            guard let base = utf8.baseAddress else { return }
            base.withMemoryRebound(to: CChar.self, capacity: utf8.count) { start in
                var tail: UnsafePointer<CChar>?
                rc = sqlite3_prepare_v3(connection, start, Int32(utf8.count), flags, &statement, &tail)
                guard rc == SQLITE_OK, statement != nil, let tail else { return }
                let remaining = utf8.count - (tail - start)
                guard remaining > 0 else { return }
                // Whatever follows must hold no statement, only whitespace, `;` or comments.
                var extra: OpaquePointer?
                if sqlite3_prepare_v2(connection, tail, Int32(remaining), &extra, nil) != SQLITE_OK
                    || extra != nil
                {
                    trailing = true
                }
                sqlite3_finalize(extra)
            }
        }
        guard rc == SQLITE_OK else {
            sqlite3_finalize(statement)
            throw SQLiteError(resultCode: rc, connection: connection, sql: sql, path: path)
        }
        guard let statement else {
            throw SQLiteError(code: .misuse, message: "no SQL statement to prepare", sql: sql, path: path)
        }
        if trailing {
            sqlite3_finalize(statement)
            throw SQLiteError(
                code: .misuse,
                message: "more than one SQL statement; prepare them one by one, or use execute(_:)",
                sql: sql,
                path: path
            )
        }
        return Statement(
            handle: statement, connection: connection, lifetime: lifetime, sql: sql, path: path)
    }

    // MARK: State

    /// The rows changed by the most recent INSERT, UPDATE or DELETE (`sqlite3_changes64`).
    ///
    /// ```swift
    /// try db.execute("DELETE FROM samples WHERE shard = 3")
    /// let removed = db.changes
    /// ```
    ///
    /// - Complexity: O(1).
    public var changes: Int { Int(sqlite3_changes64(openHandle)) }

    /// The rowid of the most recent successful INSERT (`sqlite3_last_insert_rowid`); 0 if none.
    ///
    /// ```swift
    /// try insertShard.execute([.text(path)])
    /// let shardID = db.lastInsertRowID
    /// ```
    ///
    /// - Complexity: O(1).
    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(openHandle) }

    /// Whether a transaction is open (`!sqlite3_get_autocommit`).
    ///
    /// ```swift
    /// precondition(!db.isInTransaction)
    /// ```
    ///
    /// - Complexity: O(1).
    public var isInTransaction: Bool { sqlite3_get_autocommit(openHandle) == 0 }

    /// Stops the statement running on this connection as soon as possible (`sqlite3_interrupt`):
    /// it fails with `.interrupt`, and an open transaction is rolled back.
    ///
    /// ```swift
    /// db.interrupt()
    /// ```
    ///
    /// - Complexity: O(1).
    public func interrupt() {
        if let handle { sqlite3_interrupt(handle) }
    }

    /// Sets how long a statement waits for another connection's lock before failing with
    /// `.busy` (`sqlite3_busy_timeout`); 0 fails at once.
    ///
    /// ```swift
    /// try db.setBusyTimeout(milliseconds: 0)
    /// ```
    ///
    /// - Throws: `SQLiteError` with code `.misuse` when the database is closed.
    /// - Complexity: O(1).
    public func setBusyTimeout(milliseconds: Int32) throws(SQLiteError) {
        sqlite3_busy_timeout(try connection(), milliseconds)
    }

    // MARK: Convenience

    /// The first column of the first row of a query, as an integer; `nil` when there is no row
    /// or the value is NULL. The statement is cached.
    ///
    /// ```swift
    /// let samples = try db.scalarInt("SELECT count(*) FROM samples WHERE shard = ?", .integer(id)) ?? 0
    /// ```
    ///
    /// - Throws: `SQLiteError` for invalid SQL, a wrong number of arguments (`.range`), or a
    ///   failed step.
    /// - Complexity: whatever the query costs up to its first row.
    public func scalarInt(_ sql: String, _ args: SQLValue...) throws(SQLiteError) -> Int64? {
        let statement = try scalarStatement(sql, args)
        defer { statement.reset() }
        guard try statement.step(), !statement.isNull(at: 0) else { return nil }
        return statement.int64(at: 0)
    }

    /// The first column of the first row of a query, as text; `nil` when there is no row or the
    /// value is NULL. The statement is cached.
    ///
    /// ```swift
    /// let mode = try db.scalarText("PRAGMA journal_mode")
    /// ```
    ///
    /// - Throws: `SQLiteError` for invalid SQL, a wrong number of arguments (`.range`), or a
    ///   failed step.
    /// - Complexity: whatever the query costs up to its first row.
    public func scalarText(_ sql: String, _ args: SQLValue...) throws(SQLiteError) -> String? {
        let statement = try scalarStatement(sql, args)
        defer { statement.reset() }
        guard try statement.step(), !statement.isNull(at: 0) else { return nil }
        return statement.text(at: 0)
    }

    /// The cached statement for `sql` with `args` bound, checked to return a column.
    private func scalarStatement(_ sql: String, _ args: [SQLValue]) throws(SQLiteError) -> Statement {
        let statement = try cachedStatement(sql)
        guard statement.columnCount > 0 else {
            throw SQLiteError(
                code: .misuse, message: "the statement returns no column", sql: sql, path: path)
        }
        try statement.bind(args)
        return statement
    }

    /// The first complete statement of `script` (through its `;`, as `sqlite3_complete` sees
    /// it), trimmed; the whole script, trimmed, when no `;` ends a complete statement.
    private static func firstStatement(in script: String) -> String {
        var prefix = ""
        for character in script {
            prefix.append(character)
            if character == ";", sqlite3_complete(prefix) != 0 { return trimmed(prefix) }
        }
        return trimmed(script)
    }

    /// `sql` without leading and trailing whitespace.
    private static func trimmed(_ sql: String) -> String {
        var slice = Substring(sql)
        while let first = slice.first, first.isWhitespace { slice.removeFirst() }
        while let last = slice.last, last.isWhitespace { slice.removeLast() }
        return String(slice)
    }
}

/// Whether a connection is open, shared by a `Database` and its statements.
final class ConnectionLifetime {
    var isOpen = true
}

@available(*, unavailable, message: "a Database belongs to one thread; open one per thread")
extension Database: Sendable {}
