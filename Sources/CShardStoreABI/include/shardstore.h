/*
 * shardstore.h: the C ABI of ShardStore (libShardStoreC.so).
 *
 * A small, versioned API over the Swift core: open an index (a split, some extensions, a
 * strategy), ask for its size, its splits and metadata, and read samples as leases: pointers
 * and lengths that stay valid until the lease is released, pointing into the preload, the
 * mapping of a shard, or a buffer the lease owns. Nothing is copied that need not be.
 *
 * Conventions
 * - Every function that can fail returns a shardstore_status: SHARDSTORE_OK (0) or an error
 *   code. When `error` is not NULL, a failure stores in *error a NUL-terminated, one-line message
 *   in UTF-8 (what failed, where, what to do), allocated by the library: free it with
 *   shardstore_string_free(). On success *error is left untouched.
 * - Strings passed in are NUL-terminated UTF-8 unless a length is given; keys are byte strings
 *   (a tar member name up to its extension: any bytes but NUL, not necessarily UTF-8) and always
 *   cross with a length. Text that is not valid UTF-8 is refused with SHARDSTORE_INVALID_ARGUMENT.
 * - Thread safety: a dataset may be used from many threads at once. Calls block on I/O and never
 *   call back into the caller.
 * - Fork safety: after fork(), the child may go on using a dataset its parent opened; the library
 *   notices the new process id and reopens what cannot cross a fork (SQLite connections, locks).
 *   No dataset entry point uses threads of its own, Dispatch or Swift concurrency, so a forked
 *   child never waits on a thread that is gone. Leases taken before the fork stay valid in both.
 *   Loaders (shardstore_loader_*) have reader threads: they belong to the process that made them.
 * - Versions: SHARDSTORE_ABI_VERSION changes whenever a signature, a struct layout or the meaning
 *   of a code changes. A struct that starts with struct_size only grows, at its end, and the
 *   library reads what the caller's struct_size covers: a caller built against an earlier version
 *   keeps working. Check shardstore_abi_version() >= SHARDSTORE_ABI_VERSION after loading.
 *   Version 2 added cache_dir and cache_limit to shardstore_open_options; version 3 added
 *   shardstore_get_into.
 */
#ifndef SHARDSTORE_H
#define SHARDSTORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SHARDSTORE_ABI_VERSION 3

/* Status codes. Stable: a code keeps its number and meaning in every ABI version. */
typedef enum shardstore_status {
    SHARDSTORE_OK = 0,
    /* An argument is not valid: an unknown strategy or lookup name, a bad memory limit, a
       combination that cannot work (the memory strategy with lookup "file"), a NULL pointer. */
    SHARDSTORE_INVALID_ARGUMENT = 1,
    /* No index file at the path. */
    SHARDSTORE_INDEX_NOT_FOUND = 2,
    /* The path is not a readable ShardStore index: a directory, an empty or non-SQLite file, an
       index written by a newer ShardStore. */
    SHARDSTORE_NOT_AN_INDEX = 3,
    /* A position outside 0..<count. */
    SHARDSTORE_OUT_OF_RANGE = 4,
    /* No sample has this key (in the dataset, or in its split). */
    SHARDSTORE_UNKNOWN_KEY = 5,
    /* Several samples share this key (duplicates kept at ingest); read them by position. */
    SHARDSTORE_AMBIGUOUS_KEY = 6,
    /* No split with this name. */
    SHARDSTORE_UNKNOWN_SPLIT = 7,
    /* No member has this extension. */
    SHARDSTORE_UNKNOWN_EXTENSION = 8,
    /* A shard changed (size or modification time), vanished or was truncated since ingest:
       ingest again. */
    SHARDSTORE_SHARD_CHANGED = 9,
    /* Stored data does not match the index: a member's own tar header differs from its index
       row, or an index row is damaged. No bytes are returned: ingest again into a new index. */
    SHARDSTORE_CORRUPT = 10,
    /* An operating-system error reading a file (permissions, I/O error, too many open files). */
    SHARDSTORE_IO = 11,
    /* Another process is writing the index; retry when it is done. */
    SHARDSTORE_BUSY = 12,
    /* Not enough memory for what was asked (the memory strategy on a selection that does not fit). */
    SHARDSTORE_OUT_OF_MEMORY = 13,
    /* A SQLite error not covered above. */
    SHARDSTORE_SQLITE = 14,
    /* A caller-provided array is too small; the needed size is reported. */
    SHARDSTORE_BUFFER_TOO_SMALL = 15,
    /* Anything else (a bug: please report it with the message). */
    SHARDSTORE_INTERNAL = 99
} shardstore_status;

