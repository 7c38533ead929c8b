import CShardHDF5
import Dispatch
import ShardCompression
import ShardCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A member whose second read does not match its first (the shard changed during the export),
/// or that the chosen storage cannot hold.
struct MemberMismatch: Error {
    var reason: String
}

/// Staged bytes of a block of fixed-size rows.
private let arrayBlockBytes = 8 << 20
/// Staged bytes after which a block of variable-length rows is written early.
private let variableBlockBytes = 16 << 20
/// The stored size of one variable-length element (a global heap id), for chunk sizes.
private let variableRowBytes = 16

extension HDF5ColumnWriter {
    /// The writer for an extension stored as `kind` in dataset `name`.
    static func make(
        _ kind: ColumnKind, name: String, file: HDF5File, count: Int, compression: HDF5Compression,
        presenceName: String?
    ) throws -> HDF5ColumnWriter {
        switch kind {
        case .array(let dtype, let shape):
            return try ArrayColumnWriter(
                name: name, dtype: dtype, shape: shape, file: file, count: count, compression: compression,
                presenceName: presenceName)
        case .raggedArray(let dtype):
            return try RaggedArrayColumnWriter(
                name: name, dtype: dtype, file: file, count: count, compression: compression,
                presenceName: presenceName)
        case .integer:
            return try IntegerColumnWriter(
                name: name, file: file, count: count, compression: compression, presenceName: presenceName)
        case .text:
            return try TextColumnWriter(
                name: name, file: file, count: count, compression: compression, presenceName: presenceName)
        case .bytes, .npyBytes:
            return try BytesColumnWriter(
                name: name, file: file, count: count, compression: compression, presenceName: presenceName)
        }
    }
}

extension HDF5ColumnWriter {
    /// Creates the variable-length dataset `name` of `type`: chunks of 65,536 rows (a row is
    /// stored as a 16-byte heap id; the data itself lies in the file's global heap, which HDF5
    /// does not compress), and one chunk a block.
    static func variableLength(
        _ name: String, type: HDF5Type, file: HDF5File, count: Int, compression: HDF5Compression
    ) throws -> (dataset: HDF5Dataset, blockRows: Int) {
        let storage = HDF5Storage.chunked(
            rows: count, rowBytes: variableRowBytes, compression: compression, numeric: false)
        return (try file.createDataset(name, type: type, dims: [count], storage: storage), storage.chunkRows ?? 1)
    }
}

/// `.npy` members of one dtype and shape: rows of an N+1-dimensional dataset, converted to C order
/// and little-endian; a missing member is all zeros (`False` for bool).
final class ArrayColumnWriter: HDF5ColumnWriter {
    let dtype: NPYDType
    let shape: [Int]
    let rowBytes: Int
    /// Chunks and filters; with gzip the chunks are shuffled and deflated here, on every core,
    /// and written with `H5Dwrite_chunk` (libhdf5 would filter them one at a time).
    private let storage: HDF5Storage
    private let buffer: UnsafeMutableRawPointer
    private var headers = NPYHeaderCache()

    init(
        name: String, dtype: NPYDType, shape: [Int], file: HDF5File, count: Int, compression: HDF5Compression,
        presenceName: String?
    ) throws {
        self.dtype = dtype
        self.shape = shape
        rowBytes = shape.reduce(1, *) * dtype.size
        // Chunks of 256 KiB when deflated, so that even a few MB of arrays compress on every core.
        let storage = HDF5Storage.chunked(
            rows: count, rowBytes: rowBytes, compression: compression, numeric: true,
            target: compression == .none ? 1 << 20 : 1 << 16)
        self.storage = storage
        let dataset = try file.createDataset(
            name, type: try HDF5Type.element(dtype, path: file.path + "/" + name), dims: [count] + shape,
            storage: storage)
        let chunk = storage.chunkRows ?? max(count, 1)
        let blockRows = min(max(count, 1), chunk * max(1, arrayBlockBytes / max(1, chunk * rowBytes)))
        buffer = .allocate(byteCount: max(1, blockRows * rowBytes), alignment: 16)
        super.init(
            dataset: dataset, file: file, count: count, blockRows: blockRows, presenceName: presenceName,
            compression: compression)
    }

