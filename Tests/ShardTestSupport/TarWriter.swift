import Foundation
import ShardCore

/// A small tar writer for making fixture shards in tests.
///
/// Entries go in one after another in the archive format of the writer or of the entry; the
/// writer records for each one the `TarEntry` a correct scanner must report (name, kind, header
/// and data offsets, size), so tests compare offsets byte-exactly. Helpers damage the result
/// (truncate, corrupt a checksum, leave out the end marker, add garbage after it).
///
/// ```swift
/// var tar = TarWriter(format: .gnu)
/// tar.addFile("000001.jpg", [1, 2, 3])
/// tar.addFile(String(repeating: "d/", count: 80) + "x.txt", Array("long".utf8))
/// tar.finish()
/// let scanned = try scanAll(tar.bytes)   // == tar.entries
/// ```
///
/// Preconditions (a name that the chosen format cannot hold, a size too large for octal outside
/// the GNU and pax formats) trap: they are mistakes in the test.
public struct TarWriter: Sendable {
    /// Archive formats the writer produces.
    public enum Format: Sendable, CaseIterable {
        /// No magic; names of at most 100 bytes.
        case v7
        /// POSIX ustar: `"ustar\0"`, `"00"`; long names split into prefix (155) and name (100).
        case ustar
        /// star: ustar magic, `"tar\0"` at byte 508, a 131-byte prefix.
        case star
        /// GNU: `"ustar  \0"`; long names and link names as `L` / `K` entries, big sizes base-256.
        case gnu
        /// POSIX pax: ustar headers plus `x` extended headers for long names, big sizes and extra
        /// records.
        case pax
    }

    /// How the size field is written.
    public enum SizeEncoding: Sendable {
        /// Eleven octal digits and a NUL (the writer switches to base-256 or pax when needed).
        case octal
        /// GNU base-256, even for small sizes.
        case base256
    }

    /// One pax record, `"<length> <keyword>=<value>\n"`.
    public struct PaxRecord: Sendable {
        public var keyword: String
        public var value: [UInt8]

        /// A record with a text value (its UTF-8 bytes).
        public init(_ keyword: String, _ value: String) {
            self.keyword = keyword
            self.value = Array(value.utf8)
        }

        /// A record with a raw value.
        public init(_ keyword: String, bytes: [UInt8]) {
            self.keyword = keyword
            self.value = bytes
        }
    }

    /// The largest size the 12-byte field holds in octal (11 digits).
    public static let maximumOctalSize: Int64 = 0o77777777777

    /// The format of entries added without one.
    public var format: Format
    /// The archive so far.
    public private(set) var bytes: [UInt8] = []
    /// What a scanner must report for the entries added so far, in order.
    public private(set) var entries: [TarEntry] = []
    /// Pax global `path` and `size` in force for later entries (for expectations).
    private var globalPath: [UInt8]?
    private var globalSize: Int64?

    /// An empty archive whose entries default to `format`.
    public init(format: Format = .ustar) {
        self.format = format
    }

    /// The current length of the archive: the offset of the next block.
    public var count: Int { bytes.count }

    // MARK: - Entries

    /// Adds a regular file.
    @discardableResult
    public mutating func addFile(
        _ name: String, _ data: [UInt8] = [], format: Format? = nil, paxRecords: [PaxRecord] = [],
        sizeEncoding: SizeEncoding = .octal, typeflag: UInt8 = UInt8(ascii: "0")
    ) -> TarEntry {
        addFile(
            name: Array(name.utf8), data: data, format: format, paxRecords: paxRecords,
            sizeEncoding: sizeEncoding, typeflag: typeflag)
    }

    /// Adds a regular file with a name given as raw bytes.
    @discardableResult
    public mutating func addFile(
        name: [UInt8], data: [UInt8], format: Format? = nil, paxRecords: [PaxRecord] = [],
        sizeEncoding: SizeEncoding = .octal, typeflag: UInt8 = UInt8(ascii: "0")
    ) -> TarEntry {
        add(
            name: name, typeflag: typeflag, data: data, kind: .regular, format: format,
            paxRecords: paxRecords, sizeEncoding: sizeEncoding)
    }