/* An open dataset: an index, optionally limited to a split and to some extensions. */
typedef struct shardstore_dataset shardstore_dataset;

/* What keeps the bytes of one or more samples alive; see shardstore_lease_release(). */
typedef struct shardstore_lease shardstore_lease;

/* How to open a dataset. Fill it with shardstore_open_options_init(), then set fields: a zero-filled
   struct is refused (its struct_size is 0) rather than read with header checks off. */
typedef struct shardstore_open_options {
    /* sizeof(shardstore_open_options), so that later versions can add fields. */
    uint32_t struct_size;
    /* Check each member's own tar header on every read (1, the default) or not (0: only to
       measure what the check costs). */
    int32_t verify_headers;
    /* The split to limit the dataset to, or NULL for the whole dataset. */
    const char *split;
    /* The extensions to read ("jpg", ".JPG" and "seg.png" are accepted), or NULL (with a count of
       0) for all. A count of 0 with a non-NULL list, or a NULL list with a count, is refused. */
    const char *const *extensions;
    size_t extension_count;
    /* "auto" (or NULL), "memory", "mmap", "pread" or "remote" (range requests, for shards in S3 or
       on a web server; reached as the AWS_* environment variables and ~/.aws say). */
    const char *strategy;
    /* "auto" (or NULL), "table", "file" or "statements". */
    const char *lookup;
    /* The memory this process may use, as a byte count or a size ("512M", "2GiB"), or NULL to
       read it from the system (MemAvailable, cgroup limits, SHARDSTORE_MEMORY_LIMIT). */
    const char *memory_limit;
    /* Since ABI version 2 (a version-1 caller's struct_size ends before them; they count as NULL). */
    /* A folder (it must exist) for whole copies of shards, or NULL for SHARDSTORE_CACHE_DIR (unset:
       none). Remote shards are downloaded into it on their first read (one GET, checked against the
       ETag recorded at ingest) and read from there after, by this and later processes; compressed
       shards too large for RAM are decompressed into it. */
    const char *cache_dir;
    /* The most bytes of copies kept in cache_dir (least recently used deleted first; a remote shard
       larger than this is read by range requests), as a byte count or a size ("50G"), or NULL for
       SHARDSTORE_CACHE_LIMIT (unset: 16G). */
    const char *cache_limit;
} shardstore_open_options;

/* One member of a leased sample. */
typedef struct shardstore_member {
    /* The extension without the dot ("jpg", "seg.png"), NUL-terminated; ext_length excludes NUL. */
    const char *ext;
    size_t ext_length;
    /* The member's bytes (NULL when length is 0). Read-only: never write through it. */
    const void *data;
    uint64_t length;
} shardstore_member;

/* A leased sample. Every pointer in it stays valid until its lease is released. */
typedef struct shardstore_sample {
    /* The key's exact bytes (not NUL-terminated). */
    const uint8_t *key;
    size_t key_length;
    /* The position in the dataset (a split position when the dataset is a split). */
    int64_t position;
    /* The dense global index in the index. */
    int64_t index;
    /* The members read, in archive order. */
    const shardstore_member *members;
    size_t member_count;
} shardstore_sample;

/* Facts about an open dataset. Strings are owned by the dataset and valid until it is closed. */
typedef struct shardstore_dataset_info {
    uint32_t struct_size;
    /* The number of samples (in the split when one is set). */
    int64_t count;
    /* "memory", "mmap", "pread" or "remote". */
    const char *strategy;
    /* "table", "file" or "statements". */
    const char *lookup;
    /* Why the strategy was chosen, in one sentence with the figures. */
    const char *reason;
    /* The total bytes of the selected members. */
    int64_t selection_bytes;
    /* The split, or NULL for the whole dataset. */
    const char *split;
    /* The index path as given. */
    const char *index_path;
} shardstore_dataset_info;

