-- ShardStore index, schema 3: compressed shards (gzip, zstd, xz, bzip2), indexed as they are.
-- Forward-only: once shipped this file is never edited.
--
-- A compressed shard's `shards.compression` (schema 1, 'none' until now) names its format:
-- 'gzip', 'zstd', 'xz' or 'bzip2', found from the file's magic bytes at ingest. `shards.size`
-- stays the file's size on disk; every offset in `members` and `samples` is an offset into the
-- uncompressed tar.

-- The uncompressed tar's size in bytes; NULL for an uncompressed shard.
ALTER TABLE shards ADD COLUMN uncompressed_size INTEGER;

-- Where a compressed shard can be entered: gzip seek points (offsets and their 32 KiB windows),
-- zstd frame starts or xz block starts, as the versioned, CRC-32C-protected bytes of
-- ShardCompression's SeekTable. One row per compressed shard, written with its members.
CREATE TABLE seek_tables (
    shard_id    INTEGER PRIMARY KEY REFERENCES shards(id),
    point_count INTEGER NOT NULL,                -- seek points (0: the shard can only be read front to back)
    data        BLOB    NOT NULL
);
