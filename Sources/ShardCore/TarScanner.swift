/// Walks the headers of a tar archive and reports its entries, never reading member data.
///
/// The scanner understands POSIX ustar (with the `prefix` field), pax extended and global
/// headers (`path`, `size`, `GNU.sparse.*`), GNU long names and long link names (`L`, `K`),
/// GNU base-256 sizes, GNU old sparse files (`S`, with extension blocks), star's shorter prefix
/// and v7 headers. It reads one 512-byte block per header, plus the data of pax and long-name
/// headers, which is header information; member data is skipped by offset.
///
/// ```swift
/// var scanner = TarScanner(InMemoryBytes(bytes))
/// while let entry = try scanner.next() {
///     if entry.kind == .regular { print(entry.name, entry.dataOffset, entry.size) }
/// }
/// ```
///
/// The archive ends at the first all-zero block (whatever follows it is ignored), at the end of
/// the file on a header boundary, or at the end of the file inside the last member's padding.
/// Once `next()` has thrown, it throws the same error again; once it has returned nil, it keeps
/// returning nil.
///
/// - Complexity: each `next()` is O(1) reads of 512 bytes (plus the extended-header data it
///   skips over), and allocates only the entry's name.
public struct TarScanner<Source: RandomAccessBytes> {
    private enum State {
        case scanning
        case finished
        case failed(TarError)
    }

    /// The bytes being scanned.
    public let source: Source
    /// The source's size when the scanner was made; truncation is judged against it.
    public let fileSize: Int64
    /// The offset of the next header block to read; after the end, the offset of the
    /// end-of-archive block (or the file size when the archive has none).
    public private(set) var offset: Int64 = 0
    /// What the scan has read so far.
    public private(set) var statistics = TarScanStatistics()

    private var state = State.scanning
    /// The reused buffer for one header block.
    private var block: [UInt8]
    /// The reused buffer for pax and GNU long-name data.
    private var extendedData: [UInt8] = []
    /// Records of the pax global headers seen so far (`g`).
    private var globals = PaxHeader()

    /// The largest pax or GNU long-name data the scanner reads (64 MiB); anything larger is
    /// reported as malformed rather than allocated.
    public static var maximumExtendedHeaderSize: Int64 { 64 << 20 }

    /// Makes a scanner positioned at the start of `source`.
    ///
    /// - Complexity: O(1); one 512-byte allocation.
    public init(_ source: Source) {
        self.source = source
        self.fileSize = source.byteCount
        self.block = [UInt8](repeating: 0, count: TarHeader.blockSize)
    }

    /// Next entry, or nil at the end of the archive.
    ///
    /// Pax and GNU long-name headers are folded into the entry they describe: the name is pax
    /// `path`, else the GNU long name, else the pax global `path`, else the header's own
    /// `prefix/name`; the size is pax `size` (extended, then global) else the header's size field.
    /// Entries that carry no data (links, devices, directories, fifos) report size 0.
    ///
    /// ```swift
    /// var scanner = TarScanner(source)
    /// var members: [TarEntry] = []
    /// while let entry = try scanner.next() {
    ///     if entry.kind == .regular { members.append(entry) }
    /// }
    /// ```
    ///
    /// - Throws: `TarError`, with the offset of the block or entry at fault:
    ///   `.empty`, `.compressed` and `.notATar` for a first block that is no tar header;
    ///   `.badChecksum`, `.badNumericField`, `.badPaxRecord` for a damaged header;
    ///   `.truncatedHeader` when the file ends inside a header block, inside pax or long-name
    ///   data, or right after a header that announces another; `.truncatedMember` (at the entry's
    ///   `headerOffset`) when the file ends before the entry's data does; `.io` when a read fails.
    /// - Complexity: O(1) block reads plus O(n) in the entry's extended-header bytes.
    public mutating func next() throws(TarError) -> TarEntry? {
        switch state {
        case .finished: return nil
        case .failed(let error): throw error
        case .scanning: break
        }
        do {
            guard let entry = try scanEntry() else {
                state = .finished
                return nil
            }
            statistics.entries += 1
            return entry
        } catch {
            state = .failed(error)
            throw error
        }
    }

