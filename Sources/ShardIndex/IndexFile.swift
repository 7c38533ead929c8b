import ShardIO

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// File-level operations on an index: existence, schema checks, and building a new index under a
/// temporary name that is published atomically, so an index either does not exist or is complete.
public enum IndexFile {
    /// The schema version this build writes and reads.
    public static var currentSchemaVersion: Int { EmbeddedMigrations.all.last?.version ?? 0 }

    /// The metadata entry holding the index's content id: a random hex id that every ingest which
    /// changes samples or members writes anew. Files derived from the index (the loader's location
    /// file) record the id they were built from, and are rebuilt when it differs.
    public static let contentIDKey = "shardstore.content_id"

    /// A new random content id: 32 hex digits.
    public static func newContentID() -> String {
        var generator = SystemRandomNumberGenerator()
        let value = (generator.next() as UInt64, generator.next() as UInt64)
        func hex(_ v: UInt64) -> String {
            let digits = String(v, radix: 16)
            return String(repeating: "0", count: 16 - digits.count) + digits
        }
        return hex(value.0) + hex(value.1)
    }

    /// The migrator over the migrations embedded in this binary.
    public static var migrator: Migrator { Migrator(EmbeddedMigrations.all) }

    /// Whether a file exists at `path`.
    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0
    }

    /// The oldest schema readers accept without upgrading it. Schema 2 only adds checksum
    /// columns (`members.crc32c`, `shards.has_checksums`), which readers look for before use, so a
    /// schema-1 index on read-only storage keeps working; any write migrates it.
    public static let oldestReadableSchemaVersion = 1

    /// Refuses an index written by a newer ShardStore, one older than
    /// ``oldestReadableSchemaVersion``, or one that is not a ShardStore index.
    ///
    /// - Throws: `SchemaError`.
    public static func checkSchema(_ db: Database) throws {
        try migrator.check(db, oldestReadable: oldestReadableSchemaVersion)
    }

    /// Rolls back a write that was killed mid-transaction (`kill -9`, power loss), which leaves a
    /// hot rollback journal beside the index, and tells such a journal from the one a live writer
    /// (an ingest, `split assign`) keeps while it runs.
    ///
    /// Only SQLite knows which it is: a live writer holds a lock on the index (RESERVED while it
    /// writes, PENDING or EXCLUSIVE while it commits or spills its cache), a dead one holds none.
    /// So when a journal exists, a read-only connection reads the schema first. SQLite then waits
    /// up to the busy timeout (5 s) for a committing writer, and reads the committed index beside
    /// a writer that is still working; only when the journal is hot does it refuse
    /// (`SQLITE_READONLY_ROLLBACK`), and then a short read-write connection reads the schema,
    /// which makes SQLite restore the index as it was before the interrupted write.
    ///
    /// ```swift
    /// try IndexFile.recoverInterruptedWrite("ds/index.sqlite")
    /// let db = try Database(path: "ds/index.sqlite", mode: .readOnly)
    /// ```
    ///
    /// - Throws: ``IndexFileError`` when another process kept the index locked for the whole busy
    ///   timeout ("another process is writing this index"), or when the journal is hot but the
    ///   index cannot be opened for writing to roll it back (a read-only folder, for example).
    /// - Complexity: one `stat` when there is no journal; otherwise up to the busy timeout.
    public static func recoverInterruptedWrite(_ path: String) throws {
        var st = stat()
        guard stat(path + "-journal", &st) == 0, st.st_size > 0 else { return }
        if let error = schemaReadError(path, .readOnly) {
            if error.code == .busy { throw busy(path) }
            guard error.extendedCode == .readonlyRollback else { throw error }
            // A hot journal: a read-write connection rolls it back.
            if let error = schemaReadError(path, .readWrite) {
                if error.code == .busy { throw busy(path) }
                throw IndexFileError(
                    path: path,
                    message:
                        "an interrupted write (a killed ingest, split or meta command) left '\(path)-journal', which must be rolled back before the index can be read, but the index cannot be opened for writing (\(error)); make the index and its folder writable and run any shardstore command once"
                )
            }
        }
        // No error: a live writer, or one that finished meanwhile; nothing to roll back.
    }

    /// Opens the index at `path` in `mode` and reads its schema (which takes SQLite's shared lock
    /// and, read-write, rolls back a hot journal); the error, if any.
    private static func schemaReadError(_ path: String, _ mode: Database.Mode) -> SQLiteError? {
        do {
            let db = try Database(path: path, mode: mode)
            _ = try db.scalarInt("SELECT COUNT(*) FROM sqlite_master")
            db.close()
            return nil
        } catch {
            return error
        }
    }

    /// The error for an index another process kept locked for the whole busy timeout: "index
    /// 'PATH': another process is writing this index (waited 5 s for it); try again when it has
    /// finished".
    ///
    /// ```swift
    /// catch let error as SQLiteError where error.code == .busy { throw IndexFile.busy(path) }
    /// ```
    public static func busy(_ path: String) -> IndexFileError {
        IndexFileError(
            path: path,
            message:
                "another process is writing this index (waited \(Database.defaultBusyTimeout / 1000) s for it); try again when it has finished"
        )
    }

    /// Refuses a path that names a directory: SQLite would fail on it with "unable to open
    /// database file" or "disk I/O error".
    ///
    /// ```swift
    /// try IndexFile.checkNotDirectory(".")   // throws IndexError.indexIsDirectory(path: ".")
    /// ```
    ///
    /// - Throws: ``IndexError/indexIsDirectory(path:)``.
    /// - Complexity: one `stat`.
    public static func checkNotDirectory(_ path: String) throws(IndexError) {
        var st = stat()
        if stat(path, &st) == 0, st.st_mode & S_IFMT == S_IFDIR { throw .indexIsDirectory(path: path) }
    }

    /// Whether `path` is an existing file of 0 bytes (as `touch` makes): SQLite treats it as an
    /// empty database, and an ingest builds a new index to replace it.
    ///
    /// ```swift
    /// if IndexFile.isEmptyFile(path) { /* build in createPartial(for:), publish replacing it */ }
    /// ```
    ///
    /// - Complexity: one `stat`.
    public static func isEmptyFile(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && st.st_mode & S_IFMT == S_IFREG && st.st_size == 0
    }

    /// Whether this process may write the index at `path` and create its journal beside it
    /// (`access(W_OK)` on both: false for a read-only file, folder or file system).
    ///
    /// ```swift
    /// guard IndexFile.isWritable(path) else { /* read only: succeed only if nothing changes */ }
    /// ```
    ///
    /// - Complexity: two `access` calls.
    public static func isWritable(_ path: String) -> Bool {
        let (dir, _) = split(path)
        return access(path, W_OK) == 0 && access(dir.isEmpty ? "." : dir, W_OK) == 0
    }

    /// Removes the temporaries beside `path` whose process no longer runs (left by a killed
    /// ingest): see ``AtomicFile/removeStalePartials(for:)``. Returns the removed temporaries,
    /// without their SQLite `-journal`, `-wal` and `-shm` files.
    @discardableResult
    public static func removeStalePartials(for path: String) -> [String] {
        AtomicFile.removeStalePartials(for: path).filter { removed in
            !["-journal", "-wal", "-shm"].contains { removed.hasSuffix($0) }
        }
    }

    /// Creates the empty file a new index at `path` is built in, beside it (see ``AtomicFile``).
    /// Open it with `Database(path: partial.temporaryPath, mode: .readWrite, followingSymlinks:
    /// false)`, then ``publish(_:)`` it, or ``discard(_:)`` it on failure.
    ///
    /// ```swift
    /// let partial = try IndexFile.createPartial(for: "ds/index.sqlite")
    /// let db = try Database(path: partial.temporaryPath, mode: .readWrite, followingSymlinks: false)
    /// // … migrate and fill, then db.close()
    /// try IndexFile.publish(partial)
    /// ```
    ///
    /// - Throws: ``IndexFileError`` naming the index when the file cannot be created.
    public static func createPartial(for path: String) throws -> AtomicFile {
        do {
            return try AtomicFile(destination: path)
        } catch {
            throw IndexFileError(path: path, message: "cannot create the new index beside it: \(error)")
        }
    }

    /// Publishes a finished index built in `partial`: flushes it to disk (checking the result),
    /// links it into place, failing if an index appeared at the destination meanwhile, and syncs
    /// the folder. With `replacingEmptyFile`, the destination is a 0-byte file (as `touch` makes)
    /// that the new index replaces, failing if it is no longer empty. On a failure the partial
    /// index is removed.
    ///
    /// - Throws: ``IndexFileError`` naming the path.
    public static func publish(_ partial: AtomicFile, replacingEmptyFile: Bool = false) throws {
        if replacingEmptyFile, !isEmptyFile(partial.destination) {
            discard(partial)
            throw IndexFileError(
                path: partial.destination,
                message:
                    "another process wrote to the empty file while this ingest ran; run the ingest again to add to it")
        }
        do {
            try partial.commit(replacingEmptyFile ? .replacing : .refusingExisting)
        } catch let error where error.errno == EEXIST {
            discard(partial)
            throw IndexFileError(
                path: partial.destination,
                message: "another process created the index while this ingest ran; run the ingest again to add to it")
        } catch {
            discard(partial)
            throw IndexFileError(
                path: partial.destination, message: "cannot move the new index into place: \(error)")
        }
    }

    /// Deletes an unfinished index and the SQLite files beside it.
    public static func discard(_ partial: AtomicFile) {
        partial.discard()
        for suffix in ["-journal", "-wal", "-shm"] { unlink(partial.temporaryPath + suffix) }
    }

    private static func split(_ path: String) -> (dir: String, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return ("", path) }
        return (String(path[...slash]), String(path[path.index(after: slash)...]))
    }
}

/// An index file that cannot be created or replaced.
public struct IndexFileError: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var message: String
    public var description: String { "index '\(path)': \(message)" }
}