    deinit { buffer.deallocate() }

    override func stage(_ bytes: UnsafeRawBufferPointer, at index: Int) throws {
        let header = try headers.parse(bytes)
        guard header.dtype.littleEndian == dtype, header.shape == shape else {
            throw MemberMismatch(
                reason:
                    "it now holds \(header.dtype.name) \(NPYHeader.shapeText(header.shape)), not \(dtype.name) \(NPYHeader.shapeText(shape)) as when the export began; was the shard changed during the export? Run it again"
            )
        }
        header.copyElements(of: bytes, to: buffer + index * rowBytes)
    }

    override func stageMissing(at index: Int) {
        (buffer + index * rowBytes).initializeMemory(as: UInt8.self, repeating: 0, count: rowBytes)
    }

    override func write(rows: Range<Int>) throws {
        guard rowBytes > 0 else { return }
        guard let level = storage.deflate, let chunkRows = storage.chunkRows else {
            try dataset.write(rows: rows, from: buffer)
            return
        }
        // Blocks are whole chunks (but the last), so each chunk starts at a multiple of chunkRows.
        precondition(rows.lowerBound % chunkRows == 0, "a block of rows must start at a chunk boundary")
        let starts = Array(stride(from: rows.lowerBound, to: rows.upperBound, by: chunkRows))
        let chunks = Mutex([[UInt8]](repeating: [], count: starts.count))
        let (rowBytes, elementSize, shuffle) = (rowBytes, dtype.size, storage.shuffle)
        // The workers only read the staged rows, which nothing writes until they are done.
        let staged = UncheckedPointer(base: UnsafeRawPointer(buffer))
        DispatchQueue.concurrentPerform(iterations: starts.count) { c in
            let rowCount = min(chunkRows, rows.upperBound - starts[c])
            let source = UnsafeRawBufferPointer(
                start: staged.base + (starts[c] - rows.lowerBound) * rowBytes, count: rowCount * rowBytes)
            let chunk = ChunkFilter.filter(
                source, chunkBytes: chunkRows * rowBytes, elementSize: shuffle ? elementSize : 1, level: level)
            chunks.withLock { $0[c] = chunk }
        }
        let filtered = chunks.withLock { $0 }
        for (c, start) in starts.enumerated() { try dataset.writeChunk(row: start, filtered[c]) }
    }

}

/// `.npy` members of one dtype and different shapes: each row a variable-length sequence of the
/// elements in C order (little-endian), and `/<ext>_shape` a variable-length int64 sequence of
/// the shape. A missing member is an empty sequence and an empty shape.
final class RaggedArrayColumnWriter: HDF5ColumnWriter {
    let shapes: HDF5Dataset
    let dtype: NPYDType
    private var elements = ByteStaging()
    private var shapeValues = ByteStaging(capacity: 1 << 16)
    private var headers = NPYHeaderCache()

    init(
        name: String, dtype: NPYDType, file: HDF5File, count: Int, compression: HDF5Compression,
        presenceName: String?
    ) throws {
        self.dtype = dtype
        let element = try HDF5Type.element(dtype, path: file.path + "/" + name)
        let (dataset, blockRows) = try Self.variableLength(
            name, type: try HDF5Type.sequence(of: element, path: file.path + "/" + name), file: file, count: count,
            compression: compression)
        shapes = try Self.variableLength(
            name + "_shape", type: try HDF5Type.sequence(of: .int64, path: file.path + "/" + name + "_shape"),
            file: file, count: count, compression: compression
        ).dataset
        super.init(
            dataset: dataset, file: file, count: count, blockRows: blockRows, presenceName: presenceName,
            compression: compression)
    }

