import Foundation
import Testing

@testable import ShardIndex

@Suite("Embedded migrations")
struct MigrationsGeneratedTests {
    /// The repository's `migrations/` folder, found from this file's path.
    static let folder = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // ShardIndexTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // repository
        .appendingPathComponent("migrations", isDirectory: true)

    /// The migrations as the files hold them, by the same rules as tools/gen-migrations.
    static func migrationsOnDisk() throws -> [Migration] {
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { !$0.hasPrefix(".") && !$0.uppercased().hasPrefix("README") }
            .sorted()
        return try names.map { fileName in
            let parts = fileName.split(separator: "_", maxSplits: 1)
            guard fileName.hasSuffix(".sql"), parts.count == 2, parts[0].count == 4,
                let version = Int(parts[0])
            else {
                throw MigrationFileError(fileName: fileName)
            }
            let data = try Data(contentsOf: folder.appendingPathComponent(fileName))
            return Migration(
                version: version,
                name: String(parts[1].dropLast(".sql".count)),
                sql: String(decoding: data, as: UTF8.self)
            )
        }
    }

    struct MigrationFileError: Error, CustomStringConvertible {
        var fileName: String
        var description: String { "migrations/\(fileName) is not named NNNN_name.sql" }
    }

    @Test("Migrations.generated.swift matches migrations/*.sql")
    func embeddedMatchesFiles() throws {
        let onDisk = try Self.migrationsOnDisk()
        #expect(!onDisk.isEmpty, "no migrations found in \(Self.folder.path)")
        if EmbeddedMigrations.all != onDisk {
            Issue.record("Migrations.generated.swift is out of date; run tools/gen-migrations")
        }
    }

    @Test("the embedded migrations apply to a new database and pass check")
    func embeddedMigrationsApply() throws {
        try withSQLiteScratchDirectory { dir in
            let path = dir + "/index.sqlite"
            let migrator = Migrator(EmbeddedMigrations.all)
            do {
                let db = try Database(path: path, mode: .readWriteCreate)
                #expect(try migrator.migrate(db) == EmbeddedMigrations.all.map(\.version))
                #expect(try db.scalarInt("PRAGMA foreign_key_check") == nil)
            }
            let reader = try Database(path: path, mode: .readOnly)
            try migrator.check(reader)
        }
    }
}
