import CShardZlib

/// zlib's checksums and one-shot deflate, for the HDF5 export's deflate filter and the CLI's
/// checksums. (ShardCompression is the one module that imports the C library.)
public enum Zlib {
    /// `crc` extended over `bytes` (zlib's `crc32`; start from 0).
    ///
    /// ```swift
    /// let crc = Zlib.crc32(0, bytes)
    /// ```
    /// - Complexity: O(bytes).
    public static func crc32(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc = uLong(crc)
        var rest = bytes
        while !rest.isEmpty {
            let n = min(rest.count, Int(UInt32.max))
            crc = CShardZlib.crc32(crc, rest.baseAddress!.assumingMemoryBound(to: Bytef.self), uInt(n))
            rest = UnsafeRawBufferPointer(rebasing: rest[n...])
        }
        return UInt32(crc)
    }

    /// The crc32 of two byte runs one after the other, from their crcs and the second's length
    /// (zlib's `crc32_combine`).
    ///
    /// - Complexity: O(log length2).
    public static func crc32Combine(_ crc1: UInt32, _ crc2: UInt32, length2: Int64) -> UInt32 {
        UInt32(crc32_combine(uLong(crc1), uLong(crc2), Int(length2)))
    }

    /// `source` compressed as a zlib stream at `level` (1–9), as HDF5's deflate filter writes a
    /// chunk (`compress2`).
    ///
    /// ```swift
    /// let chunk = Zlib.compress(plain, level: 6)
    /// ```
    /// - Complexity: O(source).
    package static func compress(_ source: UnsafeRawBufferPointer, level: Int) -> [UInt8] {
        var length = compressBound(uLong(source.count))
        var out = [UInt8](repeating: 0, count: Int(length))
        let status = out.withUnsafeMutableBufferPointer { dest in
            compress2(
                dest.baseAddress!, &length, source.baseAddress!.assumingMemoryBound(to: Bytef.self),
                uLong(source.count), Int32(level))
        }
        precondition(status == Z_OK, "compress2 into a compressBound buffer cannot fail (status \(status))")
        out.removeSubrange(Int(length)...)
        return out
    }
}

extension Zlib {
    /// The zlib stream `source` inflated, when it inflates to exactly `length` bytes; else nil
    /// (`uncompress`).
    ///
    /// - Complexity: O(length).
    static func uncompress(_ source: [UInt8], length: Int) -> [UInt8]? {
        guard length >= 0 else { return nil }
        guard !source.isEmpty else { return nil }
        var outLength = uLong(length + 1)
        var inLength = uLong(source.count)
        var out = [UInt8](repeating: 0, count: length + 1)
        let status = out.withUnsafeMutableBufferPointer { dest in
            source.withUnsafeBufferPointer { src in
                uncompress2(dest.baseAddress!, &outLength, src.baseAddress, &inLength)
            }
        }
        // The one spare byte makes a longer stream show instead of fitting; every source byte
        // must belong to the stream.
        guard status == Z_OK, outLength == uLong(length), inLength == uLong(source.count) else { return nil }
        out.removeLast()
        return out
    }
}
