import ShardCore

/// The write side of an index: shards, samples and members as ingest finds them, dense
/// renumbering, split assignment and metadata. Every method runs inside the caller's transaction
/// (see `Database.inTransaction`); none commits on its own.
///
/// Hot paths (``insertSample(id:index:key:shardID:firstOffset:)``,
/// ``insertMember(sampleID:ext:location:)``) reuse cached prepared statements.
///
/// ```swift
/// let db = try Database(path: path, mode: .readWriteCreate)
/// try IndexFile.migrator.migrate(db)
/// let writer = IndexWriter(database: db)
/// try db.inTransaction { try writer.setMetadata("license", json: "\"CC-BY\"") }
/// ```
public final class IndexWriter {
    /// The connection written to.
    public let database: Database

    /// Rows per multi-row INSERT: one statement execution per batch instead of per row roughly
    /// halves the cost of bulk loading (measured in tools/bench).
    static let batchSize = 64

    private var pendingSamples: [(id: Int64, key: SampleKey, shardID: Int64, firstOffset: Int64)] = []
    private var pendingMembers: [(sampleID: Int64, ext: String, location: MemberLocation, crc32c: UInt32?)] = []
    private let insertSamples: Statement
    private let insertMembers: Statement

    /// Prepares the writer's statements on `database`, which must already be migrated.
    ///
    /// - Throws: `SQLiteError` when the schema lacks the expected tables.
    public init(database: Database) throws {
        self.database = database
        insertSamples = try database.prepare(Self.insertSQL(sampleRows: Self.batchSize))
        insertMembers = try database.prepare(Self.insertSQL(memberRows: Self.batchSize))
        pendingSamples.reserveCapacity(Self.batchSize)
        pendingMembers.reserveCapacity(Self.batchSize)
    }

    private static func insertSQL(sampleRows n: Int) -> String {
        "INSERT INTO samples(id, key, shard_id, first_offset) VALUES "
            + Array(repeating: "(?, ?, ?, ?)", count: n).joined(separator: ", ")
    }

    private static func insertSQL(memberRows n: Int) -> String {
        "INSERT INTO members(sample_id, ext, shard_id, header_offset, data_offset, length, crc32c) VALUES "
            + Array(repeating: "(?, ?, ?, ?, ?, ?, ?)", count: n).joined(separator: ", ")
    }

    /// Writes the rows ``insertSample(id:key:shardID:firstOffset:)`` and
    /// ``insertMember(sampleID:ext:location:)`` buffered. Every other method calls it first, so
    /// callers only need it before running their own SQL on ``database``.
    public func flush() throws {
        if !pendingSamples.isEmpty {
            let full = pendingSamples.count == Self.batchSize
            let st =
                full ? insertSamples : try database.cachedStatement(Self.insertSQL(sampleRows: pendingSamples.count))
            var i: Int32 = 1
            for row in pendingSamples {
                try st.bind(row.id, at: i)
                try st.bind(textBytes: row.key.bytes, at: i + 1)
                try st.bind(row.shardID, at: i + 2)
                try st.bind(row.firstOffset, at: i + 3)
                i += 4
            }
            pendingSamples.removeAll(keepingCapacity: true)
            defer { st.reset() }
            _ = try st.step()
        }
        if !pendingMembers.isEmpty {
            let full = pendingMembers.count == Self.batchSize
            let st =
                full ? insertMembers : try database.cachedStatement(Self.insertSQL(memberRows: pendingMembers.count))
            var i: Int32 = 1
            for row in pendingMembers {
                try st.bind(row.sampleID, at: i)
                try st.bind(text: row.ext, at: i + 1)
                try st.bind(row.location.shardID, at: i + 2)
                try st.bind(row.location.headerOffset, at: i + 3)
                try st.bind(row.location.dataOffset, at: i + 4)
                try st.bind(row.location.length, at: i + 5)
                if let crc = row.crc32c { try st.bind(Int64(crc), at: i + 6) } else { try st.bindNull(at: i + 6) }
                i += 7
            }
            pendingMembers.removeAll(keepingCapacity: true)
            defer { st.reset() }
            _ = try st.step()
        }
    }

