import CShardSQLite

/// A compiled SQL statement (`sqlite3_stmt`), finalized when the last reference goes away.
///
/// Bind parameters by 1-based index, step through rows, read columns by 0-based index:
///
/// ```swift
/// let statement = try db.cachedStatement("SELECT id, key FROM samples WHERE shard = ?")
/// try statement.bind(shardID, at: 1)
/// while try statement.step() {
///     let id = statement.int64(at: 0)
///     let key = statement.textBytes(at: 1)
/// }
/// ```
///
/// Binding and reading integers and doubles, and `step()`, allocate nothing; text and blobs are
/// copied once, by SQLite when bound and into the returned array or string when read.
///
/// A statement belongs to its `Database` and its thread: it is not `Sendable`. After
/// `Database.close()`, `step()` throws `.misuse` (SQLite keeps the connection alive until the
/// statement is released).
public final class Statement {
    /// The SQL the statement was compiled from.
    public let sql: String
    /// The `sqlite3_stmt` handle.
    let handle: OpaquePointer
    /// The `sqlite3` connection handle, for error messages.
    let connection: OpaquePointer
    /// Whether the database is still open.
    let lifetime: ConnectionLifetime
    /// The database path, for error messages.
    let path: String

    init(
        handle: OpaquePointer, connection: OpaquePointer, lifetime: ConnectionLifetime, sql: String,
        path: String
    ) {
        self.handle = handle
        self.connection = connection
        self.lifetime = lifetime
        self.sql = sql
        self.path = path
    }

    deinit {
        sqlite3_finalize(handle)
    }

    /// The number of `?` parameters (`sqlite3_bind_parameter_count`).
    public var parameterCount: Int32 { sqlite3_bind_parameter_count(handle) }

    /// The number of result columns (`sqlite3_column_count`); 0 for statements that return none.
    public var columnCount: Int32 { sqlite3_column_count(handle) }

    /// Whether the statement leaves the database unchanged (`sqlite3_stmt_readonly`).
    public var isReadOnly: Bool { sqlite3_stmt_readonly(handle) != 0 }

    /// The name of result column `column` (0-based), as given by `AS` or derived by SQLite.
    ///
    /// - Complexity: O(n) in the name's length.
    public func columnName(at column: Int32) -> String {
        checkColumn(column)
        guard let name = sqlite3_column_name(handle, column) else { return "" }
        return String(cString: name)
    }

    // MARK: Binding

    /// Binds a 64-bit integer to parameter `index` (1-based) with `sqlite3_bind_int64`.
    ///
    /// ```swift
    /// try statement.bind(Int64(7), at: 1)
    /// ```
    ///
    /// - Throws: `SQLiteError` with code `.range` when `index` is out of range.
    /// - Complexity: O(1), no allocation.
    public func bind(_ value: Int64, at index: Int32) throws(SQLiteError) {
        try check(sqlite3_bind_int64(handle, index, value))
    }

    /// Binds an `Int` to parameter `index` (1-based) as a 64-bit integer.
    ///
    /// ```swift
    /// try statement.bind(offsets.count, at: 2)
    /// ```
    ///
    /// - Throws: `SQLiteError` with code `.range` when `index` is out of range.
    /// - Complexity: O(1), no allocation.
    public func bind(_ value: Int, at index: Int32) throws(SQLiteError) {
        try check(sqlite3_bind_int64(handle, index, Int64(value)))
    }

    /// Binds a double to parameter `index` (1-based) with `sqlite3_bind_double`.
    ///
    /// ```swift
    /// try statement.bind(0.25, at: 1)
    /// ```
    ///
    /// - Throws: `SQLiteError` with code `.range` when `index` is out of range.
    /// - Complexity: O(1), no allocation.
    public func bind(_ value: Double, at index: Int32) throws(SQLiteError) {
        try check(sqlite3_bind_double(handle, index, value))
    }

    /// Binds a string's UTF-8 as TEXT to parameter `index` (1-based); SQLite copies the bytes.
    ///
    /// ```swift
    /// try statement.bind(text: "train", at: 1)
    /// ```
    ///
    /// - Throws: `SQLiteError` with code `.range` when `index` is out of range, `.tooBig` past
    ///   SQLite's length limit.
    /// - Complexity: O(n) in the string's UTF-8 length.
    public func bind(text: String, at index: Int32) throws(SQLiteError) {
        var text = text
        let rc = text.withUTF8 { buffer in
            bindText(UnsafeRawBufferPointer(buffer), at: index)
        }
        try check(rc)
    }

