#include "CShardBZip2.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int (*decompress_init)(bz_stream *, int, int);
static int (*decompress)(bz_stream *);
static int (*decompress_end)(bz_stream *);
static char failure[512];

static void load(void) {
    // The Debian soname first, then the names other distributions use.
    static const char *const names[] = {"libbz2.so.1.0", "libbz2.so.1", "libbz2.so"};
    void *library = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && library == NULL; i++) {
        library = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    }
    if (library == NULL) {
        const char *why = dlerror();
        snprintf(failure, sizeof failure, "%s", why != NULL ? why : "libbz2.so.1.0 not found");
        return;
    }
    decompress_init = (int (*)(bz_stream *, int, int))dlsym(library, "BZ2_bzDecompressInit");
    decompress = (int (*)(bz_stream *))dlsym(library, "BZ2_bzDecompress");
    decompress_end = (int (*)(bz_stream *))dlsym(library, "BZ2_bzDecompressEnd");
    if (decompress_init == NULL || decompress == NULL || decompress_end == NULL) {
        snprintf(failure, sizeof failure, "libbz2 lacks BZ2_bzDecompressInit, BZ2_bzDecompress or BZ2_bzDecompressEnd");
        decompress_init = NULL;
    }
}

int shardstore_bz2_load(void) {
    pthread_once(&once, load);
    return decompress_init != NULL ? 0 : -1;
}

const char *shardstore_bz2_error(void) { return failure; }

int shardstore_bz2_decompress_init(bz_stream *stream, int verbosity, int small) {
    return decompress_init(stream, verbosity, small);
}

int shardstore_bz2_decompress(bz_stream *stream) { return decompress(stream); }

int shardstore_bz2_decompress_end(bz_stream *stream) { return decompress_end(stream); }
