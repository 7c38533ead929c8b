/// An SQLite result code: a primary code in the low 8 bits, optionally refined by an extended
/// code in the higher bits (`SQLITE_CONSTRAINT_UNIQUE` is `19 | 8 << 8`).
///
/// Named constants cover the codes ShardStore acts on. Compare with `==` for an exact code, or
/// pattern-match with `~=`, where a primary pattern also matches its extended codes:
///
/// ```swift
/// do {
///     try statement.execute([.text("a")])   // throws(SQLiteError): `error` is an SQLiteError
/// } catch where error.code == .busy {
///     // retry later
/// } catch {
///     switch error.extendedCode {
///     case .constraintUnique: break   // this exact extended code
///     case .constraint: break         // any other constraint failure
///     default: throw error
///     }
/// }
/// ```
///
/// Where the `do` body also throws other errors, write `catch let error as SQLiteError where
/// error.code == .busy`; where it throws only `SQLiteError` that `as` draws an "always true"
/// warning. Swift 6.3.1 crashes compiling a non-exhaustive typed `catch … where` clause that
/// assigns a `var` declared outside the `do`: end such a chain with a plain `catch`.
///
/// See <https://www.sqlite.org/rescode.html>.
public struct ResultCode: RawRepresentable, Hashable, Sendable {
    /// The raw code as SQLite returns it.
    public let rawValue: Int32

    /// Wraps a raw SQLite result code.
    @inlinable
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// The primary code: the least significant 8 bits (`.constraintUnique.primary == .constraint`).
    @inlinable
    public var primary: ResultCode { ResultCode(rawValue: rawValue & 0xFF) }

    /// Whether this code is a primary code (has no extended bits).
    @inlinable
    public var isPrimary: Bool { rawValue & ~0xFF == 0 }

    /// Matches `code` against `pattern`: a primary pattern matches itself and all its extended
    /// codes; an extended pattern matches only itself.
    ///
    /// - Complexity: O(1).
    @inlinable
    public static func ~= (pattern: ResultCode, code: ResultCode) -> Bool {
        pattern.isPrimary ? pattern == code.primary : pattern == code
    }

    // MARK: Primary codes

    /// `SQLITE_OK` (0): success.
    public static let ok = ResultCode(rawValue: 0)
    /// `SQLITE_ERROR` (1): generic error, such as an SQL syntax error or a missing table.
    public static let error = ResultCode(rawValue: 1)
    /// `SQLITE_INTERNAL` (2): an internal malfunction of SQLite.
    public static let `internal` = ResultCode(rawValue: 2)
    /// `SQLITE_PERM` (3): the requested access mode could not be provided.
    public static let perm = ResultCode(rawValue: 3)
    /// `SQLITE_ABORT` (4): the operation was aborted, for example by a rollback.
    public static let abort = ResultCode(rawValue: 4)
    /// `SQLITE_BUSY` (5): another connection holds a conflicting lock (after the busy timeout).
    public static let busy = ResultCode(rawValue: 5)
    /// `SQLITE_LOCKED` (6): a conflict inside the same connection or shared cache.
    public static let locked = ResultCode(rawValue: 6)
    /// `SQLITE_NOMEM` (7): out of memory.
    public static let noMem = ResultCode(rawValue: 7)
    /// `SQLITE_READONLY` (8): a write on a read-only connection or file.
    public static let readonly = ResultCode(rawValue: 8)
    /// `SQLITE_INTERRUPT` (9): the operation was stopped by `Database.interrupt()`.
    public static let interrupt = ResultCode(rawValue: 9)
    /// `SQLITE_IOERR` (10): the operating system reported an I/O error.
    public static let ioErr = ResultCode(rawValue: 10)
    /// `SQLITE_CORRUPT` (11): the database file is malformed.
    public static let corrupt = ResultCode(rawValue: 11)
    /// `SQLITE_NOTFOUND` (12): unknown opcode or file-control operation.
    public static let notFound = ResultCode(rawValue: 12)
    /// `SQLITE_FULL` (13): the disk or the database is full.
    public static let full = ResultCode(rawValue: 13)
    /// `SQLITE_CANTOPEN` (14): the file could not be opened.
    public static let cantOpen = ResultCode(rawValue: 14)
    /// `SQLITE_PROTOCOL` (15): a locking protocol problem.
    public static let `protocol` = ResultCode(rawValue: 15)
    /// `SQLITE_SCHEMA` (17): the schema changed under a statement.
    public static let schema = ResultCode(rawValue: 17)
    /// `SQLITE_TOOBIG` (18): a string or blob exceeds the size limit.
    public static let tooBig = ResultCode(rawValue: 18)
    /// `SQLITE_CONSTRAINT` (19): a constraint (UNIQUE, NOT NULL, CHECK, foreign key) failed.
    public static let constraint = ResultCode(rawValue: 19)
    /// `SQLITE_MISMATCH` (20): a data type mismatch, such as a non-integer rowid.
    public static let mismatch = ResultCode(rawValue: 20)
    /// `SQLITE_MISUSE` (21): the library was used incorrectly (also used by this wrapper).
    public static let misuse = ResultCode(rawValue: 21)
    /// `SQLITE_AUTH` (23): an authorizer denied the operation.
    public static let auth = ResultCode(rawValue: 23)
    /// `SQLITE_RANGE` (25): a parameter index out of range, or the wrong number of arguments.
    public static let range = ResultCode(rawValue: 25)
    /// `SQLITE_NOTADB` (26): the file is not an SQLite database.
    public static let notADatabase = ResultCode(rawValue: 26)
    /// `SQLITE_ROW` (100): `sqlite3_step` produced a row.
    public static let row = ResultCode(rawValue: 100)
    /// `SQLITE_DONE` (101): `sqlite3_step` finished.
    public static let done = ResultCode(rawValue: 101)