/* ---- Versions ---------------------------------------------------------------------------- */

/* SHARDSTORE_ABI_VERSION of the loaded library. */
uint32_t shardstore_abi_version(void);
/* The library's version ("0.5.0"), static. */
const char *shardstore_version(void);

/* ---- Strings ------------------------------------------------------------------------------ */

/* Frees a string the library returned (an error message, a JSON text). NULL is ignored. */
void shardstore_string_free(char *string);

/* ---- Opening and closing ------------------------------------------------------------------ */

/* Fills *options with the defaults: all zero but struct_size and verify_headers = 1. */
void shardstore_open_options_init(shardstore_open_options *options);

/* Opens the index at `index_path` with `options` (NULL: the defaults). On success stores the
   dataset in *dataset. Every shard the selection uses is checked against the index (size and
   modification time); the memory strategy reads the selection into RAM here. */
shardstore_status shardstore_open(const char *index_path, const shardstore_open_options *options,
                                  shardstore_dataset **dataset, char **error);

/* Closes the dataset. Leases taken from it stay valid until released. NULL is ignored. Must not
   be called while another thread uses the dataset. */
void shardstore_close(shardstore_dataset *dataset);

/* ---- Facts -------------------------------------------------------------------------------- */

/* The number of samples; -1 when dataset is NULL. */
int64_t shardstore_count(const shardstore_dataset *dataset);

/* Fills *info (set info->struct_size first). */
shardstore_status shardstore_info(const shardstore_dataset *dataset, shardstore_dataset_info *info,
                                  char **error);

/* The index's splits as a JSON array of {"name": "...", "count": N} objects, in name order, in a
   string to free with shardstore_string_free(). */
shardstore_status shardstore_splits_json(const shardstore_dataset *dataset, char **json, char **error);

/* The index's metadata as a JSON object {key: value, ...} (values are the stored JSON), in a
   string to free with shardstore_string_free(). */
shardstore_status shardstore_metadata_json(const shardstore_dataset *dataset, char **json, char **error);

/* ---- Lookups ------------------------------------------------------------------------------ */

/* The position of the sample with key `key` (key_length bytes). */
shardstore_status shardstore_position(const shardstore_dataset *dataset, const uint8_t *key,
                                      size_t key_length, int64_t *position, char **error);

/* The positions in storage order (shard by shard, front to back), the order in which a pass
   reads the disk sequentially: fills positions[0 ..< count] with a permutation of 0 ..< count.
   `capacity` must be at least shardstore_count(); otherwise SHARDSTORE_BUFFER_TOO_SMALL. */
shardstore_status shardstore_storage_order(const shardstore_dataset *dataset, int64_t *positions,
                                           size_t capacity, char **error);

/* ---- Reading ------------------------------------------------------------------------------ */

/* Reads the sample at `position` (0 <= position < count) into *sample and stores in *lease what
   keeps its pointers valid. Each member's own tar header is checked first (unless turned off at
   open): a mismatch gives SHARDSTORE_CORRUPT and no bytes. */
shardstore_status shardstore_get(const shardstore_dataset *dataset, int64_t position,
                                 shardstore_sample *sample, shardstore_lease **lease, char **error);

/* Reads `count` samples at once: samples[i] is the sample at positions[i] (positions may repeat
   and come in any order). One lease keeps all of them valid. On failure nothing is leased and
   the message names the position that failed. A count of 0 reads nothing and stores NULL in
   *lease (releasing NULL is a no-op). */
shardstore_status shardstore_get_batch(const shardstore_dataset *dataset, const int64_t *positions,
                                       size_t count, shardstore_sample *samples,
                                       shardstore_lease **lease, char **error);

