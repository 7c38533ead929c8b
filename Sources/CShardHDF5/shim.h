// libhdf5 for ShardExport. Only what Swift cannot import goes here: the H5T_NATIVE_* and
// H5P_DEFAULT macros expand to expressions (a library-open call, a cast) that the importer
// skips, so they are re-exposed as functions returning hid_t.
#include <hdf5.h>

#if H5_VERSION_LE(1, 10, 2)
#error "ShardStore needs libhdf5 1.10.3 or newer (Debian 12 ships 1.10.8)"
#endif

static inline hid_t shard_h5p_default(void) { return H5P_DEFAULT; }
static inline hid_t shard_h5s_all(void) { return H5S_ALL; }
