import ShardCore

/// Read-only queries on a ShardStore index: samples by global index, by key and by split
/// position, splits, shards, metadata and summary counts.
///
/// One reader wraps one SQLite connection and is meant for one thread at a time; open one reader
/// per thread for concurrent queries. Lookups use cached prepared statements.
///
/// ```swift
/// let index = try IndexReader(path: "data/index.sqlite")
/// let first = try index.sample(at: 0)
/// let byKey = try index.sample(forKey: SampleKey("000123"))
/// let val0 = try index.sample(at: 0, inSplit: "val")
/// ```
public final class IndexReader {
    /// The index file's path as given.
    public let path: String
    /// The underlying connection (read-only).
    public let database: Database

    /// Opens the index at `path` read-only and checks its schema version.
    ///
    /// - Throws: ``IndexError/indexNotFound(path:)`` when there is no file; `SchemaError` when the
    ///   file is not a ShardStore index or was written by a newer version; `SQLiteError` otherwise.
    public init(path: String) throws {
        guard IndexFile.exists(path) else { throw IndexError.indexNotFound(path: path) }
        try IndexFile.checkNotDirectory(path)
        self.path = path
        try IndexFile.recoverInterruptedWrite(path)
        self.database = try Database(path: path, mode: .readOnly)
        do {
            try IndexFile.checkSchema(database)
        } catch let error as SQLiteError where error.code == .busy {
            throw IndexFile.busy(path)
        }
    }

    /// Wraps an open connection (used by the writer to answer queries inside its transaction).
    public init(database: Database) {
        self.path = database.path
        self.database = database
    }

    // MARK: Counts

    /// The number of samples in the dataset.
    ///
    /// - Complexity: O(log n) (the largest dense index + 1).
    public func sampleCount() throws -> Int {
        Int(try database.scalarInt("SELECT COALESCE(MAX(id) + 1, 0) FROM samples") ?? 0)
    }

    /// The number of samples in split `name`.
    ///
    /// - Throws: ``IndexError/unknownSplit(_:available:)``.
    public func sampleCount(inSplit name: String) throws -> Int {
        let id = try splitID(name)
        return Int(
            try database.scalarInt(
                "SELECT COALESCE(MAX(position) + 1, 0) FROM split_members WHERE split_id = ?", .integer(id)) ?? 0)
    }

    // MARK: Samples

    /// The sample at dense global index `index`.
    ///
    /// - Throws: ``IndexError/indexOutOfRange(index:count:split:)``.
    /// - Complexity: two indexed lookups.
    public func sample(at index: Int) throws -> SampleRecord {
        let st = try database.cachedStatement(
            """
            SELECT s.id, s.key, sp.name FROM samples s
            LEFT JOIN split_members sm ON sm.sample_id = s.id
            LEFT JOIN splits sp ON sp.id = sm.split_id
            WHERE s.id = ?
            """)
        try st.bind(Int64(index), at: 1)
        guard try st.step() else {
            throw IndexError.indexOutOfRange(index: index, count: try sampleCount(), split: nil)
        }
        return try record(from: st)
    }

    /// The sample at `position` within split `name`.
    ///
    /// - Throws: ``IndexError/unknownSplit(_:available:)``,
    ///   ``IndexError/indexOutOfRange(index:count:split:)``.
    /// - Complexity: three indexed lookups.
    public func sample(at position: Int, inSplit name: String) throws -> SampleRecord {
        let id = try splitID(name)
        let st = try database.cachedStatement(
            """
            SELECT s.id, s.key, ? FROM split_members sm
            JOIN samples s ON s.id = sm.sample_id
            WHERE sm.split_id = ? AND sm.position = ?
            """)
        try st.bind(text: name, at: 1)
        try st.bind(id, at: 2)
        try st.bind(Int64(position), at: 3)
        guard try st.step() else {
            throw IndexError.indexOutOfRange(index: position, count: try sampleCount(inSplit: name), split: name)
        }
        return try record(from: st)
    }

