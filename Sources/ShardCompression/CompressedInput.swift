import ShardIO

/// A compressed file (or remote object) read forward in chunks for a decoder: the unconsumed bytes
/// of the current chunk, the offset of the next unconsumed byte, and errors that name that offset.
final class CompressedInput {
    let source: CompressedSource
    let format: CompressionFormat
    /// The file's size at open: nothing at or after it is read.
    let end: Int64
    private let storage: UnsafeMutableRawBufferPointer
    /// The file offset of `storage[0]`.
    private var chunkStart: Int64 = 0
    private var chunkCount = 0
    private var consumed = 0

    /// Reads `source` in chunks of `chunkSize` bytes, or of the source's own chunk size when it
    /// asks for larger ones.
    init(source: CompressedSource, format: CompressionFormat, chunkSize: Int = 256 << 10) {
        self.source = source
        self.format = format
        self.end = source.byteCount
        storage = .allocate(byteCount: max(chunkSize, source.chunkSize ?? 0), alignment: 16)
    }

    deinit { storage.deallocate() }

    /// The file offset of the next unconsumed byte.
    var offset: Int64 { chunkStart + Int64(consumed) }

    /// Whether every byte up to the file's end has been consumed.
    var isAtEnd: Bool { offset >= end }

    /// The unconsumed bytes of the current chunk (possibly none).
    var available: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: storage[consumed..<chunkCount])
    }

    /// Marks `count` bytes of ``available`` consumed.
    func consume(_ count: Int) {
        precondition(count >= 0 && count <= chunkCount - consumed)
        consumed += count
    }

    /// Moves to file offset `position` (within the file), dropping the chunk unless it holds it.
    func seek(to position: Int64) {
        precondition(position >= 0 && position <= end)
        if position >= chunkStart && position <= chunkStart + Int64(chunkCount) {
            consumed = Int(position - chunkStart)
        } else {
            chunkStart = position
            chunkCount = 0
            consumed = 0
        }
    }

    /// Makes at least one more unconsumed byte available when ``available`` is empty (keeping
    /// what is unconsumed otherwise); returns false at the end of the file.
    ///
    /// - Throws: `.io` when the read fails.
    @discardableResult
    func refill() throws(DecompressionError) -> Bool {
        if consumed < chunkCount { return true }
        chunkStart += Int64(chunkCount)
        chunkCount = 0
        consumed = 0
        let wanted = Int(min(Int64(storage.count), end - chunkStart))
        guard wanted > 0 else { return false }
        do {
            chunkCount = try source.readAll(
                into: UnsafeMutableRawBufferPointer(rebasing: storage[0..<wanted]), at: chunkStart)
        } catch {
            throw self.error(.io("\(error)"), at: chunkStart)
        }
        guard chunkCount > 0 else {
            // The file shrank after it was opened: its end is where the data stops.
            throw self.error(.truncated, at: chunkStart)
        }
        return true
    }

    /// The byte just before the current offset (which must be past 0).
    func byteBefore() throws(DecompressionError) -> UInt8 {
        precondition(offset > 0)
        if consumed > 0 { return storage[consumed - 1] }
        do {
            return try source.read(count: 1, at: offset - 1)[0]
        } catch {
            throw self.error(.io("\(error)"), at: offset - 1)
        }
    }

    /// The `count` bytes just before the next unconsumed one (consumed already): from the chunk
    /// when it still holds them, else read again from the source.
    ///
    /// - Throws: `.io` when the read fails.
    func consumedBytes(_ count: Int) throws(DecompressionError) -> [UInt8] {
        precondition(count >= 0 && offset >= Int64(count))
        if consumed >= count { return Array(storage[(consumed - count)..<consumed]) }
        let bytes: [UInt8]
        do { bytes = try source.read(count: count, at: offset - Int64(count)) } catch {
            throw self.error(.io("\(error)"), at: offset - Int64(count))
        }
        guard bytes.count == count else { throw self.error(.truncated, at: offset - Int64(count) + Int64(bytes.count)) }
        return bytes
    }

    /// The next `count` bytes without consuming them (fewer at the end of the file).
    func peek(_ count: Int) throws(DecompressionError) -> [UInt8] {
        let n = Int(min(Int64(count), end - offset))
        guard n > 0 else { return [] }
        if chunkCount - consumed >= n { return Array(available[0..<n]) }
        do {
            return try source.read(count: n, at: offset)
        } catch {
            throw self.error(.io("\(error)"), at: offset)
        }
    }

    /// Consumes `count` bytes (across chunks).
    ///
    /// - Throws: `.truncated` when the file ends first.
    func skip(_ count: Int64) throws(DecompressionError) {
        precondition(count >= 0)
        guard count <= end - offset else { throw error(.truncated, at: end) }
        seek(to: offset + count)
    }

    /// Whether every byte from the current offset to the file's end is zero (consumes nothing).
    func restIsZero() throws(DecompressionError) -> Bool {
        var position = offset
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 16)
        defer { scratch.deallocate() }
        while position < end {
            let n = Int(min(Int64(scratch.count), end - position))
            let got: Int
            do {
                got = try source.readAll(into: UnsafeMutableRawBufferPointer(rebasing: scratch[0..<n]), at: position)
            } catch {
                throw self.error(.io("\(error)"), at: position)
            }
            if got == 0 { return true }
            if scratch[0..<got].contains(where: { $0 != 0 }) { return false }
            position += Int64(got)
        }
        return true
    }

    /// An error about this file at compressed offset `at` (the current offset by default).
    func error(_ kind: DecompressionError.Kind, at position: Int64? = nil) -> DecompressionError {
        DecompressionError(format: format, path: source.path, compressedOffset: position ?? offset, kind: kind)
    }
}
