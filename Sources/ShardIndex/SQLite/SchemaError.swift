/// Why an index's schema cannot be used by this build, or could not be brought up to date.
///
/// ```swift
/// do {
///     try IndexFile.migrator.check(db)
/// } catch let error as SchemaError {
///     print(error)  // "/data/index.sqlite was written by a newer ShardStore (schema 7; …"
/// }
/// ```
public enum SchemaError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The database records a schema version newer than the newest migration this build knows.
    /// Nothing was changed.
    case newerSchema(path: String, found: Int, known: Int)
    /// The database lacks migrations this build needs; `found` is the highest version up to which
    /// all are applied (0 for an empty file). Raised by `Migrator.check`, which does not write.
    case outdatedSchema(path: String, found: Int, known: Int)
    /// The file is not an SQLite database, or holds tables but no `schema_migrations` record.
    case notAShardStoreIndex(path: String)
    /// The file holds no database at all (0 bytes, or too short for SQLite to read as one).
    /// Raised by `Migrator.check`, which does not write; `migrate` makes an index in it.
    case emptyDatabase(path: String)
    /// A migration failed and was rolled back; the migrations before it stay applied.
    /// `migration` is its file name (`0002_add_split_index.sql`).
    case migrationFailed(path: String, migration: String, underlying: SQLiteError)

    /// One line: what is wrong, with which file, and what to do.
    public var description: String {
        switch self {
        case .newerSchema(let path, let found, let known):
            "\(path) was written by a newer ShardStore (schema \(found); this build knows up to \(known)); "
                + "upgrade shardstore to read it"
        case .outdatedSchema(let path, let found, let known):
            "\(path) has an older schema (schema \(found); this build needs \(known)); "
                + "run `shardstore ingest` with this version to upgrade"
        case .notAShardStoreIndex(let path):
            "\(path) is not a ShardStore index (it has no schema_migrations table); "
                + "pass the index.sqlite that `shardstore ingest` wrote"
        case .emptyDatabase(let path):
            "\(path) is not a ShardStore index: it holds no database (the file is empty, or too short to hold one); "
                + "pass the index.sqlite that `shardstore ingest` wrote, or make an index there with "
                + "`shardstore ingest \(path) SHARD...`"
        case .migrationFailed(let path, let migration, let underlying):
            "migration \(migration) failed on \(path) and was rolled back "
                + "(earlier migrations stay applied): \(underlying)"
        }
    }
}