    /// Every sample with key `key`, in index order (more than one only when duplicates were kept).
    ///
    /// - Complexity: one indexed lookup per sample found.
    public func samples(forKey key: SampleKey) throws -> [SampleRecord] {
        let st = try database.cachedStatement(
            """
            SELECT s.id, s.key, sp.name FROM samples s
            LEFT JOIN split_members sm ON sm.sample_id = s.id
            LEFT JOIN splits sp ON sp.id = sm.split_id
            WHERE s.key = ? ORDER BY s.id
            """)
        try st.bind(textBytes: key.bytes, at: 1)
        var rows: [(Int64, Int, SampleKey, String?)] = []
        while try st.step() { rows.append(Self.header(st)) }
        st.reset()
        return try rows.map {
            try SampleRecord(id: $0.0, index: $0.1, key: $0.2, split: $0.3, members: members(ofSample: $0.0))
        }
    }

    /// The one sample with key `key`.
    ///
    /// - Throws: ``IndexError/unknownKey(_:)``, or ``IndexError/ambiguousKey(_:indexes:)`` when
    ///   duplicates were kept at ingest and several samples share the key.
    public func sample(forKey key: SampleKey) throws -> SampleRecord {
        let found = try samples(forKey: key)
        guard let first = found.first else { throw IndexError.unknownKey(key) }
        guard found.count == 1 else { throw IndexError.ambiguousKey(key, indexes: found.map(\.index)) }
        return first
    }

    /// The members of the sample with row id `sampleID`, sorted by extension.
    public func members(ofSample sampleID: Int64) throws -> [MemberRecord] {
        let st = try database.cachedStatement(
            "SELECT ext, shard_id, header_offset, data_offset, length FROM members WHERE sample_id = ? ORDER BY ext")
        defer { st.reset() }
        try st.bind(sampleID, at: 1)
        return try Self.memberRecords(st)
    }

    /// The member rows `st` gives, as columns ext, shard_id, header_offset, data_offset, length.
    static func memberRecords(_ st: Statement) throws -> [MemberRecord] {
        var out: [MemberRecord] = []
        while try st.step() {
            out.append(
                MemberRecord(
                    ext: st.text(at: 0),
                    location: MemberLocation(
                        shardID: st.int64(at: 1), headerOffset: st.int64(at: 2), dataOffset: st.int64(at: 3),
                        length: st.int64(at: 4))))
        }
        return out
    }

    /// Calls `body` for every sample in index order (or split position order when `split` is
    /// given), with its members; stops early when `body` returns false.
    ///
    /// - Complexity: one pass over the samples and members tables.
    public func forEachSample(inSplit split: String? = nil, _ body: (SampleRecord) throws -> Bool) throws {
        var sql = """
            SELECT s.id, s.key, sp.name, m.ext, m.shard_id, m.header_offset, m.data_offset, m.length
            FROM samples s
            JOIN members m ON m.sample_id = s.id
            LEFT JOIN split_members sm ON sm.sample_id = s.id
            LEFT JOIN splits sp ON sp.id = sm.split_id
            """
        if split != nil {
            sql += " WHERE sm.split_id = ? ORDER BY sm.position, m.ext"
        } else {
            sql += " ORDER BY s.id, m.ext"
        }
        let st = try database.prepare(sql)
        if let split { try st.bind(try splitID(split), at: 1) }
        var current: SampleRecord?
        while try st.step() {
            let id = st.int64(at: 0)
            if current?.id != id {
                if let done = current, try !body(done) { return }
                let (sid, idx, key, splitName) = Self.header(st)
                current = SampleRecord(id: sid, index: idx, key: key, split: splitName, members: [])
            }
            current!.members.append(
                MemberRecord(
                    ext: st.text(at: 3),
                    location: MemberLocation(
                        shardID: st.int64(at: 4), headerOffset: st.int64(at: 5), dataOffset: st.int64(at: 6),
                        length: st.int64(at: 7))))
        }
        if let done = current { _ = try body(done) }
    }