    /// Settings for building a brand-new index file under a temporary name: no rollback journal
    /// and no syncs (a failure discards the whole file). Call it before migrating the new file, so
    /// that its migrations do not sync either (one sync per statement otherwise, each a disk flush).
    ///
    /// ```swift
    /// try IndexWriter.configureForNewFile(db)
    /// try IndexFile.migrator.migrate(db)
    /// ```
    ///
    /// - Throws: `SQLiteError`.
    public static func configureForNewFile(_ database: Database) throws {
        try database.execute("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA foreign_keys = OFF;")
    }

    /// Settings for updating an existing index in one transaction: rollback journal, full syncs,
    /// a large page cache.
    public func configureForUpdate() throws {
        try database.execute("PRAGMA journal_mode = DELETE; PRAGMA synchronous = FULL; PRAGMA foreign_keys = OFF;")
    }

    /// Settings for a finished new index before it is published: a rollback journal from now on.
    public func finishNewFile() throws {
        try database.execute("PRAGMA journal_mode = DELETE;")
    }

    // MARK: Shards

    /// Every recorded shard, by stored path.
    public func shardsByPath() throws -> [String: ShardRecord] {
        try flush()
        var out: [String: ShardRecord] = [:]
        for s in try IndexReader(database: database).shards() { out[s.path] = s }
        return out
    }

    /// The id the next new shard gets.
    public func nextShardID() throws -> Int64 {
        try flush()
        return try database.scalarInt("SELECT COALESCE(MAX(id) + 1, 0) FROM shards") ?? 0
    }

    /// Inserts or updates (by id) a shard row.
    public func saveShard(_ s: ShardRecord) throws {
        try flush()
        let st = try database.cachedStatement(
            """
            INSERT INTO shards(id, path, size, mtime_ns, member_count, skipped_count, compression, uncompressed_size,
                etag, last_modified, ingested_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
            ON CONFLICT(id) DO UPDATE SET path = excluded.path, size = excluded.size, mtime_ns = excluded.mtime_ns,
                member_count = excluded.member_count, skipped_count = excluded.skipped_count,
                compression = excluded.compression, uncompressed_size = excluded.uncompressed_size,
                etag = excluded.etag, last_modified = excluded.last_modified, ingested_at = excluded.ingested_at
            """)
        try st.execute([
            .integer(s.id), .text(s.path), .integer(s.size), .integer(s.modificationTimeNanoseconds),
            .integer(Int64(s.memberCount)), .integer(Int64(s.skippedCount)), .text(s.compression),
            s.uncompressedSize.map { .integer($0) } ?? .null, s.etag.map { .text($0) } ?? .null,
            s.lastModified.map { .text($0) } ?? .null,
        ])
    }

    /// Records (or, with nil, removes) shard `id`'s seek table; a shard scanned again gets the
    /// table of its new contents, and one that is no longer compressed none.
    ///
    /// - Complexity: one row written.
    public func saveSeekTable(_ table: StoredSeekTable?, forShard id: Int64) throws {
        try flush()
        guard let table else {
            try database.cachedStatement("DELETE FROM seek_tables WHERE shard_id = ?").execute([.integer(id)])
            return
        }
        precondition(table.shardID == id, "a seek table saved under another shard's id")
        try database.cachedStatement(
            """
            INSERT INTO seek_tables(shard_id, point_count, data) VALUES (?, ?, ?)
            ON CONFLICT(shard_id) DO UPDATE SET point_count = excluded.point_count, data = excluded.data
            """
        ).execute([.integer(id), .integer(Int64(table.pointCount)), .blob(table.data)])
    }

    /// Sets every shard's `member_count` from the members table (after duplicates moved members
    /// between shards).
    ///
    /// - Complexity: one pass over the members table.
    public func recountShardMembers() throws {
        try flush()
        try database.execute(
            """
            UPDATE shards SET member_count = COALESCE(
                (SELECT c.n FROM (SELECT shard_id, COUNT(*) AS n FROM members GROUP BY shard_id) AS c
                 WHERE c.shard_id = shards.id), 0);
            """)
    }

