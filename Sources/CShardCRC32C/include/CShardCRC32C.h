// CRC-32C with the CPU's crc32 instruction (x86-64 SSE4.2), for ShardCore's `CRC32C`, and
// gzip's CRC-32 with carry-less multiplication, for ShardCompression's `CRC32`.
// The portable table-driven version is in Swift (Sources/ShardCore/CRC32C.swift); this target
// only holds what Swift cannot express: the instruction, and the check whether the CPU has it.
#ifndef CSHARDCRC32C_H
#define CSHARDCRC32C_H

#include <stddef.h>
#include <stdint.h>

/// 1 when `shardstore_crc32c_hardware_update` may be called on this CPU, else 0.
int shardstore_crc32c_hardware_available(void);

/// Continues a CRC-32C register (the checksum before its final XOR: start from 0xFFFFFFFF)
/// over `count` bytes at `bytes`. Only when `shardstore_crc32c_hardware_available()` is 1.
uint32_t shardstore_crc32c_hardware_update(uint32_t crc, const void *bytes, size_t count);

/// 1 when `shardstore_crc32_clmul_update` may be called on this CPU (PCLMULQDQ and SSE4.1),
/// else 0.
int shardstore_crc32_clmul_available(void);

/// Continues a CRC-32 register (gzip's and zlib's polynomial; the checksum with its bits
/// inverted: `~crc`) over `count` bytes at `bytes`. `count` must be at least 64 and a multiple of
/// 16. Only when `shardstore_crc32_clmul_available()` is 1.
uint32_t shardstore_crc32_clmul_update(uint32_t crc, const void *bytes, size_t count);

#endif