    /// Binds raw bytes as TEXT to parameter `index` (1-based), without UTF-8 validation.
    ///
    /// Keys from tar member names are bytes that need not be UTF-8; this stores them exactly, and
    /// `textBytes(at:)` reads them back exactly. SQLite copies the bytes before returning.
    ///
    /// ```swift
    /// try name.withUnsafeBytes { try statement.bind(textBytes: $0, at: 1) }
    /// ```
    ///
    /// - Throws: `SQLiteError` with code `.range` when `index` is out of range, `.tooBig` past
    ///   SQLite's length limit.
    /// - Complexity: O(n) in `bytes.count`.
    public func bind(textBytes bytes: UnsafeRawBufferPointer, at index: Int32) throws(SQLiteError) {
        try check(bindText(bytes, at: index))
    }

    /// Binds raw bytes as TEXT to parameter `index` (1-based), without UTF-8 validation.
    ///
    /// ```swift
    /// try statement.bind(textBytes: Array("a/b\u{FF}".utf8), at: 1)
    /// ```
    ///
    /// - Throws: `SQLiteError` with code `.range` when `index` is out of range, `.tooBig` past
    ///   SQLite's length limit.
    /// - Complexity: O(n) in `bytes.count`.
    public func bind(textBytes bytes: [UInt8], at index: Int32) throws(SQLiteError) {
        let rc = bytes.withUnsafeBytes { bindText($0, at: index) }
        try check(rc)
    }

    /// Binds bytes as a BLOB to parameter `index` (1-based); SQLite copies the bytes.
    ///
    /// An empty array binds an empty blob, not NULL.
    ///
    /// ```swift
    /// try statement.bind(blob: [0xDE, 0xAD], at: 3)
    /// ```
    ///
    /// - Throws: `SQLiteError` with code `.range` when `index` is out of range, `.tooBig` past
    ///   SQLite's length limit.
    /// - Complexity: O(n) in `bytes.count`.
    public func bind(blob bytes: [UInt8], at index: Int32) throws(SQLiteError) {
        let rc = bytes.withUnsafeBytes { bindBlob($0, at: index) }
        try check(rc)
    }

    /// Binds bytes as a BLOB to parameter `index` (1-based); SQLite copies the bytes.
    ///
    /// ```swift
    /// try header.withUnsafeBytes { try statement.bind(blob: $0, at: 1) }
    /// ```
    ///
    /// - Throws: `SQLiteError` with code `.range` when `index` is out of range, `.tooBig` past
    ///   SQLite's length limit.
    /// - Complexity: O(n) in `bytes.count`.
    public func bind(blob bytes: UnsafeRawBufferPointer, at index: Int32) throws(SQLiteError) {
        try check(bindBlob(bytes, at: index))
    }

    /// Binds NULL to parameter `index` (1-based).
    ///
    /// ```swift
    /// try statement.bindNull(at: 2)
    /// ```
    ///
    /// - Throws: `SQLiteError` with code `.range` when `index` is out of range.
    /// - Complexity: O(1).
    public func bindNull(at index: Int32) throws(SQLiteError) {
        try check(sqlite3_bind_null(handle, index))
    }

    /// Binds any `SQLValue` to parameter `index` (1-based).
    ///
    /// ```swift
    /// try statement.bind(SQLValue.text("val"), at: 1)
    /// ```
    ///
    /// - Throws: `SQLiteError` with code `.range` when `index` is out of range.
    /// - Complexity: O(1) for numbers and NULL, O(n) for text and blobs.
    public func bind(_ value: SQLValue, at index: Int32) throws(SQLiteError) {
        switch value {
        case .null: try bindNull(at: index)
        case .integer(let v): try bind(v, at: index)
        case .real(let v): try bind(v, at: index)
        case .text(let v): try bind(text: v, at: index)
        case .blob(let v): try bind(blob: v, at: index)
        }
    }

    /// Binds `values` to parameters 1 through `values.count`.
    ///
    /// ```swift
    /// try statement.bind([.integer(1), .text("a")])
    /// ```
    ///
    /// - Throws: `SQLiteError` with code `.range` when `values.count` differs from
    ///   `parameterCount`; nothing is bound then.
    /// - Complexity: O(n) in the values and their sizes.
    public func bind(_ values: [SQLValue]) throws(SQLiteError) {
        let expected = Int(parameterCount)
        guard values.count == expected else {
            throw SQLiteError(
                code: .range,
                message: "expected \(expected) argument\(expected == 1 ? "" : "s"), got \(values.count)",
                sql: sql,
                path: path
            )
        }
        for (offset, value) in values.enumerated() {
            try bind(value, at: Int32(offset + 1))
        }
    }

