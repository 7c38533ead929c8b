// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "ShardStore",
    products: [
        .library(name: "ShardStore", targets: ["ShardStore"]),
        .executable(name: "shardstore", targets: ["shardstore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2")
    ],
    targets: [
        // Pure core: tar header codec, webdataset key rule, seeded RNG. No Foundation, no C.
        .target(name: "ShardCore"),
        // The system SQLite, imported by ShardIndex only.
        .systemLibrary(
            name: "CShardSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        // zlib, for the CLI's crc32 checksums (`shardstore bench`).
        .systemLibrary(
            name: "CShardZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        // Files, pread, stat, path expansion.
        .target(name: "ShardIO", dependencies: ["ShardCore"]),
        // SQLite connection, statements, migrations and the typed index API.
        .target(name: "ShardIndex", dependencies: ["ShardCore", "CShardSQLite"]),
        // stat -> compare with index -> scan -> write.
        .target(name: "ShardIngest", dependencies: ["ShardCore", "ShardIO", "ShardIndex", "ShardLoader"]),
        // Reading samples back: Dataset.
        .target(name: "ShardLoader", dependencies: ["ShardCore", "ShardIO", "ShardIndex"]),
        // The façade users import.
        .target(
            name: "ShardStore",
            dependencies: ["ShardCore", "ShardIO", "ShardIndex", "ShardIngest", "ShardLoader"]
        ),
        .executableTarget(
            name: "shardstore",
            dependencies: [
                "ShardStore",
                "CShardZlib",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Test support: a tar writer and fixture helpers shared by the test targets.
        .target(name: "ShardTestSupport", dependencies: ["ShardCore"], path: "Tests/ShardTestSupport"),
        .testTarget(name: "ShardCoreTests", dependencies: ["ShardCore", "ShardTestSupport"]),
        .testTarget(
            name: "ShardIndexTests",
            dependencies: ["ShardIndex", "ShardTestSupport"]
        ),
        .testTarget(
            name: "ShardIngestTests",
            dependencies: ["ShardStore", "ShardTestSupport"]
        ),
        .testTarget(name: "ShardCLITests", dependencies: ["shardstore", "ShardTestSupport"]),
    ]
)
