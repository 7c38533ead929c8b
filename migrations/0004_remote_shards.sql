-- ShardStore index, schema 4: remote shards, in S3-compatible object storage or behind an HTTP(S) URL.
-- Forward-only: once shipped this file is never edited.
--
-- A remote shard's `shards.path` is its location as given (`s3://bucket/key`,
-- `https://host/path/shard.tar`), never made relative; `shards.size` is the object's size and
-- `shards.mtime_ns` its Last-Modified in ns since the epoch (0 when the server sent none). Reads
-- send the ETag with each range request (If-Match), so that an object replaced since ingest is
-- refused rather than read.

-- The object's ETag as the server sent it (quotes included); NULL for a local shard, or a remote
-- one whose server sends none.
ALTER TABLE shards ADD COLUMN etag TEXT;
-- The object's Last-Modified as the server wrote it; NULL for a local shard.
ALTER TABLE shards ADD COLUMN last_modified TEXT;