/* Reads the sample at `position` as shardstore_get does, describing it in the caller's memory
   instead of a lease's: members[0 ..< member_count] (sample->members points there), and the key
   and the NUL-terminated extensions copied into text[0 ..< text_capacity]. These are the
   caller's, valid as long as it keeps them; the member bytes are kept valid by a lease in *keeper.
   When *keeper on entry is a lease (from this function, for this dataset) that already keeps this
   sample's bytes (the preload, a shard's mapping: the same for many samples), it is left as it
   is and nothing is allocated; otherwise a new lease that keeps them is stored in *keeper (the one
   passed in stays the caller's to release). A sample without members leaves *keeper as it is.
   When member_capacity or text_capacity is too small: SHARDSTORE_BUFFER_TOO_SMALL, *keeper left
   as it is, and sample->member_count and sample->key_length say how many members and key bytes
   the sample has (the text needs the key and each extension with its NUL). A NULL array with a
   capacity of 0 is room for nothing; with another capacity, SHARDSTORE_INVALID_ARGUMENT.
   Since ABI version 3. */
shardstore_status shardstore_get_into(const shardstore_dataset *dataset, int64_t position,
                                      shardstore_sample *sample, shardstore_member *members,
                                      size_t member_capacity, char *text, size_t text_capacity,
                                      shardstore_lease **keeper, char **error);

/* Releases a lease: the pointers of the samples it covered become invalid. NULL is ignored. */
void shardstore_lease_release(shardstore_lease *lease);

/* ---- Loading batches ---------------------------------------------------------------------- */

/* A data loader over a dataset: an epoch's samples in a sampler's order (sequential, a global
   shuffle seeded by (seed, epoch), or a locality-aware shuffle), this rank's share of them,
   batched and collated by reader threads of the library ahead of the caller. Batches come out
   in the sampler's order whatever the number of threads.
   Threads: the loader's reader threads start on the first shardstore_loader_next(). A loader
   belongs to the process that opened it: in a forked child every loader call fails with
   SHARDSTORE_INVALID_ARGUMENT (make loaders after forking), and shardstore_loader_close() there
   frees nothing (the threads it would stop are not in the child). Forks wait for the reader
   threads to finish the batch they are reading. One thread at a time may use a loader. */
typedef struct shardstore_loader shardstore_loader;

/* Sample orders. */
typedef enum shardstore_order {
    SHARDSTORE_ORDER_SEQUENTIAL = 0,
    /* A full permutation per epoch: Fisher-Yates over SplitMix64 seeded by (seed, epoch). */
    SHARDSTORE_ORDER_SHUFFLE = 1,
    /* Blocks of block_size consecutive samples, shuffled, then the samples of each window of
       window_blocks blocks shuffled among themselves. */
    SHARDSTORE_ORDER_LOCALITY_SHUFFLE = 2
} shardstore_order;

/* What ranks do with an epoch that does not divide evenly: pad (repeat samples from the
   epoch's start, so every rank gets ceil(left / world_size)) or drop (floor). */
typedef enum shardstore_tail { SHARDSTORE_TAIL_PAD = 0, SHARDSTORE_TAIL_DROP = 1 } shardstore_tail;

/* How members are collated: native (.npy of one dtype and shape stacked, .cls as int64, the rest
   as bytes) or bytes (every extension as raw member bytes). */
typedef enum shardstore_collate { SHARDSTORE_COLLATE_NATIVE = 0, SHARDSTORE_COLLATE_BYTES = 1 } shardstore_collate;

/* How to make a loader. Fill it with shardstore_loader_options_init(), then set fields. */
typedef struct shardstore_loader_options {
    /* sizeof(shardstore_loader_options). */
    uint32_t struct_size;
    /* A shardstore_order. */
    uint32_t order;
    /* Samples per batch (default 1). */
    uint64_t batch_size;
    /* For SHARDSTORE_ORDER_LOCALITY_SHUFFLE: samples per block and blocks per window. */
    uint64_t block_size;
    uint64_t window_blocks;
    uint64_t seed;
    /* 1: leave out an epoch's short last batch. */
    int32_t drop_last;
    /* Reader threads (0: auto) and batches read ahead (0: auto). */
    uint32_t threads;
    uint32_t prefetch;
    /* A shardstore_tail, and a shardstore_collate. */
    uint32_t tail;
    uint32_t collate;
    /* This process's rank among world_size (default 0 of 1). */
    int64_t rank;
    int64_t world_size;
} shardstore_loader_options;

/* Where a loader is: what to save to resume an epoch (after a crash) exactly. */
typedef struct shardstore_loader_state {
    uint64_t seed;
    int64_t epoch;
    /* Epoch positions consumed by all ranks together. */
    int64_t consumed;
    int64_t world_size;
} shardstore_loader_state;

