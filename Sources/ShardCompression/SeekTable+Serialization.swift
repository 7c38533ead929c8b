import ShardCore

// The stored form, version 2, little-endian:
//   "SSKT" · version u8 = 2 · format u8 · reserved u16 = 0 · compressed size i64 ·
//   uncompressed size i64 · point count u32 ·
//   points: compressed offset i64 · uncompressed offset i64 · then by format
//     gzip: flags u8 (1 member start, 2 window deflated, 4 window a zstd frame) · bits u8 ·
//           partial byte u8 · window length u16 (at most 32768) · stored length u16 · stored bytes
//     xz:   check u8
//     zstd: nothing
//   · CRC-32C u32 of everything before it.
// Version 1 is the same without flag 4 (its windows are deflated or raw); it is still read, so
// that indexes written before version 2 keep working. Builds that read only version 1 refuse
// version 2 by its number.
extension SeekTable {
    private static let magic: [UInt8] = Array("SSKT".utf8)
    private static let version: UInt8 = 2
    private static let headerSize = 4 + 1 + 1 + 2 + 8 + 8 + 4
    private static let maximumWindow = 32768

    /// Versioned bytes, CRC-32C protected (ShardCore's ``CRC32C``), to store in the index as a
    /// blob. They hold the shard's sizes too, so a table is refused for another shard.
    ///
    /// ```swift
    /// let blob = info.seekTable.serialized()
    /// ```
    /// - Complexity: O(size of the table).
    public func serialized() -> [UInt8] {
        var out = Self.magic
        out.append(Self.version)
        out.append(format.rawValue)
        out.append(contentsOf: [0, 0])
        out.appendLittleEndian(UInt64(bitPattern: compressedSize))
        out.appendLittleEndian(UInt64(bitPattern: uncompressedSize))
        out.appendLittleEndian(UInt32(points.count))
        for point in points {
            out.appendLittleEndian(UInt64(bitPattern: point.compressedOffset))
            out.appendLittleEndian(UInt64(bitPattern: point.uncompressedOffset))
            switch format {
            case .gzip:
                let coding: UInt8 =
                    switch point.windowCoding {
                    case .raw: 0
                    case .deflate: 2
                    case .zstd: 4
                    }
                out.append((point.isMemberStart ? 1 : 0) | coding)
                out.append(point.bits)
                out.append(point.partialByte)
                out.appendLittleEndian(UInt16(point.windowLength))
                out.appendLittleEndian(UInt16(point.storedWindow.count))
                out.append(contentsOf: point.storedWindow)
            case .xz:
                out.append(point.check)
            case .zstd, .none, .bzip2:
                break
            }
        }
        var crc = CRC32C()
        out.withUnsafeBytes { crc.update($0) }
        out.appendLittleEndian(crc.value)
        return out
    }

