-- ShardStore index, schema 1.
-- Forward-only: once shipped this file is never edited; later changes go in 0002_*.sql and on.
-- Offsets and lengths are 64-bit INTEGERs. Keys are TEXT holding the member name's exact bytes
-- (valid UTF-8 in nearly every dataset; bytes that are not are kept as they are, never replaced).

-- One row per tar shard.
CREATE TABLE shards (
    id            INTEGER PRIMARY KEY,            -- ingest order; kept when the shard is re-indexed
    path          TEXT    NOT NULL UNIQUE,        -- relative to the index file's folder when below it, else absolute
    size          INTEGER NOT NULL,               -- bytes, at ingest
    mtime_ns      INTEGER NOT NULL,               -- modification time in ns since the epoch, at ingest
    member_count  INTEGER NOT NULL,               -- regular-file members indexed from this shard
    skipped_count INTEGER NOT NULL,               -- entries that are not members (directories, links, names without extension, __meta__ ...)
    compression   TEXT    NOT NULL DEFAULT 'none',
    ingested_at   TEXT    NOT NULL                -- UTC, ISO 8601
);

-- One row per sample. `id` is the dense global index 0..<count (dataset[id]), in the order of
-- (shard_id, first_offset): shards in ingest order, samples in archive order.
CREATE TABLE samples (
    id           INTEGER PRIMARY KEY,             -- dense global index
    key          TEXT    NOT NULL,                -- exact bytes of the key
    shard_id     INTEGER NOT NULL REFERENCES shards(id),  -- shard of the sample's first member
    first_offset INTEGER NOT NULL                 -- header offset of that first member
);
CREATE INDEX samples_by_key ON samples(key);

-- One row per member (a regular file of a tar shard).
CREATE TABLE members (
    sample_id     INTEGER NOT NULL REFERENCES samples(id),
    ext           TEXT    NOT NULL,               -- extension, lower-cased, may contain dots ("seg.png")
    shard_id      INTEGER NOT NULL REFERENCES shards(id),
    header_offset INTEGER NOT NULL,               -- first header block of the member (pax / long-name blocks included)
    data_offset   INTEGER NOT NULL,               -- first data byte
    length        INTEGER NOT NULL,               -- data bytes
    PRIMARY KEY (sample_id, ext)
) WITHOUT ROWID;

-- Named splits. A sample belongs to at most one split.
CREATE TABLE splits (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    definition TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(definition)),  -- how it was assigned, as JSON
    created_at TEXT NOT NULL
);

-- Split membership. `position` is dense 0..<count within a split, in global index order: split[position].
CREATE TABLE split_members (
    split_id  INTEGER NOT NULL REFERENCES splits(id) ON DELETE CASCADE,
    position  INTEGER NOT NULL,
    sample_id INTEGER NOT NULL UNIQUE REFERENCES samples(id),
    PRIMARY KEY (split_id, position)
) WITHOUT ROWID;

-- Dataset metadata: JSON values. Keys starting with "shardstore." are written by ShardStore itself.
CREATE TABLE metadata (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL CHECK (json_valid(value))
) WITHOUT ROWID;