    override func stage(_ bytes: UnsafeRawBufferPointer, at index: Int) throws {
        let header = try headers.parse(bytes)
        guard header.dtype.littleEndian == dtype else {
            throw MemberMismatch(
                reason:
                    "it now holds \(header.dtype.name), not \(dtype.name) as when the export began; was the shard changed during the export? Run it again"
            )
        }
        elements.append(byteCount: header.dataByteCount) { header.copyElements(of: bytes, to: $0) }
        shapeValues.append(byteCount: header.shape.count * 8) { out in
            for (i, d) in header.shape.enumerated() {
                out.storeBytes(of: Int64(d).littleEndian, toByteOffset: i * 8, as: Int64.self)
            }
        }
    }

    override func stageMissing(at index: Int) {
        elements.append(UnsafeRawBufferPointer(start: nil, count: 0))
        shapeValues.append(UnsafeRawBufferPointer(start: nil, count: 0))
    }

    override var isFull: Bool { elements.used >= variableBlockBytes }

    override func write(rows: Range<Int>) throws {
        try elements.sequences(elementSize: dtype.size).withUnsafeBytes {
            try dataset.write(rows: rows, from: $0.baseAddress!)
        }
        try shapeValues.sequences(elementSize: 8).withUnsafeBytes {
            try shapes.write(rows: rows, from: $0.baseAddress!)
        }
        elements.removeAll()
        shapeValues.removeAll()
    }

    override func close() throws {
        try super.close()
        try shapes.close()
    }
}

/// Variable-length uint8 sequences: the exact member bytes (any extension not decoded, and `.npy`
/// members with different dtypes). A missing member is an empty sequence.
final class BytesColumnWriter: HDF5ColumnWriter {
    private var staging = ByteStaging()

    init(name: String, file: HDF5File, count: Int, compression: HDF5Compression, presenceName: String?) throws {
        let (dataset, blockRows) = try Self.variableLength(
            name, type: try HDF5Type.sequence(of: .uint8, path: file.path + "/" + name), file: file, count: count,
            compression: compression)
        super.init(
            dataset: dataset, file: file, count: count, blockRows: blockRows, presenceName: presenceName,
            compression: compression)
    }

    override func stage(_ bytes: UnsafeRawBufferPointer, at index: Int) throws { staging.append(bytes) }

    override func stageMissing(at index: Int) { staging.append(UnsafeRawBufferPointer(start: nil, count: 0)) }

    override var isFull: Bool { staging.used >= variableBlockBytes }

    override func write(rows: Range<Int>) throws {
        try staging.sequences().withUnsafeBytes { try dataset.write(rows: rows, from: $0.baseAddress!) }
        staging.removeAll()
    }

}

/// Variable-length UTF-8 strings (text members, class labels that are not all integers, the
/// keys). A missing member is the empty string.
final class TextColumnWriter: HDF5ColumnWriter {
    private var staging = ByteStaging()

    init(name: String, file: HDF5File, count: Int, compression: HDF5Compression, presenceName: String?) throws {
        let (dataset, blockRows) = try Self.variableLength(
            name, type: try HDF5Type.utf8String(path: file.path + "/" + name), file: file, count: count,
            compression: compression)
        super.init(
            dataset: dataset, file: file, count: count, blockRows: blockRows, presenceName: presenceName,
            compression: compression)
    }

    override func stage(_ bytes: UnsafeRawBufferPointer, at index: Int) throws {
        guard !bytes.contains(0) else {
            throw MemberMismatch(
                reason:
                    "it now holds a NUL byte, which it did not when the export began; was the shard changed during the export? Run it again"
            )
        }
        staging.append(bytes, terminate: true)
    }

    override func stageMissing(at index: Int) {
        staging.append(UnsafeRawBufferPointer(start: nil, count: 0), terminate: true)
    }

