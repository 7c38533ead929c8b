// libbz2, for .tar.bz2 shards (read whole: bzip2 has no seek points). Debian ships no .pc file.
#include <bzlib.h>
