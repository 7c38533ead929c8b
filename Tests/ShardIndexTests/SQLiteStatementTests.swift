import Testing

@testable import ShardIndex

@Suite("SQLite Statement")
struct SQLiteStatementTests {
    /// A connection with `t(v)`: no declared type, so every value keeps its storage class.
    private func makeDatabase() throws -> Database {
        let db = try Database(path: ":memory:", mode: .readWriteCreate)
        try db.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
        return db
    }

    @Test(
        "every SQLValue round-trips",
        arguments: [
            SQLValue.null,
            .integer(0), .integer(Int64.min), .integer(Int64.max),
            .real(-0.5), .real(Double.greatestFiniteMagnitude), .real(-Double.infinity),
            .text(""), .text("héllo ✓ 🦀"), .text("nul\u{0}inside"),
            .blob([]), .blob([0, 255, 1, 0]),
        ]
    )
    func valueRoundTrip(_ value: SQLValue) throws {
        let db = try makeDatabase()
        try db.cachedStatement("INSERT INTO t(v) VALUES (?)").execute([value])
        let select = try db.cachedStatement("SELECT v, typeof(v) FROM t")
        #expect(try select.step())
        #expect(select.value(at: 0) == value)
        let storageClass: String =
            switch value {
            case .null: "null"
            case .integer: "integer"
            case .real: "real"
            case .text: "text"
            case .blob: "blob"
            }
        #expect(select.text(at: 1) == storageClass)
        #expect(try !select.step())
    }

    @Test("typed binds and reads")
    func typedAccessors() throws {
        let db = try Database(path: ":memory:", mode: .readWriteCreate)
        try db.execute("CREATE TABLE t(a, b, c, d, e, f)")
        let insert = try db.prepare("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)")
        #expect(insert.parameterCount == 6)
        #expect(!insert.isReadOnly)
        try insert.bind(Int64(1) << 40, at: 1)
        try insert.bind(-7, at: 2)
        try insert.bind(2.5, at: 3)
        try insert.bind(text: "ünïcode", at: 4)
        try insert.bindNull(at: 5)
        try insert.bind(blob: [1, 2, 3], at: 6)
        #expect(try !insert.step())

        let select = try db.prepare("SELECT a, b, c, d, e, f AS bytes FROM t")
        #expect(select.isReadOnly)
        #expect(select.columnCount == 6)
        #expect(select.columnName(at: 0) == "a")
        #expect(select.columnName(at: 5) == "bytes")
        #expect(try select.step())
        #expect(select.int64(at: 0) == 1 << 40)
        #expect(select.int(at: 1) == -7)
        #expect(select.double(at: 2) == 2.5)
        #expect(select.text(at: 3) == "ünïcode")
        #expect(select.textBytes(at: 3) == Array("ünïcode".utf8))
        #expect(select.isNull(at: 4))
        #expect(!select.isNull(at: 3))
        #expect(select.text(at: 4) == "")
        #expect(select.textBytes(at: 4) == [])
        #expect(select.blob(at: 5) == [1, 2, 3])
        #expect(select.textBytes(at: 5) == [1, 2, 3])
        #expect(select.blob(at: 4) == [])
    }

    @Test("TEXT with invalid UTF-8 keeps its exact bytes, is found by equality, and stays TEXT")
    func invalidUTF8Text() throws {
        let db = try makeDatabase()
        let key: [UInt8] = [0x61, 0xFF, 0xFE, 0x2F, 0xC3, 0x28, 0x00, 0x80, 0x7A]
        let insert = try db.prepare("INSERT INTO t(v) VALUES (?)")
        try insert.bind(textBytes: key, at: 1)
        try insert.execute()

        let select = try db.prepare("SELECT v, typeof(v), length(CAST(v AS BLOB)) FROM t WHERE v = ?")
        try key.withUnsafeBytes { try select.bind(textBytes: $0, at: 1) }
        #expect(try select.step())
        #expect(select.textBytes(at: 0) == key)
        #expect(select.withTextBytes(at: 0) { Array($0) } == key)
        #expect(select.text(at: 1) == "text")
        #expect(select.int(at: 2) == key.count)
        #expect(select.text(at: 0).unicodeScalars.contains("\u{FFFD}"))
        #expect(try !select.step())

        // A blob with the same bytes is a different value.
        #expect(try db.scalarInt("SELECT count(*) FROM t WHERE v = ?", .blob(key)) == 0)
    }

