import CShardHDF5
import ShardCore

#if canImport(Glibc)
    import Glibc
#endif

/// Writes one dataset of the export row by row, in blocks: rows are staged in memory and written
/// with one `H5Dwrite` a block. Rows come in increasing order; a row that is skipped gets the
/// dataset's fill (``stageMissing(at:)``), and with `trackPresence` the `/<ext>_present` dataset
/// records which rows had a member.
///
/// Subclasses stage rows (``stage(_:at:)``, ``stageMissing(at:)``), write them
/// (``write(rows:)``), and say when their staging is full (``isFull``).
class HDF5ColumnWriter {
    /// The extension's dataset.
    let dataset: HDF5Dataset
    /// The rows of the export.
    let count: Int
    /// Rows a block (a multiple of the chunk rows, so that chunks are written whole).
    let blockRows: Int
    private(set) var blockStart = 0
    /// Rows staged in the current block.
    private(set) var staged = 0
    /// 1 for each row that had a member, when some row lacks one.
    private var presence: [UInt8]?
    private let presenceName: String?
    private let file: HDF5File
    private let compression: HDF5Compression

    init(
        dataset: HDF5Dataset, file: HDF5File, count: Int, blockRows: Int, presenceName: String?,
        compression: HDF5Compression
    ) {
        self.dataset = dataset
        self.file = file
        self.compression = compression
        self.count = count
        self.blockRows = max(1, blockRows)
        self.presenceName = presenceName
        presence = presenceName == nil ? nil : [UInt8](repeating: 0, count: count)
    }

    /// Adds the member of row `row` (after filling the rows skipped since the last one).
    final func add(row: Int, _ bytes: UnsafeRawBufferPointer) throws {
        try fill(upTo: row)
        try stage(bytes, at: staged)
        presence?[row] = 1
        staged += 1
        if staged == blockRows || isFull { try flush() }
    }

    /// Fills the rows up to (not including) `row`.
    final func fill(upTo row: Int) throws {
        while blockStart + staged < row {
            stageMissing(at: staged)
            staged += 1
            if staged == blockRows || isFull { try flush() }
        }
    }

    /// Fills the remaining rows, writes the last block and the presence dataset, and closes.
    final func finish() throws {
        try fill(upTo: count)
        try flush()
        if let presence, let presenceName {
            let dataset = try file.createDataset(
                presenceName, type: try HDF5Type.bool(path: file.path + "/" + presenceName), dims: [count],
                storage: .chunked(rows: count, rowBytes: 1, compression: compression, numeric: false))
            try presence.withUnsafeBytes { try dataset.write(rows: 0..<count, from: $0.baseAddress!) }
            try dataset.close()
        }
        try close()
    }

    private final func flush() throws {
        guard staged > 0 else { return }
        try write(rows: blockStart..<(blockStart + staged))
        blockStart += staged
        staged = 0
    }

    // MARK: For subclasses

    /// Stages `bytes` as staged row `index` of the block.
    func stage(_ bytes: UnsafeRawBufferPointer, at index: Int) throws { fatalError("abstract") }
    /// Stages the fill as staged row `index`.
    func stageMissing(at index: Int) { fatalError("abstract") }
    /// Writes the staged rows, which are `rows` of the dataset, and empties the staging.
    func write(rows: Range<Int>) throws { fatalError("abstract") }
    /// Whether the staging holds enough bytes to be written before the block is complete.
    var isFull: Bool { false }
    /// Closes the dataset(s).
    func close() throws { try dataset.close() }
}

/// A growing byte buffer for staged variable-length rows, with each row's offset and length.
struct ByteStaging: ~Copyable {
    private(set) var base: UnsafeMutableRawPointer
    private var capacity: Int
    private(set) var used = 0
    private(set) var offsets: [Int] = []
    private(set) var lengths: [Int] = []

    init(capacity: Int = 1 << 20) {
        self.capacity = max(capacity, 16)
        base = .allocate(byteCount: self.capacity, alignment: 16)
    }

    deinit { base.deallocate() }

    /// Appends a row of `bytes`, with a NUL after it when `terminate` (the NUL is not counted in
    /// the row's length).
    mutating func append(_ bytes: UnsafeRawBufferPointer, terminate: Bool = false) {
        let needed = used + bytes.count + (terminate ? 1 : 0)
        if needed > capacity { grow(to: needed) }
        if let from = bytes.baseAddress, !bytes.isEmpty { (base + used).copyMemory(from: from, byteCount: bytes.count) }
        offsets.append(used)
        lengths.append(bytes.count)
        used += bytes.count
        if terminate {
            base.storeBytes(of: 0, toByteOffset: used, as: UInt8.self)
            used += 1
        }
    }

    /// Appends a row of `byteCount` bytes written by `body` (given the row's first byte).
    mutating func append(byteCount: Int, _ body: (UnsafeMutableRawPointer) throws -> Void) rethrows {
        if used + byteCount > capacity { grow(to: used + byteCount) }
        try body(base + used)
        offsets.append(used)
        lengths.append(byteCount)
        used += byteCount
    }

    /// The number of rows.
    var count: Int { offsets.count }

    /// Row `i`'s bytes (valid until the next append).
    subscript(i: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + offsets[i], count: lengths[i])
    }

    /// Forgets the rows, keeping the memory.
    mutating func removeAll() {
        used = 0
        offsets.removeAll(keepingCapacity: true)
        lengths.removeAll(keepingCapacity: true)
    }

    /// `hvl_t` for each row, of elements of `elementSize` bytes (pointers into the buffer, valid
    /// until the next append).
    func sequences(elementSize: Int = 1) -> [hvl_t] {
        (0..<offsets.count).map {
            hvl_t(len: lengths[$0] / elementSize, p: lengths[$0] == 0 ? nil : base + offsets[$0])
        }
    }

    /// A `char *` for each row (the rows must have been appended with `terminate`).
    func cStrings() -> [UnsafePointer<CChar>?] {
        offsets.map { UnsafePointer((base + $0).assumingMemoryBound(to: CChar.self)) }
    }

    private mutating func grow(to needed: Int) {
        var size = capacity
        while size < needed { size *= 2 }
        let bigger = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        bigger.copyMemory(from: base, byteCount: used)
        base.deallocate()
        base = bigger
        capacity = size
    }
}

/// Copies of the keys and members the first pass of an export read, kept for the second pass so
/// that it need not read the shards again. Used when the selection fits ``budget(for:)``.
final class MemberStaging {
    /// Every row's key, in row order.
    var keys = ByteStaging()
    /// Each extension's members and their rows, in row order.
    var columns: [String: StagedColumn] = [:]

    /// The selection's member bytes (plus some bytes a row) when they fit in a quarter of the
    /// available memory and in 1 GiB (256 MiB when the available memory is unknown); nil when
    /// they do not, and the second pass reads the shards again.
    static func budget(for selection: HDF5Selection, limit: Int64? = nil) -> Int64? {
        let available = selection.datasets[0].memory.available
        let limit = limit ?? min(Int64(1) << 30, available.map { $0 / 4 } ?? (Int64(256) << 20))
        let needed = selection.datasets.reduce(Int64(selection.count) * 64) { $0 + $1.selectionBytes }
        return needed <= limit ? needed : nil
    }
}

/// One extension's staged members.
final class StagedColumn {
    var bytes = ByteStaging(capacity: 1 << 16)
    var rows: [Int] = []
}