/* Column layouts of a batch. */
typedef enum shardstore_layout {
    /* One C-order array of `dtype` and `shape` (shape[0] is the batch's count) in `data`. */
    SHARDSTORE_LAYOUT_STACKED = 0,
    /* One int64 per sample in `data` (dtype "<i8"). */
    SHARDSTORE_LAYOUT_LABELS = 1,
    /* The members back to back in `data`: sample i's is bytes offsets[i] ..< offsets[i + 1], and
       present[i] is 1 when it has one. */
    SHARDSTORE_LAYOUT_BYTES = 2
} shardstore_layout;

/* One extension of a batch. Pointers stay valid until the batch's lease is released. The data
   is the batch's own (a copy of the members, 64-byte aligned): the caller may write to it. */
typedef struct shardstore_column {
    const char *ext;
    size_t ext_length;
    /* A shardstore_layout. */
    uint32_t layout;
    /* numpy's dtype string ("<f4", "<i8"), NUL-terminated; NULL for SHARDSTORE_LAYOUT_BYTES. */
    const char *dtype;
    const int64_t *shape;
    size_t ndim;
    void *data;
    uint64_t data_length;
    /* SHARDSTORE_LAYOUT_BYTES only (NULL otherwise): count + 1 offsets, count presence bytes. */
    const int64_t *offsets;
    const uint8_t *present;
} shardstore_column;

/* A batch. Pointers stay valid until its lease is released. */
typedef struct shardstore_batch {
    /* The number of samples (filtering may make it smaller than the batch size). */
    int64_t count;
    /* The batch's number in the epoch (from the epoch's start, or the restored position). */
    int64_t number;
    /* Each sample's position in the dataset. */
    const int64_t *positions;
    /* The keys back to back: key i is key_bytes[key_offsets[i] ..< key_offsets[i + 1]]. */
    const uint8_t *key_bytes;
    const int64_t *key_offsets;
    /* One column per extension, in the order extensions first appear in the batch. */
    const shardstore_column *columns;
    size_t column_count;
} shardstore_batch;

/* Fills *options with the defaults: sequential, batch size 1, auto threads and prefetch, rank 0
   of 1, pad, native collation. */
void shardstore_loader_options_init(shardstore_loader_options *options);

/* Makes a loader over `dataset` (which must stay open while the loader is used), at epoch 0. */
shardstore_status shardstore_loader_open(const shardstore_dataset *dataset, const shardstore_loader_options *options,
                                         shardstore_loader **loader, char **error);

/* Stops the loader's threads and frees it; batches already leased stay valid. NULL is ignored. */
void shardstore_loader_close(shardstore_loader *loader);

/* Starts epoch `epoch` from its beginning (the same epoch again too). */
shardstore_status shardstore_loader_set_epoch(shardstore_loader *loader, int64_t epoch, char **error);

/* The number of batches the current epoch yields (from its start or the restored position). */
shardstore_status shardstore_loader_count(shardstore_loader *loader, int64_t *batches, char **error);

/* The next batch of the epoch into *batch, with *lease keeping it valid; at the end of the epoch
   SHARDSTORE_OK with *lease = NULL and batch->count = 0. A failed batch reports its error; the
   next call goes on with the following batch. */
shardstore_status shardstore_loader_next(shardstore_loader *loader, shardstore_batch *batch, shardstore_lease **lease,
                                         char **error);

/* Where the loader is, after the batches returned so far. */
shardstore_status shardstore_loader_state_get(shardstore_loader *loader, shardstore_loader_state *state, char **error);

/* Continues from a saved state: its epoch, from its consumed position (the world size may differ
   from the one that saved it). Refused when the seed differs from the loader's. */
shardstore_status shardstore_loader_restore(shardstore_loader *loader, const shardstore_loader_state *state,
                                            char **error);

/* What the loader chose ("threads auto, 2; prefetch auto, 4 batches"), in a string to free with
   shardstore_string_free(). */
shardstore_status shardstore_loader_report(shardstore_loader *loader, char **report, char **error);

#ifdef __cplusplus
}
#endif

#endif /* SHARDSTORE_H */