    /// Adds a directory (typeflag `5`); a `/` is appended to the name when missing.
    @discardableResult
    public mutating func addDirectory(_ name: String, format: Format? = nil) -> TarEntry {
        var bytes = Array(name.utf8)
        if bytes.last != UInt8(ascii: "/") { bytes.append(UInt8(ascii: "/")) }
        return add(name: bytes, typeflag: UInt8(ascii: "5"), kind: .directory, format: format)
    }

    /// Adds a symbolic link (typeflag `2`).
    @discardableResult
    public mutating func addSymlink(_ name: String, target: String, format: Format? = nil)
        -> TarEntry
    {
        add(
            name: Array(name.utf8), typeflag: UInt8(ascii: "2"), linkName: Array(target.utf8),
            kind: .symlink, format: format)
    }

    /// Adds a hard link (typeflag `1`).
    @discardableResult
    public mutating func addHardLink(_ name: String, target: String, format: Format? = nil)
        -> TarEntry
    {
        add(
            name: Array(name.utf8), typeflag: UInt8(ascii: "1"), linkName: Array(target.utf8),
            kind: .hardLink, format: format)
    }

    /// Adds a fifo (typeflag `6`).
    @discardableResult
    public mutating func addFifo(_ name: String, format: Format? = nil) -> TarEntry {
        add(name: Array(name.utf8), typeflag: UInt8(ascii: "6"), kind: .fifo, format: format)
    }

    /// Adds a pax global header (`g`); its `path` and `size` apply to the expectations of all
    /// later entries (an empty value removes them), as POSIX says.
    public mutating func addGlobalHeader(_ records: [PaxRecord]) {
        appendExtendedHeader(
            typeflag: UInt8(ascii: "g"), name: Array("GlobalHead.0.0".utf8),
            data: Self.paxData(records))
        for record in records {
            switch record.keyword {
            case "path": globalPath = record.value.isEmpty ? nil : record.value
            case "size":
                globalSize =
                    record.value.isEmpty
                    ? nil : Int64(String(decoding: record.value, as: UTF8.self))
            default: break
            }
        }
    }

