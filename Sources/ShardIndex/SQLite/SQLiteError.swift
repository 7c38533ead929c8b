import CShardSQLite

/// An error reported by SQLite, with the statement and database it happened in.
///
/// `code` is the primary result code, so `error.code == .busy` holds for every kind of busy;
/// `extendedCode` keeps the precise extended code (`.constraintUnique`), which `~=` matches
/// against primary patterns too.
///
/// ```swift
/// do {
///     try db.execute("INSERT INTO t(x) VALUES (1)")
/// } catch where error.code == .constraint {
///     print(error)
///     // SQLite error 19 (constraint): UNIQUE constraint failed: t.x (in `INSERT INTO t(x) VALUES (1)`) [/data/index.sqlite]
/// }
/// ```
public struct SQLiteError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The primary result code (`.constraint`, `.busy`, …).
    public var code: ResultCode
    /// The extended result code (`.constraintUnique`), or the primary code when SQLite gave no
    /// extended one. `extendedCode.primary == code` always holds.
    public var extendedCode: ResultCode
    /// SQLite's message (`sqlite3_errmsg`), or this wrapper's own for misuse it detects.
    public var message: String
    /// The SQL of the statement that failed, when there was one.
    public var sql: String?
    /// The path of the database file, as given to `Database.init(path:mode:)`.
    public var path: String?

    /// Creates an error; `code` may be primary or extended.
    ///
    /// ```swift
    /// throw SQLiteError(code: .misuse, message: "statement is finalized", sql: nil, path: db.path)
    /// ```
    public init(code: ResultCode, message: String, sql: String? = nil, path: String? = nil) {
        self.code = code.primary
        self.extendedCode = code
        self.message = message
        self.sql = sql
        self.path = path
    }

    /// "SQLite error 19 (constraint): UNIQUE constraint failed: t.x (in `INSERT …`) [path]".
    ///
    /// Whitespace runs in the SQL are shown as one space, and long SQL is cut at 240 characters.
    public var description: String {
        var text = "SQLite error \(code.rawValue) (\(code.name)): \(message)"
        if let sql { text += " (in `\(Self.abbreviated(sql))`)" }
        if let path { text += " [\(path)]" }
        return text
    }

    /// Collapses whitespace runs to single spaces and cuts the text at `limit` characters.
    static func abbreviated(_ sql: String, limit: Int = 240) -> String {
        var result = ""
        var pendingSpace = false
        var count = 0
        for character in sql {
            if character.isWhitespace {
                pendingSpace = !result.isEmpty
                continue
            }
            if pendingSpace {
                result.append(" ")
                count += 1
                pendingSpace = false
            }
            if count == limit {
                result.append("…")
                break
            }
            result.append(character)
            count += 1
        }
        return result
    }
}

extension SQLiteError {
    /// Reads the error of the last failed call on `connection`.
    ///
    /// `resultCode` is what the failed call returned; the extended code is taken from the
    /// connection when it refines the same primary code.
    init(resultCode: Int32, connection: OpaquePointer?, sql: String?, path: String?) {
        var code = ResultCode(rawValue: resultCode)
        let message: String
        if let connection {
            let extended = ResultCode(rawValue: sqlite3_extended_errcode(connection))
            if code.isPrimary, extended.primary == code { code = extended }
            message = String(cString: sqlite3_errmsg(connection))
        } else {
            message = String(cString: sqlite3_errstr(resultCode))
        }
        self.init(code: code, message: message, sql: sql, path: path)
    }
}
