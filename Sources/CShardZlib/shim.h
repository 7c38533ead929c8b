// zlib, for the crc32 that `shardstore bench` runs over every byte it reads (the same checksum
// as the peers in ../shared/bench).
#include <zlib.h>