    // MARK: - One entry

    /// What the headers before an entry's own header said about it.
    private struct Pending {
        /// The offset of the first pax or GNU long-name block, or nil.
        var firstOffset: Int64?
        var longName: [UInt8]?
        var pax = PaxHeader()
    }

    private mutating func scanEntry() throws(TarError) -> TarEntry? {
        var pending = Pending()
        while true {
            let headerOffset = offset
            let count = try readBlock(at: headerOffset)
            if count < TarHeader.blockSize {
                if headerOffset == 0 { try rejectFirstBlock(count: count) }
                if count == 0, pending.firstOffset == nil {
                    // The end of the file on a block boundary, or inside the last member's padding.
                    offset = min(headerOffset, fileSize)
                    return nil
                }
                throw TarError(.truncatedHeader(fileSize: fileSize), at: headerOffset)
            }
            statistics.headerBlocks += 1

            let header = block.withUnsafeBytes { TarHeader.checksum(of: $0) }
            if header.isZeroBlock { return nil }
            try verifyChecksum(header, at: headerOffset)

            let typeflag = block[TarHeader.Field.typeflag]
            switch typeflag {
            case UInt8(ascii: "x"), UInt8(ascii: "X"), UInt8(ascii: "g"), UInt8(ascii: "L"),
                UInt8(ascii: "K"):
                if typeflag != UInt8(ascii: "g"), pending.firstOffset == nil {
                    pending.firstOffset = headerOffset
                }
                try readExtendedHeader(typeflag, at: headerOffset, into: &pending)
            default:
                return try finishEntry(
                    typeflag: typeflag, headerOffset: headerOffset, pending: pending)
            }
        }
    }

    /// Decodes the entry whose own header is in `block`, skips its data and returns it.
    private mutating func finishEntry(typeflag: UInt8, headerOffset: Int64, pending: Pending)
        throws(TarError) -> TarEntry
    {
        let entryOffset = pending.firstOffset ?? headerOffset
        let isGNUSparse = typeflag == UInt8(ascii: "S")

        let name: [UInt8]
        if case .set(let path) = pending.pax.path {
            name = path
        } else if let longName = pending.longName {
            name = longName
        } else if case .unset = pending.pax.path, case .set(let path) = globals.path {
            name = path
        } else {
            name = block.withUnsafeBytes {
                TarHeader.name(in: $0, format: TarHeader.format(of: $0), usesPrefix: !isGNUSparse)
            }
        }

        let size: Int64
        switch pending.pax.size {
        case .set(let paxSize): size = paxSize
        case .cleared: size = try headerSize(at: headerOffset)
        case .unset:
            if case .set(let globalSize) = globals.size {
                size = globalSize
            } else {
                size = try headerSize(at: headerOffset)
            }
        }

        var kind = Self.kind(typeflag: typeflag, name: name)
        if kind == .regular, pending.pax.isSparse { kind = .sparse }

        var dataOffset = headerOffset + Int64(TarHeader.blockSize)
        if isGNUSparse, block[TarHeader.Field.gnuIsExtended] != 0 {
            dataOffset = try skipSparseExtensions(from: dataOffset)
        }

        let dataSize: Int64
        switch kind {
        case .hardLink, .symlink, .characterDevice, .blockDevice, .directory, .fifo: dataSize = 0
        case .regular, .sparse, .volumeLabel, .other: dataSize = size
        }
        let (dataEnd, overflow) = dataOffset.addingReportingOverflow(dataSize)
        guard !overflow, dataEnd <= Int64.max - 511 else {
            throw TarError(.badNumericField(field: "size"), at: headerOffset)
        }
        guard dataEnd <= fileSize else {
            throw TarError(.truncatedMember(needed: dataEnd, fileSize: fileSize), at: entryOffset)
        }
        offset = Self.roundedUp(dataEnd)
        return TarEntry(
            name: name, kind: kind, headerOffset: entryOffset, dataOffset: dataOffset,
            size: dataSize)
    }

