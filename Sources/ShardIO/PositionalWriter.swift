/// A buffered writer that appends at increasing byte offsets of an open file with `pwrite(2)`,
/// starting at a given offset: several writers can fill different regions of one file (a header
/// at offset 0 written last, records after it), each through its own buffer.
///
/// ```swift
/// let file = try AtomicFile(destination: "index.sqlite-locations")
/// var records = file.writer(at: 4096, capacity: 1 << 20)
/// try records.append(UInt64(42))
/// try records.flush()
/// var header = file.writer(at: 0, capacity: 4096)
/// try header.append(UInt32(1))
/// try header.flush()
/// try file.commit()
/// ```
///
/// Nothing reaches the file before ``flush()`` or a full buffer; call ``flush()`` before the
/// file is committed. A copy has its own buffer: use one writer per region.
public struct PositionalWriter {
    /// The descriptor written to (not owned).
    public let descriptor: Int32
    /// The file's name in errors.
    public let path: String
    /// The offset the next appended byte goes to.
    public private(set) var position: Int64
    private var flushed: Int64
    private var buffer: [UInt8] = []
    private let capacity: Int

    /// A writer for the open descriptor `descriptor` (called `path` in errors) that starts at
    /// byte `offset` and buffers up to `capacity` bytes.
    public init(descriptor: Int32, path: String, at offset: Int64, capacity: Int) {
        self.descriptor = descriptor
        self.path = path
        position = offset
        flushed = offset
        self.capacity = max(capacity, 1)
        buffer.reserveCapacity(self.capacity)
    }

    /// Appends `value` little-endian.
    ///
    /// - Throws: ``IOError`` when a buffer flush fails.
    public mutating func append<T: FixedWidthInteger>(_ value: T) throws(IOError) {
        try withUnsafeBytes(of: value.littleEndian) { (raw) throws(IOError) in try append(bytes: raw) }
    }

    /// Appends `bytes`.
    ///
    /// - Throws: ``IOError`` when a buffer flush fails (naming the byte offset).
    /// - Complexity: O(`bytes.count`), amortized.
    public mutating func append(bytes: UnsafeRawBufferPointer) throws(IOError) {
        if buffer.count + bytes.count > capacity { try flush() }
        if bytes.count >= capacity {
            try FileWriting.writeAll(bytes, to: descriptor, at: flushed, path: path)
            flushed += Int64(bytes.count)
        } else {
            buffer.append(contentsOf: bytes)
        }
        position += Int64(bytes.count)
    }

    /// Writes what is buffered.
    ///
    /// - Throws: ``IOError`` naming the file and the byte offset of the failed write.
    public mutating func flush() throws(IOError) {
        guard !buffer.isEmpty else { return }
        let at = flushed
        let fd = descriptor
        let name = path
        var failure: IOError?
        buffer.withUnsafeBytes { raw in
            do throws(IOError) { try FileWriting.writeAll(raw, to: fd, at: at, path: name) } catch { failure = error }
        }
        if let failure { throw failure }
        flushed += Int64(buffer.count)
        buffer.removeAll(keepingCapacity: true)
    }
}
