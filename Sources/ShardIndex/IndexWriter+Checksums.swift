import ShardCore

/// Recording member checksums (`shardstore ingest --checksums`).
extension IndexWriter {
    /// Records whether every member of shard `id` has its CRC-32C (`true` after a scan with
    /// checksums or once they were filled in, `false` after a scan without).
    ///
    /// - Complexity: one indexed update.
    public func setChecksumsRecorded(_ recorded: Bool, forShard id: Int64) throws {
        try flush()
        try database.cachedStatement("UPDATE shards SET has_checksums = ? WHERE id = ?").execute([
            .integer(recorded ? 1 : 0), .integer(id),
        ])
    }

    /// The row ids of the shards whose checksums were not recorded.
    ///
    /// - Complexity: one pass over the shards table.
    public func shardIDsWithoutChecksums() throws -> Set<Int64> {
        try flush()
        let st = try database.prepare("SELECT id FROM shards WHERE has_checksums = 0")
        var out = Set<Int64>()
        while try st.step() { out.insert(st.int64(at: 0)) }
        return out
    }

    /// The member rows of shard `id`, by data offset, to compute their checksums.
    ///
    /// - Complexity: O(k log k) for the shard's k members.
    public func members(ofShard id: Int64) throws -> [StoredMember] {
        try flush()
        let st = try database.prepare(
            """
            SELECT m.sample_id, s.key, m.ext, m.header_offset, m.data_offset, m.length, m.crc32c
            FROM members m JOIN samples s ON s.id = m.sample_id
            WHERE m.shard_id = ? ORDER BY m.data_offset, m.sample_id, m.ext
            """)
        try st.bind(id, at: 1)
        var out: [StoredMember] = []
        while try st.step() {
            out.append(
                StoredMember(
                    sampleID: st.int64(at: 0), key: SampleKey(bytes: st.textBytes(at: 1)), ext: st.text(at: 2),
                    location: MemberLocation(
                        shardID: id, headerOffset: st.int64(at: 3), dataOffset: st.int64(at: 4),
                        length: st.int64(at: 5)),
                    crc32c: st.isNull(at: 6) ? nil : st.int64(at: 6)))
        }
        return out
    }

    /// Sets the recorded CRC-32C of member (`sampleID`, `ext`).
    ///
    /// - Complexity: one indexed update.
    public func setChecksum(_ crc32c: UInt32, sampleID: Int64, ext: String) throws {
        try flush()
        try database.cachedStatement("UPDATE members SET crc32c = ? WHERE sample_id = ? AND ext = ?").execute([
            .integer(Int64(crc32c)), .integer(sampleID), .text(ext),
        ])
    }
}
