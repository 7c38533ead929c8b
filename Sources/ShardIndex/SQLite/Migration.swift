/// One forward-only schema change: the SQL of `migrations/NNNN_name.sql`.
///
/// Once shipped, a migration is never edited; a later change is a new migration. The migrations
/// of a build are embedded by `tools/gen-migrations` as `EmbeddedMigrations.all`.
///
/// ```swift
/// let migration = Migration(version: 2, name: "add_split_index", sql: "CREATE INDEX …;")
/// migration.fileName  // "0002_add_split_index.sql"
/// ```
public struct Migration: Sendable, Hashable {
    /// The schema version this migration brings the database to: 1, 2, 3, …
    public let version: Int
    /// The name part of the file name (`initial` for `0001_initial.sql`).
    public let name: String
    /// The SQL, one or more statements, without BEGIN or COMMIT.
    public let sql: String

    /// Creates a migration.
    ///
    /// ```swift
    /// Migration(version: 1, name: "initial", sql: "CREATE TABLE t(x);")
    /// ```
    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }

    /// The file the migration comes from: `NNNN_name.sql`, the version padded to four digits.
    public var fileName: String {
        let digits = String(version)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits + "_" + name + ".sql"
    }
}
