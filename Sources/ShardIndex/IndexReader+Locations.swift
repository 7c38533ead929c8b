import ShardCore

/// The scans that resolve every sample's member locations: the in-memory location table of a
/// dataset and the location file beside the index are built from them.
extension IndexReader {
    /// The dataset's content id: a random id each ingest that changes samples or members stores
    /// in the metadata entry ``IndexFile/contentIDKey``, without its JSON quotes; nil for an index
    /// written before location files existed.
    ///
    /// ```swift
    /// let id = try reader.contentID()   // "3f2a..." or nil
    /// ```
    ///
    /// - Throws: `SQLiteError`.
    /// - Complexity: one indexed lookup.
    public func contentID() throws -> String? {
        guard
            let json = try database.scalarText(
                "SELECT value FROM metadata WHERE key = ?", .text(IndexFile.contentIDKey))
        else { return nil }
        return json.count >= 2 && json.hasPrefix("\"") && json.hasSuffix("\"")
            ? String(json.dropFirst().dropLast()) : json
    }

    /// The number of rows of the samples table (``sampleCount()`` is the largest id + 1: the two
    /// agree for every index ingest writes).
    ///
    /// ```swift
    /// let rows = try reader.sampleRowCount()
    /// ```
    ///
    /// - Throws: `SQLiteError`.
    /// - Complexity: one pass over the samples table's smallest index.
    public func sampleRowCount() throws -> Int {
        Int(try database.scalarInt("SELECT COUNT(*) FROM samples") ?? 0)
    }

    /// The shards' row ids, ascending (ingest order).
    ///
    /// ```swift
    /// let ids = try reader.shardIDs()   // [1, 2, 3]
    /// ```
    ///
    /// - Throws: `SQLiteError`.
    /// - Complexity: one pass over the shards table.
    public func shardIDs() throws -> [Int64] {
        var ids: [Int64] = []
        let st = try database.prepare("SELECT id FROM shards ORDER BY id")
        while try st.step() { ids.append(st.int64(at: 0)) }
        return ids
    }

    /// The length in bytes of the key of the sample with row id `sampleID` and its number of
    /// members, or nil when there is no such sample.
    ///
    /// ```swift
    /// if let size = try reader.keyLengthAndMemberCount(ofSample: 0) { print(size.keyLength, size.members) }
    /// ```
    ///
    /// - Throws: `SQLiteError`.
    /// - Complexity: two indexed lookups (cached statements).
    public func keyLengthAndMemberCount(ofSample sampleID: Int64) throws -> (keyLength: Int, members: Int)? {
        let keyLength = try database.cachedStatement("SELECT length(CAST(key AS BLOB)) FROM samples WHERE id = ?")
        let memberCount = try database.cachedStatement("SELECT COUNT(*) FROM members WHERE sample_id = ?")
        defer {
            keyLength.reset()
            memberCount.reset()
        }
        try keyLength.bind(sampleID, at: 1)
        try memberCount.bind(sampleID, at: 1)
        guard try keyLength.step(), try memberCount.step() else { return nil }
        return (keyLength.int(at: 0), memberCount.int(at: 0))
    }

    /// Runs `body` inside one read transaction, so that every query it makes sees the same
    /// version of the index; the transaction ends when `body` returns or throws.
    ///
    /// ```swift
    /// let (id, rows) = try reader.readingSnapshot { (try reader.contentID(), try reader.sampleRowCount()) }
    /// ```
    ///
    /// - Throws: `SQLiteError` from BEGIN; what `body` throws.
    /// - Complexity: `body` plus two statements.
    public func readingSnapshot<R>(_ body: () throws -> R) throws -> R {
        try database.execute("BEGIN")
        defer { try? database.execute("COMMIT") }
        return try body()
    }

    /// A forward-only scan of the samples' row ids and keys: of the whole dataset by id, or of
    /// split `splitID` by position.
    ///
    /// ```swift
    /// let keys = try reader.sampleKeys(inSplit: nil)
    /// while try keys.next() { keys.withKeyBytes { print(keys.sampleID, $0.count) } }
    /// ```
    ///
    /// - Throws: `SQLiteError`.
    /// - Complexity: O(1) to start; one sequential pass as it is read.
    public func sampleKeys(inSplit splitID: Int64?) throws -> SampleKeyCursor {
        if let splitID {
            let st = try database.prepare(
                """
                SELECT sm.sample_id, s.key FROM split_members sm JOIN samples s ON s.id = sm.sample_id
                WHERE sm.split_id = ? ORDER BY sm.position
                """)
            try st.bind(splitID, at: 1)
            return SampleKeyCursor(statement: st)
        }
        return SampleKeyCursor(statement: try database.prepare("SELECT id, key FROM samples ORDER BY id"))
    }

    /// A forward-only scan of every member row in sample id order (the members table's primary
    /// key order: a sequential scan), rows as stored and unvalidated.
    ///
    /// ```swift
    /// let rows = try reader.membersInSampleOrder()
    /// while try rows.next() { print(rows.sampleID, rows.location) }
    /// ```
    ///
    /// - Throws: `SQLiteError`.
    /// - Complexity: O(1) to start; one sequential pass as it is read.
    public func membersInSampleOrder() throws -> MemberRowCursor {
        MemberRowCursor(
            statement: try database.prepare(
                "SELECT sample_id, ext, shard_id, data_offset, length, header_offset FROM members ORDER BY sample_id"))
    }
}
