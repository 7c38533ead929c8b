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
    /// hot rollback journal beside the index. A read-only connection cannot roll it back and would
    /// fail, so when a journal exists a short read-write connection reads the schema, which makes
    /// SQLite restore the index as it was before the interrupted write.
    ///
    /// - Throws: ``IndexFileError`` when a journal exists but the index cannot be opened for
    ///   writing to roll it back (a read-only folder, for example).
    public static func recoverInterruptedWrite(_ path: String) throws {
        var st = stat()
        guard stat(path + "-journal", &st) == 0, st.st_size > 0 else { return }
        do {
            let db = try Database(path: path, mode: .readWrite)
            _ = try db.scalarInt("SELECT COUNT(*) FROM sqlite_master")
            db.close()
        } catch {
            throw IndexFileError(
                path: path,
                message:
                    "an interrupted ingest left '\(path)-journal', which must be rolled back before the index can be read, but the index cannot be opened for writing (\(error)); make it writable and run any shardstore command once"
            )
        }
    }

    /// The temporary name the location file writer uses beside `path`: `.NAME.partial-PID`.
    /// (New indexes are built in an ``AtomicFile`` instead: see ``createPartial(for:)``.)
    public static func partialPath(for path: String, pid: Int32 = getpid()) -> String {
        let (dir, name) = split(path)
        return dir + ".\(name).partial-\(pid)"
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
    /// the folder. On a failure the partial index is removed.
    ///
    /// - Throws: ``IndexFileError`` naming the path.
    public static func publish(_ partial: AtomicFile) throws {
        do {
            try partial.commit(.refusingExisting)
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
