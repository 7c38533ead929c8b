import CShardCRC32C

/// The CRC-32 of a gzip member's data (the checksum its trailer holds), as the decoder checks it
/// itself: with carry-less multiplication where the CPU has it, several times zlib 1.2.13's
/// `crc32` (which took about 9% of a `.tar.gz` ingest when zlib checked the trailers), else
/// with zlib's. The same value either way.
///
/// ```swift
/// var crc = GzipCRC.update(0, firstChunk)
/// crc = GzipCRC.update(crc, secondChunk)
/// ```
///
/// `Zlib.crc32` stays zlib's: the bench's work per member is the peers' `crc32`.
enum GzipCRC {
    /// Whether this CPU has the instructions (checked once).
    static let hasCarrylessMultiply = shardstore_crc32_clmul_available() == 1

    /// `crc` (start from 0) extended over `bytes`.
    ///
    /// - Complexity: O(bytes).
    static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        update(crc, bytes, carrylessMultiply: hasCarrylessMultiply)
    }

    /// ``update(_:_:)``, choosing the method (tests compare the two).
    static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer, carrylessMultiply: Bool) -> UInt32 {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return crc }
        var crc = crc
        var done = 0
        if carrylessMultiply, bytes.count >= 64 {
            // The folding takes 16-byte blocks, at least four; zlib does the rest.
            done = bytes.count & ~15
            crc = ~shardstore_crc32_clmul_update(~crc, base, done)
        }
        return Zlib.crc32(crc, UnsafeRawBufferPointer(rebasing: bytes[done...]))
    }
}
