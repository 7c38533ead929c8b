// CRC-32C with the SSE4.2 crc32 instruction: about 5x the table-driven Swift version (measured
// in the closing note); the Swift version is the fallback on other CPUs.
#include "CShardCRC32C.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#include <string.h>

int shardstore_crc32c_hardware_available(void) {
    // Callers cache the answer (ShardCore keeps it in a `static let`).
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") ? 1 : 0;
}

__attribute__((target("sse4.2")))
uint32_t shardstore_crc32c_hardware_update(uint32_t crc, const void *bytes, size_t count) {
    const unsigned char *p = bytes;
    uint64_t c = crc;
    while (count > 0 && ((uintptr_t)p & 7) != 0) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        count--;
    }
    while (count >= 32) {
        uint64_t w[4];
        memcpy(w, p, sizeof w);
        c = _mm_crc32_u64(c, w[0]);
        c = _mm_crc32_u64(c, w[1]);
        c = _mm_crc32_u64(c, w[2]);
        c = _mm_crc32_u64(c, w[3]);
        p += 32;
        count -= 32;
    }
    while (count >= 8) {
        uint64_t w;
        memcpy(&w, p, sizeof w);
        c = _mm_crc32_u64(c, w);
        p += 8;
        count -= 8;
    }
    while (count > 0) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        count--;
    }
    return (uint32_t)c;
}

#else

int shardstore_crc32c_hardware_available(void) { return 0; }

uint32_t shardstore_crc32c_hardware_update(uint32_t crc, const void *bytes, size_t count) {
    (void)bytes;
    (void)count;
    return crc;
}

#endif
