import ShardCore

/// Checksums and member rows in storage order, for `shardstore verify`.
extension IndexReader {
    /// Whether the index has the checksum columns of schema 2 (`members.crc32c`,
    /// `shards.has_checksums`). An index at schema 1 opened read-only lacks them: it has no
    /// checksums, and everything else reads as before.
    ///
    /// - Complexity: one small query on the schema.
    public func hasChecksumColumns() throws -> Bool {
        try database.scalarInt(
            "SELECT COUNT(*) FROM pragma_table_info('members') WHERE name = ?", .text("crc32c")) == 1
    }

    /// The row ids of the shards whose members' checksums were recorded (`ingest --checksums`);
    /// empty for an index without checksum columns.
    ///
    /// ```swift
    /// let withChecksums = try index.shardIDsWithChecksums()
    /// let missing = try index.shards().filter { !withChecksums.contains($0.id) }
    /// ```
    ///
    /// - Complexity: one pass over the shards table.
    public func shardIDsWithChecksums() throws -> Set<Int64> {
        guard try hasChecksumColumns() else { return [] }
        let st = try database.prepare("SELECT id FROM shards WHERE has_checksums = 1")
        var out = Set<Int64>()
        while try st.step() { out.insert(st.int64(at: 0)) }
        return out
    }

    /// The number of member rows, of the whole index or of the samples in split `split`.
    ///
    /// - Throws: ``IndexError/unknownSplit(_:available:)``.
    /// - Complexity: one pass over the members (and the split's memberships).
    public func memberCount(inSplit split: String? = nil) throws -> Int {
        guard let split else { return Int(try database.scalarInt("SELECT COUNT(*) FROM members") ?? 0) }
        let id = try splitID(split)
        return Int(
            try database.scalarInt(
                "SELECT COUNT(*) FROM members m JOIN split_members sm ON sm.sample_id = m.sample_id WHERE sm.split_id = ?",
                .integer(id)) ?? 0)
    }

    /// The row ids of the shards holding members of the samples in split `split`.
    ///
    /// - Throws: ``IndexError/unknownSplit(_:available:)``.
    /// - Complexity: one pass over the split's members.
    public func shardIDs(inSplit split: String) throws -> Set<Int64> {
        let st = try database.prepare(
            "SELECT DISTINCT m.shard_id FROM members m JOIN split_members sm ON sm.sample_id = m.sample_id WHERE sm.split_id = ?"
        )
        try st.bind(try splitID(split), at: 1)
        var out = Set<Int64>()
        while try st.step() { out.insert(st.int64(at: 0)) }
        return out
    }

    /// Calls `body` with every member row (of the samples in split `split` when given), in
    /// storage order: by shard id, then data offset, so one pass reads each shard front to back.
    /// Rows naming a sample that does not exist are included (their ``StoredMember/key`` is nil).
    /// Stops early when `body` returns false.
    ///
    /// ```swift
    /// try index.forEachMemberInStorageOrder { member in
    ///     print(member.location.shardID, member.location.dataOffset)
    ///     return true
    /// }
    /// ```
    ///
    /// - Throws: ``IndexError/unknownSplit(_:available:)``, `SQLiteError`, or what `body` throws.
    /// - Complexity: O(n log n) in the rows (SQLite sorts them); memory O(1) beyond the sort.
    public func forEachMemberInStorageOrder(
        inSplit split: String? = nil, _ body: (StoredMember) throws -> Bool
    ) throws {
        let crc = try hasChecksumColumns() ? "m.crc32c" : "NULL"
        var sql = """
            SELECT m.sample_id, s.key, m.ext, m.shard_id, m.header_offset, m.data_offset, m.length, \(crc), s.id IS NULL
            FROM members m LEFT JOIN samples s ON s.id = m.sample_id
            """
        if split != nil { sql += " JOIN split_members sm ON sm.sample_id = m.sample_id AND sm.split_id = ?" }
        sql += " ORDER BY m.shard_id, m.data_offset, m.sample_id, m.ext"
        let st = try database.prepare(sql)
        if let split { try st.bind(try splitID(split), at: 1) }
        while try st.step() {
            let member = StoredMember(
                sampleID: st.int64(at: 0),
                key: st.int(at: 8) == 1 ? nil : SampleKey(bytes: st.textBytes(at: 1)),
                ext: st.text(at: 2),
                location: MemberLocation(
                    shardID: st.int64(at: 3), headerOffset: st.int64(at: 4), dataOffset: st.int64(at: 5),
                    length: st.int64(at: 6)),
                crc32c: st.isNull(at: 7) ? nil : st.int64(at: 7))
            guard try body(member) else { return }
        }
    }
}
