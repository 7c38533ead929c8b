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
 *   No entry point uses threads of its own, Dispatch or Swift concurrency, so a forked child
 *   never waits on a thread that is gone. Leases taken before the fork stay valid in both.
 * - Versions: SHARDSTORE_ABI_VERSION changes whenever a signature, a struct layout or the meaning
 *   of a code changes. Check shardstore_abi_version() == SHARDSTORE_ABI_VERSION after loading.
 */
#ifndef SHARDSTORE_H
#define SHARDSTORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SHARDSTORE_ABI_VERSION 1

/* Status codes. Stable: a code keeps its number and meaning for the life of ABI version 1. */
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
    /* "auto" (or NULL), "memory", "mmap" or "pread". */
    const char *strategy;
    /* "auto" (or NULL), "table", "file" or "statements". */
    const char *lookup;
    /* The memory this process may use, as a byte count or a size ("512M", "2GiB"), or NULL to
       read it from the system (MemAvailable, cgroup limits, SHARDSTORE_MEMORY_LIMIT). */
    const char *memory_limit;
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
    /* "memory", "mmap" or "pread". */
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

/* Releases a lease: the pointers of the samples it covered become invalid. NULL is ignored. */
void shardstore_lease_release(shardstore_lease *lease);

#ifdef __cplusplus
}
#endif

#endif /* SHARDSTORE_H */
