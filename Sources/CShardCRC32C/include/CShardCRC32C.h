// CRC-32C with the CPU's crc32 instruction (x86-64 SSE4.2), for ShardCore's `CRC32C`.
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

#endif