    /// The entry kind for a typeflag; `0` and NUL with a name ending in `/` are directories.
    private static func kind(typeflag: UInt8, name: [UInt8]) -> TarEntry.Kind {
        switch typeflag {
        case UInt8(ascii: "0"), 0: return name.last == UInt8(ascii: "/") ? .directory : .regular
        case UInt8(ascii: "7"): return .regular
        case UInt8(ascii: "1"): return .hardLink
        case UInt8(ascii: "2"): return .symlink
        case UInt8(ascii: "3"): return .characterDevice
        case UInt8(ascii: "4"): return .blockDevice
        case UInt8(ascii: "5"): return .directory
        case UInt8(ascii: "6"): return .fifo
        case UInt8(ascii: "S"): return .sparse
        case UInt8(ascii: "V"): return .volumeLabel
        default: return .other(typeflag)
        }
    }

    // MARK: - Extended headers

    /// Reads the data of a pax (`x`, `X`, `g`) or GNU long-name (`L`) header in `block` into
    /// `pending` (or the globals), skips a long link name (`K`) unread, and moves past it.
    private mutating func readExtendedHeader(
        _ typeflag: UInt8, at headerOffset: Int64, into pending: inout Pending
    ) throws(TarError) {
        let size = try headerSize(at: headerOffset)
        let dataOffset = headerOffset + Int64(TarHeader.blockSize)
        guard size <= fileSize - dataOffset else {
            throw TarError(.truncatedHeader(fileSize: fileSize), at: headerOffset)
        }
        offset = Self.roundedUp(dataOffset + size)
        if typeflag == UInt8(ascii: "K") { return }
        guard size <= Self.maximumExtendedHeaderSize else {
            let limit = Self.maximumExtendedHeaderSize >> 20
            let kind: TarError.Kind =
                typeflag == UInt8(ascii: "L")
                ? .longNameTooLong(size: size, limit: Self.maximumExtendedHeaderSize)
                : .badPaxRecord(
                    "its \(size) bytes of records exceed the \(limit) MiB this reader accepts")
            throw TarError(kind, at: headerOffset)
        }

        let count = Int(size)
        if extendedData.count < count {
            extendedData = [UInt8](repeating: 0, count: max(count, 2 * extendedData.count))
        }
        let read: Int
        do {
            read = try extendedData.withUnsafeMutableBytes { [source] buffer in
                try source.read(
                    into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count]), at: dataOffset
                )
            }
        } catch {
            throw TarError(.io(String(describing: error)), at: dataOffset)
        }
        guard read == count else {
            throw TarError(.truncatedHeader(fileSize: fileSize), at: headerOffset)
        }
        statistics.extendedHeaderBytes += size

        if typeflag == UInt8(ascii: "L") {
            pending.longName = extendedData.withUnsafeBytes { data in
                let length = TarHeader.stringLength(in: data, 0..<count)
                return [UInt8](UnsafeRawBufferPointer(rebasing: data[0..<length]))
            }
            return
        }
        var records = PaxHeader()
        let failure = extendedData.withUnsafeBytes { data -> PaxRecordError? in
            do throws(PaxRecordError) {
                try records.parse(UnsafeRawBufferPointer(rebasing: data[0..<count]))
                return nil
            } catch {
                return error
            }
        }
        if let failure { throw TarError(.badPaxRecord(failure.detail), at: headerOffset) }
        if typeflag == UInt8(ascii: "g") {
            // A global record with an empty value removes the global.
            switch records.path {
            case .unset: break
            case .cleared: globals.path = .unset
            case .set: globals.path = records.path
            }
            switch records.size {
            case .unset: break
            case .cleared: globals.size = .unset
            case .set: globals.size = records.size
            }
        } else {
            pending.pax.merge(records)
        }
    }

    /// Skips the extension blocks of a GNU old sparse header and returns the offset after them.
    private mutating func skipSparseExtensions(from start: Int64) throws(TarError) -> Int64 {
        var position = start
        while true {
            guard try readBlock(at: position) == TarHeader.blockSize else {
                throw TarError(.truncatedHeader(fileSize: fileSize), at: position)
            }
            statistics.headerBlocks += 1
            position += Int64(TarHeader.blockSize)
            if block[TarHeader.Field.gnuExtensionIsExtended] == 0 { return position }
        }
    }

    // MARK: - Blocks and fields

    /// Reads up to one block at `position` into `block`; returns the bytes read.
    private mutating func readBlock(at position: Int64) throws(TarError) -> Int {
        guard position < fileSize else { return 0 }
        do {
            return try block.withUnsafeMutableBytes { [source] buffer in
                try source.read(into: buffer, at: position)
            }
        } catch {
            throw TarError(.io(String(describing: error)), at: position)
        }
    }

    /// Throws the error for a first block of `count` (< 512) bytes: `.empty`, `.compressed`,
    /// `.truncatedHeader` when it carries ustar magic, else `.notATar`.
    private func rejectFirstBlock(count: Int) throws(TarError) {
        if count == 0 { throw TarError(.empty, at: 0) }
        let (compression, hasMagic) = block.withUnsafeBytes { bytes in
            let prefix = UnsafeRawBufferPointer(rebasing: bytes[0..<count])
            return (TarHeader.compression(ofPrefix: prefix), TarHeader.hasUstarMagic(prefix))
        }
        if let compression { throw TarError(.compressed(compression), at: 0) }
        if hasMagic { throw TarError(.truncatedHeader(fileSize: fileSize), at: 0) }
        throw TarError(.notATar, at: 0)
    }

    /// Checks the block's stored checksum against both computed sums. At offset 0 a block that
    /// fails without ustar magic is `.notATar` (or `.compressed`).
    private func verifyChecksum(_ checksum: TarHeader.Checksum, at position: Int64) throws(TarError) {
        let stored = block.withUnsafeBytes { TarHeader.number(in: $0, TarHeader.Field.checksum) }
        if case .value(let value) = stored, value == checksum.unsigned || value == checksum.signed {
            return
        }
        if position == 0 {
            let (compression, hasMagic) = block.withUnsafeBytes {
                (TarHeader.compression(ofPrefix: $0), TarHeader.hasUstarMagic($0))
            }
            if let compression { throw TarError(.compressed(compression), at: 0) }
            if !hasMagic { throw TarError(.notATar, at: 0) }
        }
        guard case .value(let value) = stored else {
            throw TarError(.badNumericField(field: "checksum"), at: position)
        }
        throw TarError(.badChecksum(stored: value, computed: checksum.unsigned), at: position)
    }

    /// The size field of the header in `block`.
    private func headerSize(at position: Int64) throws(TarError) -> Int64 {
        switch block.withUnsafeBytes({ TarHeader.number(in: $0, TarHeader.Field.size) }) {
        case .value(let size): return size
        case .negative, .invalid: throw TarError(.badNumericField(field: "size"), at: position)
        }
    }

    /// `position` rounded up to a block boundary (saturating at the largest block boundary).
    private static func roundedUp(_ position: Int64) -> Int64 {
        position > Int64.max - 511 ? Int64.max & ~511 : (position + 511) & ~511
    }
}

extension TarScanner: Sendable where Source: Sendable {}

/// Counts of what a `TarScanner` has read, for progress and benchmark reports.
///
/// ```swift
/// while try scanner.next() != nil {}
/// print(scanner.statistics.headerBlocks)
/// ```
public struct TarScanStatistics: Sendable, Equatable {
    /// Entries returned by `next()`.
    public var entries = 0
    /// 512-byte header blocks read: ustar headers, pax and long-name headers, sparse extension
    /// blocks and the end-of-archive block.
    public var headerBlocks = 0
    /// Bytes of pax and GNU long-name data read.
    public var extendedHeaderBytes: Int64 = 0

    /// All counts zero.
    public init() {}
}
