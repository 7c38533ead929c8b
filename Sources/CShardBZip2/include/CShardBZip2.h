// libbz2, for .tar.bz2 shards, loaded at run time with dlopen("libbz2.so.1.0") on first use.
//
// Debian ships libbz2.a built without -fPIC (it refers to libc's `stderr` directly), so it cannot
// be linked into libShardStoreC.so, and linking the shared library would make every user of the
// C library need libbz2 for a format few datasets use. Only the types come from <bzlib.h>.
#ifndef CSHARDBZIP2_H
#define CSHARDBZIP2_H

#include <bzlib.h>

/// Loads libbz2 once (thread-safe). Returns 0 when its functions are available, -1 when the
/// library cannot be loaded (see shardstore_bz2_error()).
int shardstore_bz2_load(void);

/// Why shardstore_bz2_load() failed: dlerror()'s text, or "" when it did not.
const char *shardstore_bz2_error(void);

/// BZ2_bzDecompressInit, BZ2_bzDecompress and BZ2_bzDecompressEnd of the loaded library; call
/// shardstore_bz2_load() first.
int shardstore_bz2_decompress_init(bz_stream *stream, int verbosity, int small);
int shardstore_bz2_decompress(bz_stream *stream);
int shardstore_bz2_decompress_end(bz_stream *stream);

#endif