    // MARK: Running

    /// Runs the statement to its next row (`sqlite3_step`).
    ///
    /// ```swift
    /// while try statement.step() { total += statement.int64(at: 0) }
    /// ```
    ///
    /// - Returns: `true` when a row is ready to read, `false` when the statement is done.
    /// - Throws: `SQLiteError` (`.constraint`, `.busy`, `.readonly`, `.interrupt`, …); the
    ///   statement is reset before the error is thrown, bindings kept. `.misuse` once the
    ///   database is closed.
    /// - Complexity: whatever the query costs; no allocation of its own.
    public func step() throws(SQLiteError) -> Bool {
        guard lifetime.isOpen else {
            throw SQLiteError(code: .misuse, message: "the database is closed", sql: sql, path: path)
        }
        let rc = sqlite3_step(handle)
        if rc == SQLITE_ROW { return true }
        if rc == SQLITE_DONE { return false }
        let error = SQLiteError(resultCode: rc, connection: connection, sql: sql, path: path)
        sqlite3_reset(handle)
        throw error
    }

    /// Rewinds the statement so it can run again (`sqlite3_reset`); bindings are kept.
    ///
    /// ```swift
    /// statement.reset()
    /// ```
    ///
    /// - Complexity: O(1).
    public func reset() {
        sqlite3_reset(handle)
    }

    /// Sets every parameter back to NULL (`sqlite3_clear_bindings`).
    ///
    /// ```swift
    /// statement.clearBindings()
    /// ```
    ///
    /// - Complexity: O(n) in the number of parameters.
    public func clearBindings() {
        sqlite3_clear_bindings(handle)
    }

    /// Resets, binds `values` (when not empty), steps until done, and resets again.
    ///
    /// With no values the current bindings are used, so `bind` calls may come first. Rows the
    /// statement returns are skipped.
    ///
    /// ```swift
    /// let insert = try db.cachedStatement("INSERT INTO t(a, b) VALUES (?, ?)")
    /// try insert.execute([1, "one"])
    /// ```
    ///
    /// - Throws: `SQLiteError` from binding (`.range` for a wrong count) or from stepping.
    /// - Complexity: whatever the statement costs.
    public func execute(_ values: [SQLValue] = []) throws(SQLiteError) {
        sqlite3_reset(handle)
        if !values.isEmpty { try bind(values) }
        while try step() {}
        sqlite3_reset(handle)
    }

    // MARK: Reading columns

    /// Column `column` (0-based) of the current row as a 64-bit integer (`sqlite3_column_int64`).
    ///
    /// NULL reads as 0, text is converted as SQLite converts it.
    ///
    /// ```swift
    /// let offset = statement.int64(at: 2)
    /// ```
    ///
    /// - Complexity: O(1), no allocation.
    public func int64(at column: Int32) -> Int64 {
        checkColumn(column)
        return sqlite3_column_int64(handle, column)
    }

    /// Column `column` (0-based) of the current row as an `Int`.
    ///
    /// ```swift
    /// let count = statement.int(at: 0)
    /// ```
    ///
    /// - Complexity: O(1), no allocation.
    public func int(at column: Int32) -> Int {
        Int(int64(at: column))
    }

    /// Column `column` (0-based) of the current row as a double (`sqlite3_column_double`).
    ///
    /// ```swift
    /// let ratio = statement.double(at: 1)
    /// ```
    ///
    /// - Complexity: O(1), no allocation.
    public func double(at column: Int32) -> Double {
        checkColumn(column)
        return sqlite3_column_double(handle, column)
    }

    /// Column `column` (0-based) of the current row as a `String`; NULL reads as "".
    ///
    /// Invalid UTF-8 is repaired with U+FFFD, so this is not for keys: use `textBytes(at:)`.
    ///
    /// ```swift
    /// let name = statement.text(at: 1)
    /// ```
    ///
    /// - Complexity: O(n) in the text's length.
    public func text(at column: Int32) -> String {
        withTextBytes(at: column) { String(decoding: $0, as: UTF8.self) }
    }

    /// The exact bytes of column `column` (0-based): a TEXT value's bytes as stored (even when
    /// not valid UTF-8), a BLOB's bytes, the decimal text of a number; NULL reads as `[]`.
    ///
    /// ```swift
    /// let key: [UInt8] = statement.textBytes(at: 1)
    /// ```
    ///
    /// - Complexity: O(n) in the value's length.
    public func textBytes(at column: Int32) -> [UInt8] {
        withTextBytes(at: column) { Array($0) }
    }