    /// Deletes every member stored in shard `id` (before the shard is scanned again). Samples left
    /// without members are removed by ``removeEmptySamples()``.
    ///
    /// - Returns: the number of members deleted.
    @discardableResult
    public func deleteMembers(ofShard id: Int64) throws -> Int {
        try flush()
        try database.cachedStatement("DELETE FROM members WHERE shard_id = ?").execute([.integer(id)])
        return database.changes
    }

    // MARK: Samples and members

    /// The id (global index) the next new sample gets: one past the largest in use.
    public func nextSampleID() throws -> Int64 {
        try flush()
        return try database.scalarInt("SELECT COALESCE(MAX(id) + 1, 0) FROM samples") ?? 0
    }

    /// Drops the key index while a new file is bulk-loaded (``createKeyIndex()`` rebuilds it once
    /// at the end, which is faster than maintaining it row by row).
    public func dropKeyIndex() throws {
        try database.execute("DROP INDEX IF EXISTS samples_by_key")
    }

    /// Creates the key index dropped by ``dropKeyIndex()``.
    public func createKeyIndex() throws {
        try flush()
        try database.execute("CREATE INDEX IF NOT EXISTS samples_by_key ON samples(key)")
    }

    /// Whether the index has no samples yet.
    public func isEmpty() throws -> Bool {
        try flush()
        return try database.scalarInt("SELECT EXISTS(SELECT 1 FROM samples)") == 0
    }

    /// Inserts a sample row (buffered; written in batches, see ``flush()``).
    ///
    /// - Complexity: amortised O(log n).
    public func insertSample(id: Int64, key: SampleKey, shardID: Int64, firstOffset: Int64) throws {
        // Samples first: a member batch must never reach the table before its sample.
        pendingSamples.append((id, key, shardID, firstOffset))
        if pendingSamples.count == Self.batchSize { try flush() }
    }

    /// Inserts a member row (buffered; written in batches, see ``flush()``), with the CRC-32C of
    /// its data when it was computed (`ingest --checksums`), else none (NULL).
    ///
    /// - Complexity: amortised O(log n).
    public func insertMember(sampleID: Int64, ext: String, location: MemberLocation, crc32c: UInt32? = nil) throws {
        pendingMembers.append((sampleID, ext, location, crc32c))
        if pendingMembers.count == Self.batchSize { try flush() }
    }

    /// Points an existing member at a new location (the `last` duplicate policy), with the
    /// CRC-32C of the bytes there (nil: none recorded).
    public func replaceMember(sampleID: Int64, ext: String, location: MemberLocation, crc32c: UInt32? = nil) throws {
        try flush()
        try database.cachedStatement(
            """
            UPDATE members SET shard_id = ?, header_offset = ?, data_offset = ?, length = ?, crc32c = ?
            WHERE sample_id = ? AND ext = ?
            """
        ).execute([
            .integer(location.shardID), .integer(location.headerOffset), .integer(location.dataOffset),
            .integer(location.length), crc32c.map { .integer(Int64($0)) } ?? .null, .integer(sampleID), .text(ext),
        ])
    }

    /// The most recently added sample with key `key` and its members, or nil.
    public func latestSample(forKey key: SampleKey) throws -> (id: Int64, members: [MemberRecord])? {
        try flush()
        let st = try database.cachedStatement("SELECT id FROM samples WHERE key = ? ORDER BY id DESC LIMIT 1")
        try st.bind(textBytes: key.bytes, at: 1)
        guard try st.step() else {
            st.reset()
            return nil
        }
        let id = st.int64(at: 0)
        st.reset()
        return (id, try IndexReader(database: database).members(ofSample: id))
    }