    /// Decodes and validates a stored table: magic and version, CRC-32C, format and sizes equal
    /// to the shard's, every offset in range and increasing, window lengths, compressed windows
    /// decompressing to their stated length. Nothing read is trusted before it is checked.
    ///
    /// ```swift
    /// let table = try blob.withUnsafeBytes {
    ///     try SeekTable(decoding: $0, format: .gzip, compressedSize: 1_234_567,
    ///                   uncompressedSize: 5_000_000, path: "shard-000001.tar.gz")
    /// }
    /// ```
    /// - Throws: ``DecompressionError`` of kind `.badSeekTable` saying what was wrong.
    /// - Complexity: O(size of the table), plus decompressing each compressed window (32 KiB each).
    public init(
        decoding bytes: UnsafeRawBufferPointer, format: CompressionFormat, compressedSize: Int64,
        uncompressedSize: Int64, path: String
    ) throws(DecompressionError) {
        func bad(_ reason: String) -> DecompressionError {
            DecompressionError(format: format, path: path, compressedOffset: 0, kind: .badSeekTable(reason))
        }
        guard bytes.count >= Self.headerSize + 4 else { throw bad("\(bytes.count) bytes, too short") }
        var crc = CRC32C()
        crc.update(UnsafeRawBufferPointer(rebasing: bytes[0..<(bytes.count - 4)]))
        var reader = LittleEndianReader(bytes)
        var trailer = LittleEndianReader(UnsafeRawBufferPointer(rebasing: bytes[(bytes.count - 4)...]))
        guard trailer.u32() == crc.value else { throw bad("CRC-32C mismatch") }
        guard reader.bytes(4).elementsEqual(Self.magic) else { throw bad("not a seek table (magic)") }
        let version = reader.u8()
        guard version == 1 || version == Self.version else {
            throw bad("version \(version), this build reads 1 to \(Self.version)")
        }
        let storedFormat = reader.u8()
        guard storedFormat == format.rawValue else {
            throw bad("format \(storedFormat), the shard's is \(format.rawValue)")
        }
        guard reader.u16() == 0 else { throw bad("reserved bytes are not zero") }
        let storedCompressed = Int64(bitPattern: reader.u64())
        let storedUncompressed = Int64(bitPattern: reader.u64())
        guard storedCompressed == compressedSize, storedUncompressed == uncompressedSize, compressedSize >= 0,
            uncompressedSize >= 0
        else {
            throw bad(
                "made for \(storedCompressed) compressed / \(storedUncompressed) uncompressed bytes, "
                    + "the shard has \(compressedSize) / \(uncompressedSize)")
        }
        let count = Int(reader.u32())
        let minimumPoint = format == .gzip ? 23 : format == .xz ? 17 : 16
        guard count <= (bytes.count - Self.headerSize - 4) / minimumPoint else {
            throw bad("\(count) points do not fit in \(bytes.count) bytes")
        }
        switch format {
        case .gzip, .zstd, .xz: break
        case .none, .bzip2: guard count == 0 else { throw bad("\(count) points for \(format.name)") }
        }
        var points: [SeekPoint] = []
        points.reserveCapacity(count)
        for i in 0..<count {
            var point = SeekPoint(
                compressedOffset: Int64(bitPattern: reader.u64()), uncompressedOffset: Int64(bitPattern: reader.u64()))
            guard point.compressedOffset >= 0, point.compressedOffset < compressedSize else {
                throw bad("point \(i): compressed offset \(point.compressedOffset) outside 0..<\(compressedSize)")
            }
            guard point.uncompressedOffset >= 0,
                point.uncompressedOffset < uncompressedSize || point.uncompressedOffset == 0
            else {
                throw bad("point \(i): uncompressed offset \(point.uncompressedOffset) outside 0..<\(uncompressedSize)")
            }
            if let previous = points.last {
                guard point.compressedOffset > previous.compressedOffset,
                    point.uncompressedOffset > previous.uncompressedOffset
                else { throw bad("point \(i): offsets do not increase") }
            }
            switch format {
            case .gzip:
                guard reader.remaining >= 7 else { throw bad("point \(i): cut short") }
                let flags = reader.u8()
                point.isMemberStart = flags & 1 != 0
                switch flags & 6 {
                case 0: point.windowCoding = .raw
                case 2: point.windowCoding = .deflate
                case 4 where version >= 2: point.windowCoding = .zstd
                default: throw bad("point \(i): bad flags \(flags)")
                }
                point.bits = reader.u8()
                point.partialByte = reader.u8()
                point.windowLength = Int(reader.u16())
                let stored = Int(reader.u16())
                guard flags & ~7 == 0, point.bits <= 7, point.bits > 0 || point.partialByte == 0 else {
                    throw bad("point \(i): bad flags or bit count")
                }
                guard point.windowLength <= Self.maximumWindow, point.windowLength <= point.uncompressedOffset,
                    stored <= reader.remaining
                else { throw bad("point \(i): window of \(point.windowLength) bytes") }
                if point.isMemberStart {
                    guard point.bits == 0, point.windowLength == 0, stored == 0, point.windowCoding == .raw else {
                        throw bad("point \(i): a member start with a window")
                    }
                } else if i == 0 || point.compressedOffset < 1 {
                    throw bad("point \(i): inside a member but first")
                }
                point.storedWindow = Array(reader.bytes(stored))
                switch point.windowCoding {
                case .raw:
                    guard stored == point.windowLength else { throw bad("point \(i): window length mismatch") }
                case .deflate:
                    guard stored < point.windowLength,
                        Zlib.uncompress(point.storedWindow, length: point.windowLength) != nil
                    else { throw bad("point \(i): the window does not inflate to \(point.windowLength) bytes") }
                case .zstd:
                    guard stored < point.windowLength,
                        WindowCompressor.decompress(point.storedWindow, length: point.windowLength) != nil
                    else {
                        throw bad("point \(i): the window does not decompress to \(point.windowLength) bytes")
                    }
                }
            case .xz:
                guard reader.remaining >= 1 else { throw bad("point \(i): cut short") }
                point.check = reader.u8()
                guard [0, 1, 4, 10].contains(point.check) else { throw bad("point \(i): check type \(point.check)") }
                guard point.compressedOffset >= 12 else { throw bad("point \(i): inside the stream header") }
            case .zstd, .none, .bzip2:
                break
            }
            points.append(point)
        }
        guard reader.remaining == 4 else { throw bad("\(reader.remaining - 4) bytes after the points") }
        if let first = points.first {
            guard first.uncompressedOffset == 0 else { throw bad("the first point is not at uncompressed byte 0") }
            if format == .gzip {
                guard first.isMemberStart, first.compressedOffset == 0 else {
                    throw bad("the first point is not the start of the file")
                }
            }
        } else if format == .gzip {
            throw bad("no points")
        }
        self.init(
            format: format, compressedSize: compressedSize, uncompressedSize: uncompressedSize, points: points)
    }
}

/// Little-endian fields read from a buffer whose length the caller has checked (reads past the
/// end return zeros and leave `remaining` at 0, so a short buffer cannot trap).
struct LittleEndianReader {
    let bytes: UnsafeRawBufferPointer
    var position = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var remaining: Int { bytes.count - position }

    mutating func u8() -> UInt8 {
        guard position < bytes.count else { return 0 }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func u16() -> UInt16 { UInt16(u8()) | UInt16(u8()) << 8 }
    mutating func u32() -> UInt32 { UInt32(u16()) | UInt32(u16()) << 16 }
    mutating func u64() -> UInt64 { UInt64(u32()) | UInt64(u32()) << 32 }

    mutating func bytes(_ count: Int) -> UnsafeRawBufferPointer.SubSequence {
        let n = min(count, remaining)
        defer { position += n }
        return bytes[position..<(position + n)]
    }
}

extension Array where Element == UInt8 {
    mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }
}
