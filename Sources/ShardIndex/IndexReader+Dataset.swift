import ShardCore

/// The questions a dataset asks while it opens and, without a location table, on each lookup.
/// Positions are global indexes when `splitID` is nil, else positions in that split (see
/// ``splitID(_:)``). Per-lookup queries use cached statements.
extension IndexReader {
    /// Shrinks this connection's page cache to 256 KiB (SQLite's default is 2 MiB): the sequential
    /// scans that build location tables and files need no more, and a `pread` dataset's peak
    /// memory stays low.
    ///
    /// ```swift
    /// let reader = try IndexReader(path: "ds/index.sqlite")
    /// try reader.useSmallPageCache()
    /// ```
    ///
    /// - Throws: `SQLiteError`.
    /// - Complexity: O(1).
    public func useSmallPageCache() throws {
        try database.execute("PRAGMA cache_size = -256")
    }

    /// Whether any member has extension `ext` (as stored: lower-case, without the dot).
    ///
    /// ```swift
    /// if try reader.hasMember(withExtension: "jpg") { ... }
    /// ```
    ///
    /// - Throws: `SQLiteError`.
    /// - Complexity: one pass over the members until the first match (no index on `ext`).
    public func hasMember(withExtension ext: String) throws -> Bool {
        try database.scalarInt("SELECT 1 FROM members WHERE ext = ? LIMIT 1", .text(ext)) != nil
    }

    /// Every extension some member has, once each, in no particular order.
    ///
    /// ```swift
    /// let all = try reader.distinctExtensions().sorted()   // ["cls", "jpg"]
    /// ```
    ///
    /// - Throws: `SQLiteError`.
    /// - Complexity: one pass over the members.
    public func distinctExtensions() throws -> [String] {
        var all: [String] = []
        let st = try database.prepare("SELECT DISTINCT ext FROM members")
        while try st.step() { all.append(st.text(at: 0)) }
        return all
    }

    /// The global index of each position of split `splitID`, in position order: 4 bytes a sample.
    ///
    /// ```swift
    /// let id = try reader.splitID("val")
    /// let indexes = try reader.splitSampleIDs(splitID: id, count: try reader.sampleCount(inSplit: "val"))
    /// ```
    ///
    /// - Parameter count: the split's sample count, as counted before.
    /// - Throws: ``IndexError/invalidArgument(_:)`` for a sample id that does not fit 32 bits, or
    ///   when the split does not hold `count` samples (the index changed meanwhile); `SQLiteError`.
    /// - Complexity: one pass over the split's memberships.
    public func splitSampleIDs(splitID: Int64, count: Int) throws -> [UInt32] {
        var out: [UInt32] = []
        out.reserveCapacity(count)
        let st = try database.prepare("SELECT sample_id FROM split_members WHERE split_id = ? ORDER BY position")
        try st.bind(splitID, at: 1)
        while try st.step() {
            let id = st.int64(at: 0)
            guard id >= 0, id < Int64(UInt32.max) else {
                throw IndexError.invalidArgument("the index has a split member with sample id \(id)")
            }
            out.append(UInt32(id))
        }
        guard out.count == count else {
            throw IndexError.invalidArgument(
                "the index changed while it was being read (\(out.count) samples in the split, not \(count)); open it again"
            )
        }
        return out
    }

    /// The total length of the members with one of `extensions` (all when nil) of the samples of
    /// split `splitID` (all samples when nil).
    ///
    /// ```swift
    /// let bytes = try reader.selectionBytes(splitID: nil, extensions: ["jpg"])
    /// ```
    ///
    /// - Throws: `SQLiteError`.
    /// - Complexity: one pass over the members.
    public func selectionBytes(splitID: Int64?, extensions: [String]?) throws -> Int64 {
        let filter = Self.extensionFilter(extensions, column: "m.ext")
        var sql = "SELECT COALESCE(SUM(m.length), 0) FROM members m WHERE 1"
        var values: [SQLValue] = []
        if let splitID {
            sql += " AND m.sample_id IN (SELECT sample_id FROM split_members WHERE split_id = ?)"
            values.append(.integer(splitID))
        }
        let st = try database.prepare(sql + filter.sql)
        try st.bind(values + filter.values)
        _ = try st.step()
        return st.int64(at: 0)
    }