    // MARK: Shards, splits, metadata

    /// Every shard, in ingest order.
    ///
    /// An index older than schema 3 (opened read-only, not migrated) has no compressed shards: its
    /// shards read with a nil ``ShardRecord/uncompressedSize``; one older than schema 4 has no
    /// remote shards (nil ``ShardRecord/etag`` and ``ShardRecord/lastModified``).
    public func shards() throws -> [ShardRecord] {
        // Migrations apply in order: an index with schema 4's columns has schema 3's.
        let sql: String =
            if try hasRemoteColumns() {
                "SELECT id, path, size, mtime_ns, member_count, skipped_count, compression, uncompressed_size, etag, last_modified FROM shards ORDER BY id"
            } else if try hasCompressionColumns() {
                "SELECT id, path, size, mtime_ns, member_count, skipped_count, compression, uncompressed_size, NULL, NULL FROM shards ORDER BY id"
            } else {
                "SELECT id, path, size, mtime_ns, member_count, skipped_count, compression, NULL, NULL, NULL FROM shards ORDER BY id"
            }
        let st = try database.cachedStatement(sql)
        var out: [ShardRecord] = []
        while try st.step() {
            out.append(
                ShardRecord(
                    id: st.int64(at: 0), path: st.text(at: 1), size: st.int64(at: 2),
                    modificationTimeNanoseconds: st.int64(at: 3), memberCount: st.int(at: 4),
                    skippedCount: st.int(at: 5), compression: st.text(at: 6),
                    uncompressedSize: st.isNull(at: 7) ? nil : st.int64(at: 7),
                    etag: st.isNull(at: 8) ? nil : st.text(at: 8), lastModified: st.isNull(at: 9) ? nil : st.text(at: 9)
                ))
        }
        st.reset()
        return out
    }

    /// Whether the index has schema 3's columns for compressed shards (`shards.uncompressed_size`,
    /// the `seek_tables` table).
    ///
    /// - Complexity: one small query on the schema.
    public func hasCompressionColumns() throws -> Bool {
        try database.scalarInt(
            "SELECT COUNT(*) FROM pragma_table_info('shards') WHERE name = ?", .text("uncompressed_size")) == 1
    }

    /// Whether the index has schema 4's columns for remote shards (`shards.etag`,
    /// `shards.last_modified`).
    ///
    /// - Complexity: one small query on the schema.
    public func hasRemoteColumns() throws -> Bool {
        try database.scalarInt("SELECT COUNT(*) FROM pragma_table_info('shards') WHERE name = ?", .text("etag")) == 1
    }

    /// The seek-point count and stored bytes of each compressed shard's seek table, by shard id
    /// (empty for an index older than schema 3), for `shardstore info`.
    ///
    /// - Complexity: one pass over the seek tables' rows, without reading their data.
    public func seekTableSizes() throws -> [Int64: (points: Int, bytes: Int64)] {
        guard try hasCompressionColumns() else { return [:] }
        let st = try database.prepare("SELECT shard_id, point_count, length(data) FROM seek_tables")
        var out: [Int64: (points: Int, bytes: Int64)] = [:]
        while try st.step() { out[st.int64(at: 0)] = (st.int(at: 1), st.int64(at: 2)) }
        return out
    }

    /// The seek table of each compressed shard in `ids`, by shard id (none for an index older than
    /// schema 3). The bytes are returned as stored: the caller decodes and validates them.
    ///
    /// - Complexity: one lookup a shard; O(bytes) copied.
    public func seekTables(forShards ids: [Int64]) throws -> [Int64: StoredSeekTable] {
        guard !ids.isEmpty, try hasCompressionColumns() else { return [:] }
        let st = try database.cachedStatement("SELECT point_count, data FROM seek_tables WHERE shard_id = ?")
        var out: [Int64: StoredSeekTable] = [:]
        for id in ids {
            try st.bind(id, at: 1)
            if try st.step() {
                out[id] = StoredSeekTable(shardID: id, pointCount: st.int(at: 0), data: st.blob(at: 1))
            }
            st.reset()
        }
        return out
    }