    // MARK: Extended codes

    /// `SQLITE_BUSY_RECOVERY`: another connection is recovering a WAL file.
    public static let busyRecovery = ResultCode(rawValue: 5 | 1 << 8)
    /// `SQLITE_BUSY_SNAPSHOT`: a read transaction cannot be upgraded because its snapshot is stale.
    public static let busySnapshot = ResultCode(rawValue: 5 | 2 << 8)
    /// `SQLITE_READONLY_ROLLBACK`: a hot journal (left by a writer that died mid-transaction) must
    /// be rolled back, which a read-only connection cannot do.
    public static let readonlyRollback = ResultCode(rawValue: 8 | 3 << 8)
    /// `SQLITE_READONLY_DBMOVED`: the database file was moved or unlinked while open.
    public static let readonlyDBMoved = ResultCode(rawValue: 8 | 4 << 8)
    /// `SQLITE_CONSTRAINT_CHECK`: a CHECK constraint failed.
    public static let constraintCheck = ResultCode(rawValue: 19 | 1 << 8)
    /// `SQLITE_CONSTRAINT_FOREIGNKEY`: a foreign key constraint failed.
    public static let constraintForeignKey = ResultCode(rawValue: 19 | 3 << 8)
    /// `SQLITE_CONSTRAINT_NOTNULL`: a NOT NULL constraint failed.
    public static let constraintNotNull = ResultCode(rawValue: 19 | 5 << 8)
    /// `SQLITE_CONSTRAINT_PRIMARYKEY`: a PRIMARY KEY constraint failed.
    public static let constraintPrimaryKey = ResultCode(rawValue: 19 | 6 << 8)
    /// `SQLITE_CONSTRAINT_UNIQUE`: a UNIQUE constraint failed.
    public static let constraintUnique = ResultCode(rawValue: 19 | 8 << 8)

    /// A short lowercase name of the primary code, as used in error descriptions ("constraint").
    public var name: String {
        switch primary.rawValue {
        case 0: "ok"
        case 1: "error"
        case 2: "internal"
        case 3: "perm"
        case 4: "abort"
        case 5: "busy"
        case 6: "locked"
        case 7: "nomem"
        case 8: "readonly"
        case 9: "interrupt"
        case 10: "ioerr"
        case 11: "corrupt"
        case 12: "notfound"
        case 13: "full"
        case 14: "cantopen"
        case 15: "protocol"
        case 16: "empty"
        case 17: "schema"
        case 18: "toobig"
        case 19: "constraint"
        case 20: "mismatch"
        case 21: "misuse"
        case 22: "nolfs"
        case 23: "auth"
        case 24: "format"
        case 25: "range"
        case 26: "notadb"
        case 27: "notice"
        case 28: "warning"
        case 100: "row"
        case 101: "done"
        default: "unknown"
        }
    }
}

extension ResultCode: CustomStringConvertible {
    /// The name and number, with the extended number when there is one: `constraint (19/2067)`.
    public var description: String {
        isPrimary ? "\(name) (\(rawValue))" : "\(name) (\(primary.rawValue)/\(rawValue))"
    }
}