    /// The row id and key bytes of the sample at `position`, or nil when there is none.
    ///
    /// ```swift
    /// if let head = try reader.sampleHead(atPosition: 0, splitID: nil) { print(head.id, head.key) }
    /// ```
    ///
    /// - Throws: `SQLiteError`.
    /// - Complexity: one or two indexed lookups (cached statement).
    public func sampleHead(atPosition position: Int, splitID: Int64?) throws -> (id: Int64, key: [UInt8])? {
        let head: Statement
        if let splitID {
            head = try database.cachedStatement(
                "SELECT s.id, s.key FROM split_members sm JOIN samples s ON s.id = sm.sample_id WHERE sm.split_id = ? AND sm.position = ?"
            )
            try head.bind(splitID, at: 1)
            try head.bind(Int64(position), at: 2)
        } else {
            head = try database.cachedStatement("SELECT id, key FROM samples WHERE id = ?")
            try head.bind(Int64(position), at: 1)
        }
        defer { head.reset() }
        guard try head.step() else { return nil }
        return (head.int64(at: 0), head.textBytes(at: 1))
    }

    /// The key of the sample at `position`, or nil when there is none.
    ///
    /// ```swift
    /// let key = try reader.key(atPosition: 3, splitID: try reader.splitID("val"))
    /// ```
    ///
    /// - Throws: `SQLiteError`.
    /// - Complexity: as ``sampleHead(atPosition:splitID:)``.
    public func key(atPosition position: Int, splitID: Int64?) throws -> SampleKey? {
        try sampleHead(atPosition: position, splitID: splitID).map { SampleKey(bytes: $0.key) }
    }

    /// The global index (row id) of the sample at `position` of split `splitID`, or nil when
    /// there is none.
    ///
    /// ```swift
    /// let index = try reader.globalIndex(atPosition: 0, splitID: try reader.splitID("val"))
    /// ```
    ///
    /// - Throws: `SQLiteError`.
    /// - Complexity: one indexed lookup (cached statement).
    public func globalIndex(atPosition position: Int, splitID: Int64) throws -> Int64? {
        try database.scalarInt(
            "SELECT sample_id FROM split_members WHERE split_id = ? AND position = ?", .integer(splitID),
            .integer(Int64(position)))
    }

    /// The member rows of the sample with row id `sampleID` whose extension is one of
    /// `extensions` (all when nil), as stored: unvalidated (see
    /// ``MemberLocation/defect(shardSize:)``) and in no particular order.
    ///
    /// ```swift
    /// let rows = try reader.memberRows(ofSample: 7, extensions: ["jpg", "cls"])
    /// ```
    ///
    /// - Throws: `SQLiteError`.
    /// - Complexity: one indexed range (cached statement, one per extension count).
    public func memberRows(ofSample sampleID: Int64, extensions: [String]?) throws -> [MemberRecord] {
        let filter = Self.extensionFilter(extensions, column: "ext")
        let st = try database.cachedStatement(
            "SELECT ext, shard_id, header_offset, data_offset, length FROM members WHERE sample_id = ?" + filter.sql)
        defer { st.reset() }
        try st.bind([.integer(sampleID)] + filter.values)
        return try Self.memberRecords(st)
    }

    /// The positions of the samples with key `key`, ascending: global indexes, or positions in
    /// split `splitID`. More than one only when duplicates were kept at ingest.
    ///
    /// ```swift
    /// let found = try reader.positions(ofKey: SampleKey("000123"), splitID: nil)
    /// ```
    ///
    /// - Throws: `SQLiteError`.
    /// - Complexity: one indexed lookup per sample found (cached statement).
    public func positions(ofKey key: SampleKey, splitID: Int64?) throws -> [Int] {
        let st: Statement
        if let splitID {
            st = try database.cachedStatement(
                "SELECT sm.position FROM samples s JOIN split_members sm ON sm.sample_id = s.id WHERE s.key = ? AND sm.split_id = ? ORDER BY sm.position"
            )
            try st.bind(textBytes: key.bytes, at: 1)
            try st.bind(splitID, at: 2)
        } else {
            st = try database.cachedStatement("SELECT id FROM samples WHERE key = ? ORDER BY id")
            try st.bind(textBytes: key.bytes, at: 1)
        }
        defer { st.reset() }
        var out: [Int] = []
        while try st.step() { out.append(st.int(at: 0)) }
        return out
    }

    /// ` AND column IN (?, ...)` with its values, or nothing when `extensions` is nil.
    private static func extensionFilter(_ extensions: [String]?, column: String) -> (sql: String, values: [SQLValue]) {
        guard let extensions else { return ("", []) }
        return (
            " AND \(column) IN (\(extensions.map { _ in "?" }.joined(separator: ", ")))", extensions.map { .text($0) }
        )
    }
}