    /// Sample `id`'s key and members (rows buffered so far included), or nil when there is no
    /// such sample.
    ///
    /// ```swift
    /// if let (key, members) = try writer.sample(id: 42) { print(key, members.map(\.ext)) }
    /// ```
    ///
    /// - Throws: `SQLiteError`.
    /// - Complexity: two lookups by primary key.
    public func sample(id: Int64) throws -> (key: SampleKey, members: [MemberRecord])? {
        try flush()
        let st = try database.cachedStatement("SELECT key FROM samples WHERE id = ?")
        defer { st.reset() }
        try st.bind(id, at: 1)
        guard try st.step() else { return nil }
        let key = SampleKey(bytes: st.textBytes(at: 0))
        return (key, try IndexReader(database: database).members(ofSample: id))
    }

    /// Deletes samples that have no members left (and their split memberships).
    ///
    /// - Returns: the number of samples deleted.
    @discardableResult
    public func removeEmptySamples() throws -> Int {
        try flush()
        try database.execute(
            """
            CREATE TEMP TABLE IF NOT EXISTS empty_samples(id INTEGER PRIMARY KEY);
            DELETE FROM empty_samples;
            INSERT INTO empty_samples SELECT id FROM samples s WHERE NOT EXISTS (SELECT 1 FROM members m WHERE m.sample_id = s.id);
            DELETE FROM split_members WHERE sample_id IN (SELECT id FROM empty_samples);
            DELETE FROM samples WHERE id IN (SELECT id FROM empty_samples);
            """)
        return database.changes
    }

    /// Makes the global index dense and ordered again after shards were re-indexed or members
    /// replaced: each sample's home becomes its first member in (shard, offset) order, sample ids
    /// are renumbered 0..<count in home order (members and split memberships follow), and split
    /// positions are renumbered.
    ///
    /// - Complexity: O(n log n) in samples; only samples whose id changes are rewritten.
    public func renumber() throws {
        try flush()
        try database.execute(
            """
            UPDATE samples SET (shard_id, first_offset) = (
                SELECT m.shard_id, m.header_offset FROM members m WHERE m.sample_id = samples.id
                ORDER BY m.shard_id, m.header_offset LIMIT 1);
            CREATE TEMP TABLE IF NOT EXISTS renumbering(old INTEGER PRIMARY KEY, new INTEGER NOT NULL);
            DELETE FROM renumbering;
            INSERT INTO renumbering(old, new)
                SELECT id, row_number() OVER (ORDER BY shard_id, first_offset, id) - 1 FROM samples;
            DELETE FROM renumbering WHERE old = new;
            UPDATE members SET sample_id = -1 - (SELECT new FROM renumbering WHERE old = members.sample_id)
                WHERE sample_id IN (SELECT old FROM renumbering);
            UPDATE members SET sample_id = -1 - sample_id WHERE sample_id < 0;
            UPDATE split_members SET sample_id = -1 - (SELECT new FROM renumbering WHERE old = split_members.sample_id)
                WHERE sample_id IN (SELECT old FROM renumbering);
            UPDATE split_members SET sample_id = -1 - sample_id WHERE sample_id < 0;
            UPDATE samples SET id = -1 - (SELECT new FROM renumbering WHERE old = samples.id)
                WHERE id IN (SELECT old FROM renumbering);
            UPDATE samples SET id = -1 - id WHERE id < 0;
            """)
        try renumberSplitPositions()
    }

    /// Makes every split's positions dense 0..<count, in global index order.
    public func renumberSplitPositions() throws {
        try flush()
        try database.execute(
            """
            UPDATE split_members SET position = -1 - position WHERE position >= 0;
            UPDATE split_members SET position = r.n FROM (
                SELECT sm.sample_id AS sid, row_number() OVER (PARTITION BY sm.split_id ORDER BY sm.sample_id) - 1 AS n
                FROM split_members sm
            ) AS r WHERE split_members.sample_id = r.sid;
            """)
    }

    // MARK: Splits

    /// What an assignment did.
    public struct SplitAssignment: Sendable, Equatable {
        /// The split assigned to.
        public var split: String
        /// Samples newly in the split (including moved ones).
        public var added: Int
        /// Samples that were in the split already.
        public var unchanged: Int
        /// Samples moved out of other splits, by split name.
        public var movedFrom: [String: Int]
        /// Samples in the split afterwards.
        public var total: Int