    override var isFull: Bool { staging.used >= variableBlockBytes }

    override func write(rows: Range<Int>) throws {
        try staging.cStrings().withUnsafeBytes { try dataset.write(rows: rows, from: $0.baseAddress!) }
        staging.removeAll()
    }

}

/// Class labels that all parse as decimal integers: int64. A missing member is 0.
final class IntegerColumnWriter: HDF5ColumnWriter {
    private var values: [Int64] = []

    init(name: String, file: HDF5File, count: Int, compression: HDF5Compression, presenceName: String?) throws {
        let storage = HDF5Storage.chunked(rows: count, rowBytes: 8, compression: compression, numeric: true)
        let dataset = try file.createDataset(name, type: .int64, dims: [count], storage: storage)
        let chunk = storage.chunkRows ?? 1
        let blockRows = min(max(count, 1), chunk * max(1, arrayBlockBytes / (chunk * 8)))
        values.reserveCapacity(blockRows)
        super.init(
            dataset: dataset, file: file, count: count, blockRows: blockRows, presenceName: presenceName,
            compression: compression)
    }

    override func stage(_ bytes: UnsafeRawBufferPointer, at index: Int) throws {
        guard let value = MemberText.integer(bytes) else {
            throw MemberMismatch(
                reason:
                    "it is no longer a decimal integer as when the export began; was the shard changed during the export? Run it again"
            )
        }
        values.append(value.littleEndian)
    }

    override func stageMissing(at index: Int) { values.append(0) }

    override func write(rows: Range<Int>) throws {
        try values.withUnsafeBytes { try dataset.write(rows: rows, from: $0.baseAddress!) }
        values.removeAll(keepingCapacity: true)
    }

}

/// A pointer handed to `concurrentPerform` workers that only read through it.
private struct UncheckedPointer: @unchecked Sendable {
    let base: UnsafeRawPointer
}

/// What HDF5's shuffle and deflate filters make of a chunk, done here so that chunks can be
/// filtered in parallel and written with `H5Dwrite_chunk`.
enum ChunkFilter {
    /// `source` (the chunk's rows; an edge chunk has fewer) padded with zeros to `chunkBytes`, as
    /// HDF5 stores edge chunks whole; then shuffled by `elementSize` (HDF5's shuffle: byte `j` of
    /// every element together, `j` = 0, 1, ...; no change for 1-byte elements); then deflated at
    /// `level` as a zlib stream.
    ///
    /// - Complexity: O(chunkBytes).
    static func filter(_ source: UnsafeRawBufferPointer, chunkBytes: Int, elementSize: Int, level: Int) -> [UInt8] {
        precondition(source.count <= chunkBytes && chunkBytes % max(elementSize, 1) == 0)
        let plain = UnsafeMutableRawBufferPointer.allocate(byteCount: max(chunkBytes, 1), alignment: 16)
        defer { plain.deallocate() }
        if let base = source.baseAddress, source.count > 0 {
            plain.baseAddress!.copyMemory(from: base, byteCount: source.count)
        }
        if chunkBytes > source.count {
            (plain.baseAddress! + source.count).initializeMemory(
                as: UInt8.self, repeating: 0, count: chunkBytes - source.count)
        }
        let elements = chunkBytes / max(elementSize, 1)
        guard elementSize > 1, elements > 1 else {
            return Zlib.compress(UnsafeRawBufferPointer(rebasing: plain[0..<chunkBytes]), level: level)
        }
        let shuffled = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkBytes, alignment: 16)
        defer { shuffled.deallocate() }
        let from = plain.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let to = shuffled.baseAddress!.assumingMemoryBound(to: UInt8.self)
        for j in 0..<elementSize {
            let lane = to + j * elements
            for i in 0..<elements { lane[i] = from[i * elementSize + j] }
        }
        return Zlib.compress(UnsafeRawBufferPointer(shuffled), level: level)
    }
}
