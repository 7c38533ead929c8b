// zlib: gzip shards (inflate with seek points), deflate for HDF5 chunks and stored windows, crc32
// for `shardstore bench`. inflateInit2/deflateInit are macros, so they get functions here.
#include <zlib.h>

static inline int shardstore_inflate_init2(z_streamp stream, int window_bits) {
    return inflateInit2(stream, window_bits);
}