        public init(split: String, added: Int, unchanged: Int, movedFrom: [String: Int], total: Int) {
            self.split = split
            self.added = added
            self.unchanged = unchanged
            self.movedFrom = movedFrom
            self.total = total
        }
    }

    /// Puts the samples with row ids `sampleIDs` into split `name` (created if missing), moving
    /// them out of any other split, and records `step` (JSON) in the split's definition. Positions
    /// stay dense and in global index order.
    ///
    /// - Throws: ``IndexError/invalidArgument(_:)`` for an empty split name.
    /// - Complexity: O(k log n) for k samples, plus renumbering the split positions.
    public func assign(split name: String, sampleIDs: [Int64], step: String) throws -> SplitAssignment {
        try flush()
        guard !name.isEmpty else { throw IndexError.invalidArgument("a split name must not be empty") }
        try database.cachedStatement(
            """
            INSERT INTO splits(name, definition, created_at) VALUES (?, '[]', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
            ON CONFLICT(name) DO NOTHING
            """
        ).execute([.text(name)])
        let splitID = try database.scalarInt("SELECT id FROM splits WHERE name = ?", .text(name))!
        try database.cachedStatement(
            "UPDATE splits SET definition = json_insert(definition, '$[#]', json(?)) WHERE id = ?"
        ).execute([.text(step), .integer(splitID)])

        try database.execute(
            "CREATE TEMP TABLE IF NOT EXISTS selection(sample_id INTEGER PRIMARY KEY); DELETE FROM selection;")
        let insert = try database.cachedStatement("INSERT OR IGNORE INTO selection(sample_id) VALUES (?)")
        for id in sampleIDs { try insert.execute([.integer(id)]) }

        var movedFrom: [String: Int] = [:]
        let moved = try database.prepare(
            """
            SELECT sp.name, COUNT(*) FROM selection sel JOIN split_members sm ON sm.sample_id = sel.sample_id
            JOIN splits sp ON sp.id = sm.split_id WHERE sm.split_id != ? GROUP BY sp.name
            """)
        try moved.bind(splitID, at: 1)
        while try moved.step() { movedFrom[moved.text(at: 0)] = moved.int(at: 1) }
        let unchanged = Int(
            try database.scalarInt(
                "SELECT COUNT(*) FROM selection sel JOIN split_members sm ON sm.sample_id = sel.sample_id WHERE sm.split_id = ?",
                .integer(splitID)) ?? 0)
        try database.cachedStatement(
            "DELETE FROM split_members WHERE split_id != ? AND sample_id IN (SELECT sample_id FROM selection)"
        ).execute([.integer(splitID)])
        try database.cachedStatement(
            """
            INSERT INTO split_members(split_id, position, sample_id)
            SELECT ?, -1099511627776 - sample_id, sample_id FROM selection
            WHERE sample_id NOT IN (SELECT sample_id FROM split_members)
            """
        ).execute([.integer(splitID)])
        let added = database.changes
        try renumberSplitPositions()
        let total = Int(
            try database.scalarInt("SELECT COUNT(*) FROM split_members WHERE split_id = ?", .integer(splitID)) ?? 0)
        return SplitAssignment(split: name, added: added, unchanged: unchanged, movedFrom: movedFrom, total: total)
    }

    /// Removes every sample from split `name` and deletes the split.
    ///
    /// - Returns: the number of samples that were in it.
    /// - Throws: ``IndexError/unknownSplit(_:available:)``.
    @discardableResult
    public func deleteSplit(_ name: String) throws -> Int {
        try flush()
        let id = try IndexReader(database: database).splitID(name)
        try database.cachedStatement("DELETE FROM split_members WHERE split_id = ?").execute([.integer(id)])
        let n = database.changes
        try database.cachedStatement("DELETE FROM splits WHERE id = ?").execute([.integer(id)])
        return n
    }