    /// Adds any entry: its headers in `format` (the writer's when nil), then `data`, padded.
    ///
    /// The expectation records `kind`, the name and size a scanner must report (pax `path` and
    /// `size` records in `paxRecords`, then pax globals, win over `name` and `data.count`), and
    /// size 0 for kinds that carry no data.
    @discardableResult
    public mutating func add(
        name: [UInt8], typeflag: UInt8, data: [UInt8] = [], linkName: [UInt8] = [],
        kind: TarEntry.Kind, format: Format? = nil, paxRecords: [PaxRecord] = [],
        sizeEncoding: SizeEncoding = .octal
    ) -> TarEntry {
        let format = format ?? self.format
        let size = Int64(data.count)
        let headerOffset = Int64(bytes.count)
        var records = paxRecords
        var encoding = sizeEncoding
        var headerName = name
        var prefix: [UInt8] = []
        var headerLink = linkName

        switch format {
        case .v7:
            precondition(name.count <= 100 && linkName.count <= 100, "v7 names hold 100 bytes")
            precondition(size <= Self.maximumOctalSize && encoding == .octal, "v7 sizes are octal")
        case .ustar, .star:
            (prefix, headerName) = Self.split(name, prefixLimit: format == .star ? 131 : 155)
            precondition(linkName.count <= 100, "ustar link names hold 100 bytes")
            precondition(
                size <= Self.maximumOctalSize && encoding == .octal, "ustar sizes are octal")
        case .gnu:
            if name.count > 100 {
                appendExtendedHeader(
                    typeflag: UInt8(ascii: "L"), name: Array("././@LongLink".utf8),
                    data: name + [0],
                    format: .gnu)
                headerName = Array(name.prefix(100))
            }
            if linkName.count > 100 {
                appendExtendedHeader(
                    typeflag: UInt8(ascii: "K"), name: Array("././@LongLink".utf8),
                    data: linkName + [0], format: .gnu)
                headerLink = Array(linkName.prefix(100))
            }
            if size > Self.maximumOctalSize { encoding = .base256 }
        case .pax:
            if name.count > 100, !records.contains(where: { $0.keyword == "path" }) {
                records.insert(PaxRecord("path", bytes: name), at: 0)
                headerName = Array(name.suffix(100))
            }
            if linkName.count > 100, !records.contains(where: { $0.keyword == "linkpath" }) {
                records.append(PaxRecord("linkpath", bytes: linkName))
                headerLink = Array(linkName.prefix(100))
            }
            if size > Self.maximumOctalSize, !records.contains(where: { $0.keyword == "size" }) {
                records.append(PaxRecord("size", String(size)))
            }
        }
        if !records.isEmpty {
            precondition(format == .pax, "pax records need the pax format")
            let base = name.split(separator: UInt8(ascii: "/")).last.map(Array.init) ?? []
            appendExtendedHeader(
                typeflag: UInt8(ascii: "x"),
                name: Array(
                    ("PaxHeaders/" + String(decoding: base, as: UTF8.self)).utf8.prefix(100)),
                data: Self.paxData(records))
        }

        // A pax size makes the header field irrelevant: write 0 there to prove it is ignored.
        let paxSizeWritten = records.contains(where: { $0.keyword == "size" && !$0.value.isEmpty })
        let headerSize = paxSizeWritten ? 0 : size
        bytes += Self.header(
            name: headerName, typeflag: typeflag, size: headerSize, format: format,
            linkName: headerLink, prefix: prefix, sizeEncoding: encoding)
        let dataOffset = Int64(bytes.count)
        bytes += Self.padded(data)

        var expectedName = name
        var expectedSize = size
        var paxPath: [UInt8]?
        var paxSize: Int64?
        for record in records {
            if record.keyword == "path" { paxPath = record.value.isEmpty ? nil : record.value }
            if record.keyword == "size" {
                paxSize =
                    record.value.isEmpty
                    ? nil : Int64(String(decoding: record.value, as: UTF8.self))
            }
        }
        // Name precedence: pax path > GNU long name > pax global path > the header's name.
        let usesLongName = format == .gnu && name.count > 100
        if let paxPath {
            expectedName = paxPath
        } else if let globalPath, !usesLongName,
            !records.contains(where: { $0.keyword == "path" })
        {
            expectedName = globalPath
        }
        if let paxSize {
            expectedSize = paxSize
        } else if let globalSize, !records.contains(where: { $0.keyword == "size" }) {
            expectedSize = globalSize
        }
        switch kind {
        case .hardLink, .symlink, .characterDevice, .blockDevice, .directory, .fifo:
            expectedSize = 0
        default: break
        }
        let entry = TarEntry(
            name: expectedName, kind: kind, headerOffset: headerOffset, dataOffset: dataOffset,
            size: expectedSize)
        entries.append(entry)
        return entry
    }

    /// Appends raw bytes (hand-made blocks, garbage); they add no expectation.
    public mutating func appendRaw(_ raw: [UInt8]) {
        bytes += raw
    }

    /// Records an expectation for an entry built with `appendRaw`.
    public mutating func expect(_ entry: TarEntry) {
        entries.append(entry)
    }

    // MARK: - Ending and damage

    /// Appends the end-of-archive marker (`zeroBlocks` zero blocks; 0 leaves it out), then pads
    /// with zeros to a multiple of `recordSize` (GNU tar's default is 10240).
    public mutating func finish(zeroBlocks: Int = 2, recordSize: Int = 512) {
        bytes += [UInt8](repeating: 0, count: 512 * zeroBlocks)
        let remainder = bytes.count % recordSize
        if remainder != 0 { bytes += [UInt8](repeating: 0, count: recordSize - remainder) }
    }

    /// Cuts the archive to its first `length` bytes.
    public mutating func truncate(to length: Int) {
        bytes.removeSubrange(length...)
    }

    /// Changes one byte of the header block at `offset` (in its `mtime` field) without
    /// updating the checksum.
    public mutating func corruptChecksum(ofBlockAt offset: Int) {
        bytes[offset + 140] ^= 0x01
    }

