/*
 * Compile-time checks of shardstore.h: the layouts the Swift implementation and every binding
 * (ctypes, cffi) rely on. A change here is an ABI change: bump SHARDSTORE_ABI_VERSION.
 */
#include <stddef.h>
#include <stdint.h>

#include "shardstore.h"

_Static_assert(SHARDSTORE_ABI_VERSION == 3, "the layouts below are those of ABI version 3 (unchanged since 2)");
_Static_assert(sizeof(shardstore_status) == 4, "shardstore_status is a 32-bit enum");
_Static_assert(SHARDSTORE_OK == 0 && SHARDSTORE_BUFFER_TOO_SMALL == 15 && SHARDSTORE_INTERNAL == 99,
               "status codes are stable");

#if UINTPTR_MAX == UINT64_MAX
_Static_assert(sizeof(shardstore_open_options) == 72, "shardstore_open_options is 72 bytes on LP64 (56 in version 1)");
_Static_assert(offsetof(shardstore_open_options, verify_headers) == 4, "verify_headers follows struct_size");
_Static_assert(offsetof(shardstore_open_options, split) == 8, "split at 8");
_Static_assert(offsetof(shardstore_open_options, extensions) == 16, "extensions at 16");
_Static_assert(offsetof(shardstore_open_options, extension_count) == 24, "extension_count at 24");
_Static_assert(offsetof(shardstore_open_options, strategy) == 32, "strategy at 32");
_Static_assert(offsetof(shardstore_open_options, lookup) == 40, "lookup at 40");
_Static_assert(offsetof(shardstore_open_options, memory_limit) == 48, "memory_limit at 48");
_Static_assert(offsetof(shardstore_open_options, cache_dir) == 56, "cache_dir at 56: version 1's struct ends here");
_Static_assert(offsetof(shardstore_open_options, cache_limit) == 64, "cache_limit at 64");

_Static_assert(sizeof(shardstore_member) == 32, "shardstore_member is 32 bytes on LP64");
_Static_assert(offsetof(shardstore_member, ext_length) == 8, "ext_length at 8");
_Static_assert(offsetof(shardstore_member, data) == 16, "data at 16");
_Static_assert(offsetof(shardstore_member, length) == 24, "length at 24");

_Static_assert(sizeof(shardstore_sample) == 48, "shardstore_sample is 48 bytes on LP64");
_Static_assert(offsetof(shardstore_sample, key_length) == 8, "key_length at 8");
_Static_assert(offsetof(shardstore_sample, position) == 16, "position at 16");
_Static_assert(offsetof(shardstore_sample, index) == 24, "index at 24");
_Static_assert(offsetof(shardstore_sample, members) == 32, "members at 32");
_Static_assert(offsetof(shardstore_sample, member_count) == 40, "member_count at 40");

_Static_assert(sizeof(shardstore_dataset_info) == 64, "shardstore_dataset_info is 64 bytes on LP64");
_Static_assert(offsetof(shardstore_dataset_info, count) == 8, "count at 8");
_Static_assert(offsetof(shardstore_dataset_info, strategy) == 16, "strategy at 16");
_Static_assert(offsetof(shardstore_dataset_info, lookup) == 24, "lookup at 24");
_Static_assert(offsetof(shardstore_dataset_info, reason) == 32, "reason at 32");
_Static_assert(offsetof(shardstore_dataset_info, selection_bytes) == 40, "selection_bytes at 40");
_Static_assert(offsetof(shardstore_dataset_info, split) == 48, "split at 48");
_Static_assert(offsetof(shardstore_dataset_info, index_path) == 56, "index_path at 56");

_Static_assert(sizeof(shardstore_loader_options) == 80, "shardstore_loader_options is 80 bytes on LP64");
_Static_assert(offsetof(shardstore_loader_options, order) == 4, "order at 4");
_Static_assert(offsetof(shardstore_loader_options, batch_size) == 8, "batch_size at 8");
_Static_assert(offsetof(shardstore_loader_options, seed) == 32, "seed at 32");
_Static_assert(offsetof(shardstore_loader_options, drop_last) == 40, "drop_last at 40");
_Static_assert(offsetof(shardstore_loader_options, collate) == 56, "collate at 56");
_Static_assert(offsetof(shardstore_loader_options, rank) == 64, "rank at 64");
_Static_assert(offsetof(shardstore_loader_options, world_size) == 72, "world_size at 72");

_Static_assert(sizeof(shardstore_loader_state) == 32, "shardstore_loader_state is 32 bytes");

_Static_assert(sizeof(shardstore_column) == 80, "shardstore_column is 80 bytes on LP64");
_Static_assert(offsetof(shardstore_column, layout) == 16, "layout at 16");
_Static_assert(offsetof(shardstore_column, dtype) == 24, "dtype at 24");
_Static_assert(offsetof(shardstore_column, data) == 48, "data at 48");
_Static_assert(offsetof(shardstore_column, present) == 72, "present at 72");

_Static_assert(sizeof(shardstore_batch) == 56, "shardstore_batch is 56 bytes on LP64");
_Static_assert(offsetof(shardstore_batch, positions) == 16, "positions at 16");
_Static_assert(offsetof(shardstore_batch, columns) == 40, "columns at 40");
_Static_assert(offsetof(shardstore_batch, column_count) == 48, "column_count at 48");
#endif
