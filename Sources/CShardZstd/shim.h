// zstd, for .tar.zst shards (streaming decompression, frame by frame).
#include <zstd.h>