    /// Calls `body` with the exact bytes of column `column` (0-based), without copying them.
    ///
    /// The buffer points into SQLite's memory: do not let it escape `body`.
    ///
    /// ```swift
    /// let matches = statement.withTextBytes(at: 0) { $0.elementsEqual(wanted) }
    /// ```
    ///
    /// - Throws: what `body` throws.
    /// - Complexity: O(1) plus `body`.
    public func withTextBytes<R, E: Error>(
        at column: Int32,
        _ body: (UnsafeBufferPointer<UInt8>) throws(E) -> R
    ) throws(E) -> R {
        checkColumn(column)
        let start: UnsafePointer<UInt8>?
        if sqlite3_column_type(handle, column) == SQLITE_BLOB {
            start = sqlite3_column_blob(handle, column)?.assumingMemoryBound(to: UInt8.self)
        } else {
            start = sqlite3_column_text(handle, column)
        }
        // sqlite3_column_bytes must come after the pointer call, which may convert the value.
        let count = Int(sqlite3_column_bytes(handle, column))
        return try body(UnsafeBufferPointer(start: count == 0 ? nil : start, count: count))
    }

    /// Column `column` (0-based) of the current row as a byte array; NULL reads as `[]`.
    ///
    /// ```swift
    /// let digest = statement.blob(at: 3)
    /// ```
    ///
    /// - Complexity: O(n) in the value's length.
    public func blob(at column: Int32) -> [UInt8] {
        checkColumn(column)
        guard let start = sqlite3_column_blob(handle, column) else { return [] }
        let count = Int(sqlite3_column_bytes(handle, column))
        return Array(UnsafeRawBufferPointer(start: start, count: count))
    }

    /// Whether column `column` (0-based) of the current row is NULL.
    ///
    /// ```swift
    /// let hasParent = !statement.isNull(at: 4)
    /// ```
    ///
    /// - Complexity: O(1).
    public func isNull(at column: Int32) -> Bool {
        checkColumn(column)
        return sqlite3_column_type(handle, column) == SQLITE_NULL
    }

    /// Column `column` (0-based) of the current row in its storage class.
    ///
    /// TEXT becomes a `String` (invalid UTF-8 repaired); use `textBytes(at:)` for exact bytes.
    ///
    /// ```swift
    /// if case .integer(let n) = statement.value(at: 0) { total += n }
    /// ```
    ///
    /// - Complexity: O(1) for numbers and NULL, O(n) for text and blobs.
    public func value(at column: Int32) -> SQLValue {
        checkColumn(column)
        switch sqlite3_column_type(handle, column) {
        case SQLITE_INTEGER: return .integer(sqlite3_column_int64(handle, column))
        case SQLITE_FLOAT: return .real(sqlite3_column_double(handle, column))
        case SQLITE_TEXT: return .text(text(at: column))
        case SQLITE_BLOB: return .blob(blob(at: column))
        default: return .null
        }
    }

    // MARK: Helpers

    /// Traps on a column index outside the result columns: a programmer error.
    private func checkColumn(_ column: Int32) {
        precondition(
            column >= 0 && column < sqlite3_column_count(handle),
            "column \(column) out of range (the statement has \(sqlite3_column_count(handle)) columns): \(sql)"
        )
    }

    /// Throws the connection's error unless `rc` is `SQLITE_OK`.
    private func check(_ rc: Int32) throws(SQLiteError) {
        guard rc == SQLITE_OK else {
            throw SQLiteError(resultCode: rc, connection: connection, sql: sql, path: path)
        }
    }

    /// Binds bytes as TEXT with `SQLITE_TRANSIENT`; an empty buffer binds '' (never NULL).
    private func bindText(_ bytes: UnsafeRawBufferPointer, at index: Int32) -> Int32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else {
            return sqlite3_bind_text(handle, index, "", 0, cshard_sqlite_transient())
        }
        return sqlite3_bind_text64(
            handle,
            index,
            base.assumingMemoryBound(to: CChar.self),
            UInt64(bytes.count),
            cshard_sqlite_transient(),
            UInt8(SQLITE_UTF8)
        )
    }

    /// Binds bytes as a BLOB with `SQLITE_TRANSIENT`; an empty buffer binds a zero-length blob.
    private func bindBlob(_ bytes: UnsafeRawBufferPointer, at index: Int32) -> Int32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else {
            return sqlite3_bind_zeroblob(handle, index, 0)
        }
        return sqlite3_bind_blob64(handle, index, base, UInt64(bytes.count), cshard_sqlite_transient())
    }
}

@available(*, unavailable, message: "a Statement belongs to one thread; prepare one per thread")
extension Statement: Sendable {}
