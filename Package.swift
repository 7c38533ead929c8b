// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "ShardStore",
    products: [
        .library(name: "ShardStore", targets: ["ShardStore"]),
        .executable(name: "shardstore", targets: ["shardstore"]),
        // The C ABI (shardstore.h) for the Python package; tools/build-c-library builds it with the
        // Swift runtime and SQLite linked in and only the C functions exported.
        .library(name: "ShardStoreC", type: .dynamic, targets: ["ShardStoreC"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2")
    ],
    targets: [
        // CRC-32C with the CPU's crc32 instruction (x86-64 SSE4.2), imported by ShardCore only;
        // ShardCore falls back to its own Swift tables elsewhere.
        .target(name: "CShardCRC32C"),
        // Pure core: tar header codec, webdataset key rule, seeded RNG. No Foundation, no system C
        // library (only our CRC-32C instruction shim).
        .target(name: "ShardCore", dependencies: ["CShardCRC32C"]),
        // The system SQLite, imported by ShardIndex only.
        .systemLibrary(
            name: "CShardSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        // The compression libraries, each imported by ShardCompression only. zlib: gzip shards,
        // deflate for HDF5 chunks, crc32 for `shardstore bench`.
        .systemLibrary(
            name: "CShardZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .systemLibrary(
            name: "CShardZstd",
            pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"])]
        ),
        .systemLibrary(
            name: "CShardLZMA",
            pkgConfig: "liblzma",
            providers: [.apt(["liblzma-dev"])]
        ),
        // libbz2, loaded with dlopen on first use (Debian's libbz2.a is not position-independent,
        // so it cannot go into libShardStoreC.so); its header comes from libbz2-dev.
        .target(name: "CShardBZip2"),
        // libhdf5 (Debian libhdf5-dev, 1.10 or newer), imported by ShardExport only; the shim holds
        // what Swift cannot import (H5T_NATIVE_* and H5P_DEFAULT as functions).
        .systemLibrary(
            name: "CShardHDF5",
            pkgConfig: "hdf5",
            providers: [.apt(["libhdf5-dev"])]
        ),
        // libcurl, imported by ShardRemote only and loaded with dlopen("libcurl.so.4") on first use
        // (its headers come from Debian's libcurl4-openssl-dev); the header holds typed wrappers of
        // the variadic curl_easy_setopt/getinfo and curl_multi_setopt.
        .target(name: "CShardCurl"),
        // Files, pread, stat, path expansion.
        .target(name: "ShardIO", dependencies: ["ShardCore"]),
        // Compressed shards (gzip, zstd, xz, bzip2): streaming decompression for ingest, seek
        // tables, random reads; and zlib's crc32/deflate for the other modules.
        .target(
            name: "ShardCompression",
            dependencies: [
                "ShardCore", "ShardIO", "CShardCRC32C", "CShardZlib", "CShardZstd", "CShardLZMA", "CShardBZip2",
            ]
        ),
        // Remote shards: S3 (SigV4 through libcurl) and HTTP(S) objects: stat, range reads (one or a
        // batch in flight), whole-object streams, listings, retries. Pthreads only, no Dispatch.
        .target(name: "ShardRemote", dependencies: ["ShardCore", "ShardIO", "CShardCurl"]),
        // SQLite connection, statements, migrations and the typed index API.
        .target(name: "ShardIndex", dependencies: ["ShardCore", "ShardIO", "CShardSQLite"]),
        // stat -> compare with index -> scan -> write.
        .target(
            name: "ShardIngest",
            dependencies: ["ShardCore", "ShardIO", "ShardIndex", "ShardLoader", "ShardCompression", "ShardRemote"]),
        // Reading samples back: Dataset.
        .target(
            name: "ShardLoader",
            dependencies: ["ShardCore", "ShardIO", "ShardIndex", "ShardCompression", "ShardRemote"]),
        // Exports of a selection: HDF5 (through libhdf5) and raw files.
        .target(
            name: "ShardExport",
            dependencies: ["ShardCore", "ShardIO", "ShardIndex", "ShardLoader", "CShardHDF5", "ShardCompression"]
        ),
        // The C ABI's contract: the committed header shardstore.h, compile-time checks of its layouts,
        // and the linker version script that exports only its functions.
        .target(name: "CShardStoreABI", exclude: ["shardstore.exports"]),
        // The C ABI over the Swift core: one @c function per function of shardstore.h. No Foundation,
        // no ingest or export (HDF5, zlib stay out of libShardStoreC.so).
        .target(
            name: "ShardStoreC",
            dependencies: ["CShardStoreABI", "ShardCore", "ShardIO", "ShardIndex", "ShardLoader"]
        ),
        // The façade users import.
        .target(
            name: "ShardStore",
            dependencies: [
                "ShardCore", "ShardIO", "ShardIndex", "ShardIngest", "ShardLoader", "ShardExport", "ShardCompression",
                "ShardRemote",
            ]
        ),
        .executableTarget(
            name: "shardstore",
            dependencies: [
                "ShardStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Test support: a tar writer and fixture helpers shared by the test targets.
        .target(name: "ShardTestSupport", dependencies: ["ShardCore"], path: "Tests/ShardTestSupport"),
        .testTarget(name: "ShardCoreTests", dependencies: ["ShardCore", "ShardTestSupport"]),
        .testTarget(name: "ShardIOTests", dependencies: ["ShardIO", "ShardTestSupport"]),
        .testTarget(
            name: "ShardCompressionTests",
            dependencies: ["ShardCompression", "ShardCore", "ShardIO", "ShardTestSupport"]
        ),
        .testTarget(
            name: "ShardRemoteTests",
            dependencies: ["ShardRemote", "ShardCore", "ShardIO", "ShardStore", "ShardTestSupport"]),
        .testTarget(
            name: "ShardIndexTests",
            dependencies: ["ShardIndex", "ShardTestSupport"]
        ),
        .testTarget(
            name: "ShardIngestTests",
            dependencies: ["ShardStore", "ShardTestSupport"]
        ),
        .testTarget(name: "ShardExportTests", dependencies: ["ShardStore", "ShardTestSupport"]),
        .testTarget(name: "ShardCLITests", dependencies: ["shardstore", "ShardTestSupport"]),
        .testTarget(
            name: "ShardStoreCTests",
            dependencies: ["ShardStoreC", "CShardStoreABI", "ShardStore", "ShardTestSupport"]
        ),
    ]
)
