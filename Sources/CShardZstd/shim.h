// zstd, for .tar.zst shards (streaming decompression, frame by frame; a forward pass decodes
// blocks in place with the buffer-less API, which zstd.h declares under ZSTD_STATIC_LINKING_ONLY:
// Debian's libzstd.so and libzstd.a export it).
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