    /// Row ids, in global index order, of the samples whose first member lies in one of `shardIDs`.
    public func sampleIDs(inShards shardIDs: [Int64]) throws -> [Int64] {
        try flush()
        try database.execute(
            "CREATE TEMP TABLE IF NOT EXISTS shard_selection(id INTEGER PRIMARY KEY); DELETE FROM shard_selection;")
        let insert = try database.cachedStatement("INSERT OR IGNORE INTO shard_selection(id) VALUES (?)")
        for id in shardIDs { try insert.execute([.integer(id)]) }
        return try ids("SELECT id FROM samples WHERE shard_id IN (SELECT id FROM shard_selection) ORDER BY id")
    }

    /// Row ids, in global index order, of the samples that are in no split or in one of `splits`.
    public func sampleIDs(unassignedOrIn splits: [String]) throws -> [Int64] {
        try flush()
        try database.execute(
            "CREATE TEMP TABLE IF NOT EXISTS split_selection(name TEXT PRIMARY KEY); DELETE FROM split_selection;")
        let insert = try database.cachedStatement("INSERT OR IGNORE INTO split_selection(name) VALUES (?)")
        for s in splits { try insert.execute([.text(s)]) }
        return try ids(
            """
            SELECT s.id FROM samples s LEFT JOIN split_members sm ON sm.sample_id = s.id
            LEFT JOIN splits sp ON sp.id = sm.split_id
            WHERE sm.sample_id IS NULL OR sp.name IN (SELECT name FROM split_selection) ORDER BY s.id
            """)
    }

    /// Row ids of every sample with one of `keys` (all of them when duplicates were kept), and the
    /// keys no sample has.
    public func sampleIDs(forKeys keys: [SampleKey]) throws -> (ids: [Int64], missing: [SampleKey]) {
        try flush()
        let st = try database.cachedStatement("SELECT id FROM samples WHERE key = ?")
        var found: [Int64] = []
        var missing: [SampleKey] = []
        for key in keys {
            try st.bind(textBytes: key.bytes, at: 1)
            var any = false
            while try st.step() {
                found.append(st.int64(at: 0))
                any = true
            }
            st.reset()
            if !any { missing.append(key) }
        }
        return (found, missing)
    }

    private func ids(_ sql: String) throws -> [Int64] {
        let st = try database.prepare(sql)
        var out: [Int64] = []
        while try st.step() { out.append(st.int64(at: 0)) }
        return out
    }

    // MARK: Metadata

    /// Keys with this prefix are written by ShardStore itself and refused from users.
    public static let reservedMetadataPrefix = "shardstore."

    /// Sets metadata `key` to `json`, which must be valid JSON (stored minified).
    ///
    /// - Throws: ``IndexError/invalidArgument(_:)`` when `json` is not valid JSON.
    public func setMetadata(_ key: String, json: String) throws {
        try flush()
        guard try database.scalarInt("SELECT json_valid(?)", .text(json)) == 1 else {
            throw IndexError.invalidArgument(
                "metadata value for '\(MessageText.escaped(key))' is not valid JSON: \(MessageText.escaped(json))")
        }
        try database.cachedStatement(
            "INSERT INTO metadata(key, value) VALUES (?, json(?)) ON CONFLICT(key) DO UPDATE SET value = excluded.value"
        ).execute([.text(key), .text(json)])
    }

    /// `text` as JSON when it parses as JSON, otherwise as a JSON string.
    public func jsonValue(fromUserText text: String, forceString: Bool) throws -> String {
        if !forceString, try database.scalarInt("SELECT json_valid(?)", .text(text)) == 1 {
            return try database.scalarText("SELECT json(?)", .text(text)) ?? text
        }
        return try database.scalarText("SELECT json_quote(?)", .text(text)) ?? JSON.quote(text)
    }

    /// Deletes metadata `key`.
    ///
    /// - Throws: ``IndexError/unknownMetadataKey(_:)`` when it is not set.
    public func deleteMetadata(_ key: String) throws {
        try flush()
        try database.cachedStatement("DELETE FROM metadata WHERE key = ?").execute([.text(key)])
        if database.changes == 0 { throw IndexError.unknownMetadataKey(key) }
    }
}