    /// Every split with its count, by name.
    public func splits() throws -> [SplitSummary] {
        let st = try database.cachedStatement(
            """
            SELECT sp.name, COUNT(sm.sample_id), sp.definition, sp.created_at FROM splits sp
            LEFT JOIN split_members sm ON sm.split_id = sp.id GROUP BY sp.id ORDER BY sp.name
            """)
        var out: [SplitSummary] = []
        while try st.step() {
            out.append(
                SplitSummary(
                    name: st.text(at: 0), count: st.int(at: 1), definition: st.text(at: 2), createdAt: st.text(at: 3)))
        }
        st.reset()
        return out
    }

    /// The split named `name`.
    ///
    /// - Throws: ``IndexError/unknownSplit(_:available:)``.
    public func split(named name: String) throws -> SplitSummary {
        guard let s = try splits().first(where: { $0.name == name }) else {
            throw IndexError.unknownSplit(name, available: try splits().map(\.name))
        }
        return s
    }

    /// The row id of split `name`.
    ///
    /// - Throws: ``IndexError/unknownSplit(_:available:)``.
    public func splitID(_ name: String) throws -> Int64 {
        if let id = try database.scalarInt("SELECT id FROM splits WHERE name = ?", .text(name)) { return id }
        throw IndexError.unknownSplit(name, available: try splits().map(\.name))
    }

    /// Every metadata entry as (key, JSON text), sorted by key.
    public func metadata() throws -> [(key: String, value: String)] {
        let st = try database.cachedStatement("SELECT key, value FROM metadata ORDER BY key")
        var out: [(key: String, value: String)] = []
        while try st.step() { out.append((st.text(at: 0), st.text(at: 1))) }
        st.reset()
        return out
    }

    /// The JSON text of metadata entry `key`.
    ///
    /// - Throws: ``IndexError/unknownMetadataKey(_:)``.
    public func metadata(_ key: String) throws -> String {
        guard let v = try database.scalarText("SELECT value FROM metadata WHERE key = ?", .text(key)) else {
            throw IndexError.unknownMetadataKey(key)
        }
        return v
    }

    /// The counts `shardstore info` shows.
    ///
    /// - Complexity: one pass over the members table.
    public func summary() throws -> IndexSummary {
        var extensions: [IndexSummary.ExtensionCount] = []
        let st = try database.prepare("SELECT ext, COUNT(*), TOTAL(length) FROM members GROUP BY ext ORDER BY ext")
        while try st.step() {
            extensions.append(.init(ext: st.text(at: 0), members: st.int(at: 1), bytes: Int64(st.double(at: 2))))
        }
        let splits = try splits()
        let samples = try sampleCount()
        return IndexSummary(
            schemaVersion: Int(try database.scalarInt("SELECT COALESCE(MAX(version), 0) FROM schema_migrations") ?? 0),
            samples: samples,
            members: extensions.reduce(0) { $0 + $1.members },
            shards: Int(try database.scalarInt("SELECT COUNT(*) FROM shards") ?? 0),
            shardBytes: try database.scalarInt("SELECT COALESCE(SUM(size), 0) FROM shards") ?? 0,
            memberBytes: extensions.reduce(0) { $0 + $1.bytes },
            extensions: extensions,
            splits: splits,
            unassigned: samples - splits.reduce(0) { $0 + $1.count },
            metadata: try metadata())
    }

    // MARK: Row decoding

    private static func header(_ st: Statement) -> (Int64, Int, SampleKey, String?) {
        (st.int64(at: 0), st.int(at: 0), SampleKey(bytes: st.textBytes(at: 1)), st.isNull(at: 2) ? nil : st.text(at: 2))
    }

    private func record(from st: Statement) throws -> SampleRecord {
        let (id, idx, key, split) = Self.header(st)
        st.reset()
        return SampleRecord(id: id, index: idx, key: key, split: split, members: try members(ofSample: id))
    }
}