    /// Writes the archive to `path`.
    public func write(to path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    // MARK: - Building blocks

    /// A 512-byte header block with a valid checksum.
    ///
    /// - Parameters:
    ///   - prefix: the ustar/star prefix field (ignored for v7 and GNU).
    ///   - sizeEncoding: `.base256` writes `0x80` and 11 big-endian bytes.
    public static func header(
        name: [UInt8], typeflag: UInt8, size: Int64, format: Format, linkName: [UInt8] = [],
        prefix: [UInt8] = [], sizeEncoding: SizeEncoding = .octal
    ) -> [UInt8] {
        precondition(name.count <= 100 && linkName.count <= 100)
        var block = [UInt8](repeating: 0, count: 512)
        func put(_ field: [UInt8], at offset: Int) {
            block.replaceSubrange(offset..<(offset + field.count), with: field)
        }
        put(name, at: 0)
        put(octal(typeflag == UInt8(ascii: "5") ? 0o755 : 0o644, width: 8), at: 100)
        put(octal(1000, width: 8), at: 108)
        put(octal(1000, width: 8), at: 116)
        switch sizeEncoding {
        case .octal:
            precondition(size <= maximumOctalSize)
            put(octal(size, width: 12), at: 124)
        case .base256:
            block[124] = 0x80
            for index in 0..<8 {
                block[135 - index] = UInt8(truncatingIfNeeded: size >> (8 * index))
            }
        }
        put(octal(1_700_000_000, width: 12), at: 136)
        block[156] = typeflag
        put(linkName, at: 157)
        switch format {
        case .v7:
            break
        case .ustar, .star, .pax:
            put(Array("ustar\0".utf8) + Array("00".utf8), at: 257)
        case .gnu:
            put(Array("ustar  \0".utf8), at: 257)
        }
        if format != .v7 {
            put(Array("user".utf8), at: 265)
            put(Array("group".utf8), at: 297)
        }
        if format == .ustar || format == .pax || format == .star {
            put(octal(0, width: 8), at: 329)
            put(octal(0, width: 8), at: 337)
            precondition(prefix.count <= (format == .star ? 131 : 155))
            put(prefix, at: 345)
        }
        if format == .star { put(Array("tar\0".utf8), at: 508) }
        setChecksum(&block)
        return block
    }

    /// Stores the checksum of `block` (`"%06o\0 "`), the unsigned sum by default or the signed
    /// one (bytes as signed chars, as some historic tars computed it).
    public static func setChecksum(_ block: inout [UInt8], signed: Bool = false) {
        block.replaceSubrange(148..<156, with: [UInt8](repeating: 0x20, count: 8))
        let sum = block.reduce(0) { $0 + (signed ? Int(Int8(bitPattern: $1)) : Int($1)) }
        precondition(sum >= 0)
        block.replaceSubrange(148..<156, with: octal(Int64(sum), width: 7) + [0x20])
    }

    /// The data of a pax header holding `records`, each framed with its exact length.
    public static func paxData(_ records: [PaxRecord]) -> [UInt8] {
        var data: [UInt8] = []
        for record in records {
            let body = Array(" \(record.keyword)=".utf8) + record.value + [0x0a]
            var length = body.count + 1
            while String(length).utf8.count + body.count != length {
                length = String(length).utf8.count + body.count
            }
            data += Array(String(length).utf8) + body
        }
        return data
    }

    /// `data` padded with zeros to a multiple of 512 bytes.
    public static func padded(_ data: [UInt8]) -> [UInt8] {
        data + [UInt8](repeating: 0, count: (512 - data.count % 512) % 512)
    }

    /// `value` in octal, zero-filled to `width - 1` digits and a NUL.
    public static func octal(_ value: Int64, width: Int) -> [UInt8] {
        let digits = Array(String(value, radix: 8).utf8)
        precondition(digits.count <= width - 1)
        return [UInt8](repeating: UInt8(ascii: "0"), count: width - 1 - digits.count) + digits + [0]
    }

    /// Splits a name into a ustar prefix and name at a `/`, the name part as long as possible.
    public static func split(_ name: [UInt8], prefixLimit: Int) -> (prefix: [UInt8], name: [UInt8]) {
        if name.count <= 100 { return ([], name) }
        for index in name.indices where name[index] == UInt8(ascii: "/") {
            let rest = name.count - index - 1
            if index <= prefixLimit, rest <= 100, rest > 0 {
                return (Array(name[..<index]), Array(name[(index + 1)...]))
            }
        }
        preconditionFailure("name of \(name.count) bytes cannot be split for ustar")
    }

    // MARK: - Private

    private mutating func appendExtendedHeader(
        typeflag: UInt8, name: [UInt8], data: [UInt8], format: Format = .pax
    ) {
        bytes += Self.header(
            name: name, typeflag: typeflag, size: Int64(data.count), format: format)
        bytes += Self.padded(data)
    }
}
