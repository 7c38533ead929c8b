// liblzma, for .tar.xz shards (streams, blocks, the file's index).
#include <lzma.h>
