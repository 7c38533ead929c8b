-- ShardStore index, schema 2: CRC-32C checksums of member data.
-- Forward-only: once shipped this file is never edited.

-- The CRC-32C (Castagnoli) of the member's data bytes, recorded by `shardstore ingest --checksums`
-- and compared by `shardstore verify --data`; NULL when not recorded. Stored as the unsigned
-- 32-bit value (0 ... 4294967295).
ALTER TABLE members ADD COLUMN crc32c INTEGER;

-- Whether a shard's members all have their checksum recorded (1) or none of them has (0).
-- Set when the shard is scanned; an unchanged shard keeps it across ingests.
ALTER TABLE shards ADD COLUMN has_checksums INTEGER NOT NULL DEFAULT 0;
