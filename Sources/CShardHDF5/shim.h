// libhdf5 for ShardExport. Only what Swift cannot import goes here: the H5T_*, H5P_* class and
// H5F_ACC_* macros expand to expressions (a library-open call, a cast) that the importer skips,
// so they are re-exposed as functions. Only calls that exist in 1.10 are used.
#include <hdf5.h>

#if H5_VERSION_LE(1, 10, 2)
#error "ShardStore needs libhdf5 1.10.3 or newer (Debian 12 ships 1.10.8)"
#endif

static inline hid_t shard_h5p_default(void) { return H5P_DEFAULT; }
static inline hid_t shard_h5s_all(void) { return H5S_ALL; }
static inline hid_t shard_h5e_default(void) { return H5E_DEFAULT; }
static inline unsigned shard_h5f_acc_trunc(void) { return H5F_ACC_TRUNC; }
static inline size_t shard_h5t_variable(void) { return H5T_VARIABLE; }

// Property list classes.
static inline hid_t shard_h5p_file_access(void) { return H5P_FILE_ACCESS; }
static inline hid_t shard_h5p_dataset_create(void) { return H5P_DATASET_CREATE; }
static inline hid_t shard_h5p_dataset_access(void) { return H5P_DATASET_ACCESS; }

// Stored types: little-endian integers and IEEE floats, C strings.
static inline hid_t shard_h5t_std_i8le(void) { return H5T_STD_I8LE; }
static inline hid_t shard_h5t_std_i16le(void) { return H5T_STD_I16LE; }
static inline hid_t shard_h5t_std_i32le(void) { return H5T_STD_I32LE; }
static inline hid_t shard_h5t_std_i64le(void) { return H5T_STD_I64LE; }
static inline hid_t shard_h5t_std_u8le(void) { return H5T_STD_U8LE; }
static inline hid_t shard_h5t_std_u16le(void) { return H5T_STD_U16LE; }
static inline hid_t shard_h5t_std_u32le(void) { return H5T_STD_U32LE; }
static inline hid_t shard_h5t_std_u64le(void) { return H5T_STD_U64LE; }
static inline hid_t shard_h5t_ieee_f32le(void) { return H5T_IEEE_F32LE; }
static inline hid_t shard_h5t_ieee_f64le(void) { return H5T_IEEE_F64LE; }
static inline hid_t shard_h5t_c_s1(void) { return H5T_C_S1; }

// Memory types.
static inline hid_t shard_h5t_native_int8(void) { return H5T_NATIVE_INT8; }
static inline hid_t shard_h5t_native_int64(void) { return H5T_NATIVE_INT64; }
static inline hid_t shard_h5t_native_uint8(void) { return H5T_NATIVE_UINT8; }