    @Test("empty text binds '' and an empty blob binds a zero-length blob, never NULL")
    func emptyValuesAreNotNull() throws {
        let db = try makeDatabase()
        let insert = try db.cachedStatement("INSERT INTO t(v) VALUES (?)")
        try insert.bind(textBytes: [], at: 1)
        try insert.execute()
        try insert.bind(textBytes: UnsafeRawBufferPointer(start: nil, count: 0), at: 1)
        try insert.execute()
        try insert.bind(text: "", at: 1)
        try insert.execute()
        try insert.bind(blob: [], at: 1)
        try insert.execute()
        try insert.bind(blob: UnsafeRawBufferPointer(start: nil, count: 0), at: 1)
        try insert.execute()
        let rows = try db.prepare("SELECT typeof(v), length(v) FROM t ORDER BY id")
        var seen: [String] = []
        while try rows.step() {
            #expect(rows.int(at: 1) == 0)
            seen.append(rows.text(at: 0))
        }
        #expect(seen == ["text", "text", "text", "blob", "blob"])
    }

    @Test("binding errors: index out of range and wrong argument count")
    func bindErrors() throws {
        let db = try makeDatabase()
        let insert = try db.prepare("INSERT INTO t(v) VALUES (?)")
        let outOfRange = #expect(throws: SQLiteError.self) { try insert.bind(1, at: 2) }
        #expect(outOfRange?.code == .range)
        #expect(outOfRange?.message == "column index out of range")
        #expect(outOfRange?.sql == "INSERT INTO t(v) VALUES (?)")
        let count = #expect(throws: SQLiteError.self) { try insert.execute([1, 2]) }
        #expect(count?.code == .range)
        #expect(count?.message == "expected 1 argument, got 2")
        #expect(try db.scalarInt("SELECT count(*) FROM t") == 0)
    }

    @Test("execute resets, so the same statement runs again")
    func executeRepeats() throws {
        let db = try makeDatabase()
        let insert = try db.prepare("INSERT INTO t(v) VALUES (?)")
        for i in 0..<100 { try insert.execute([.integer(Int64(i))]) }
        try insert.bind(1000, at: 1)
        try insert.execute()
        #expect(try db.scalarInt("SELECT sum(v) FROM t") == 4950 + 1000)
    }

    @Test("prepare refuses empty SQL, several statements and syntax errors")
    func prepareErrors() throws {
        let db = try makeDatabase()
        let empty = #expect(throws: SQLiteError.self) { _ = try db.prepare("  -- nothing\n") }
        #expect(empty?.code == .misuse)
        #expect(empty?.message == "no SQL statement to prepare")
        let two = #expect(throws: SQLiteError.self) { _ = try db.prepare("SELECT 1; SELECT 2") }
        #expect(two?.code == .misuse)
        let syntax = #expect(throws: SQLiteError.self) { _ = try db.prepare("SELECT * FROM nope") }
        #expect(syntax?.code == .error)
        #expect(syntax?.message == "no such table: nope")
        #expect(syntax?.sql == "SELECT * FROM nope")
        // A trailing semicolon and comment are fine.
        let one = try db.prepare("SELECT 1; -- done")
        #expect(try one.step())
        #expect(one.int(at: 0) == 1)
    }

    @Test("a failed step resets the statement so it can run again")
    func failedStepResets() throws {
        let db = try Database(path: ":memory:", mode: .readWriteCreate)
        try db.execute("CREATE TABLE u(x UNIQUE)")
        let insert = try db.prepare("INSERT INTO u(x) VALUES (?)")
        try insert.execute([1])
        #expect(throws: SQLiteError.self) { try insert.execute([1]) }
        try insert.execute([2])
        #expect(try db.scalarInt("SELECT count(*) FROM u") == 2)
    }
}
