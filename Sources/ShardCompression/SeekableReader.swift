import ShardCore
import ShardIO

/// Random reads of uncompressed bytes from a seekable compressed shard (gzip with its
/// checkpoints, zstd with several frames, xz with several blocks). Safe to share between threads.
///
/// It keeps a small pool of live decoder cursors (up to 8, behind a mutex; decoding happens
/// outside it): a read at or after where a cursor stopped, and no further than from the nearest
/// seek point, continues that cursor instead of restarting, so a front-to-back pass costs
/// O(shard) and a random read O(span).
///
/// With ``DecodedSpans``, it also keeps what it decodes of each seek span, so that a read
/// behind where decoding stopped, but in a span decoded before, is a copy rather than a new
/// decoding from the seek point.
///
/// ```swift
/// let reader = SeekableReader(file: try ReadOnlyFile(path: path), info: info)
/// var bytes = [UInt8](repeating: 0, count: 4096)
/// let n = try bytes.withUnsafeMutableBytes { try reader.read(into: $0, at: 1_000_000) }
/// ```
public final class SeekableReader: RandomAccessBytes, @unchecked Sendable {
    /// The shard's sizes and seek table.
    public let info: CompressedShardInfo
    private let source: CompressedSource
    private let spans: DecodedSpans?
    /// This reader's number in ``spans``.
    private let number = DecodedSpans.readerNumber()
    private let monitor = Monitor()
    /// Idle cursors, least recently used first (guarded by `monitor`).
    private var idle: [Cursor] = []

    /// How many idle cursors are kept.
    static let maximumIdleCursors = 8

    /// A decoder positioned somewhere in the data, with a buffer to skip forward through.
    final class Cursor {
        let decoder: any ShardDecoder
        let scratch: UnsafeMutableRawBufferPointer

        init(decoder: any ShardDecoder) {
            self.decoder = decoder
            scratch = .allocate(byteCount: 64 << 10, alignment: 16)
        }

        deinit { scratch.deallocate() }
    }

    /// Reads `file` through `info` (from ``DecompressingReader/finish()`` or the index), keeping
    /// decoded spans in `spans` when given.
    ///
    /// - Precondition: `info.seekTable.isSeekable`.
    public convenience init(file: ReadOnlyFile, info: CompressedShardInfo, spans: DecodedSpans? = nil) {
        self.init(source: CompressedSource(file), info: info, spans: spans)
    }

    /// Reads `source` (a local file or a remote object) through `info`, keeping decoded spans in
    /// `spans` when given.
    ///
    /// - Precondition: `info.seekTable.isSeekable`.
    public init(source: CompressedSource, info: CompressedShardInfo, spans: DecodedSpans? = nil) {
        precondition(info.seekTable.isSeekable, "SeekableReader needs a seekable shard")
        self.source = source
        self.info = info
        self.spans = spans
    }

    /// The uncompressed size (so a `TarScanner` or a member's header check can read through
    /// this reader as through a plain tar).
    public var byteCount: Int64 { info.uncompressedSize }

    /// Copies up to `buffer.count` uncompressed bytes at `uncompressedOffset` into `buffer`;
    /// returns fewer only at the end of the data.
    ///
    /// - Throws: ``DecompressionError`` naming the compressed offset where decoding failed
    ///   (`.badSeekTable` when the file's size is not the one the table was made for).
    /// - Complexity: O(span + count) decompression for a random read; O(count) when it continues
    ///   where an earlier read stopped.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at uncompressedOffset: Int64)
        throws(DecompressionError)
        -> Int
    {
        precondition(uncompressedOffset >= 0, "negative offset")
        guard uncompressedOffset < info.uncompressedSize, !buffer.isEmpty else { return 0 }
        guard source.byteCount == info.compressedSize else {
            throw DecompressionError(
                format: info.format, path: source.path, compressedOffset: 0,
                kind: .badSeekTable(
                    "made for \(info.compressedSize) compressed bytes, the file has \(source.byteCount)"))
        }
        if let spans { return try readThrough(spans, into: buffer, at: uncompressedOffset) }
        return try readDirectly(into: buffer, at: uncompressedOffset)
    }

    /// ``read(into:at:)`` decoding straight into `buffer` (from a cursor, or from the seek point).
    private func readDirectly(into buffer: UnsafeMutableRawBufferPointer, at uncompressedOffset: Int64)
        throws(DecompressionError) -> Int
    {
        let table = info.seekTable
        let pointIndex = table.pointIndex(atOrBefore: uncompressedOffset)
        let pointOffset = table.points[pointIndex].uncompressedOffset
        let reused: Cursor? = monitor.withLock {
            // The cursor furthest along that has not passed the offset, if it is no further
            // from it than the seek point is.
            var best: Int?
            for (i, cursor) in idle.enumerated() {
                let position = cursor.decoder.position
                guard position <= uncompressedOffset, position >= pointOffset else { continue }
                if best == nil || position > idle[best!].decoder.position { best = i }
            }
            return best.map { idle.remove(at: $0) }
        }
        let cursor: Cursor
        if let reused { cursor = reused } else { cursor = try makeCursor(at: pointIndex) }
        while cursor.decoder.position < uncompressedOffset {
            let n = Int(min(Int64(cursor.scratch.count), uncompressedOffset - cursor.decoder.position))
            guard try cursor.decoder.produce(into: UnsafeMutableRawBufferPointer(rebasing: cursor.scratch[0..<n])) > 0
            else { throw endsEarly(cursor, needed: uncompressedOffset) }
        }
        var done = 0
        while done < buffer.count {
            let n = try cursor.decoder.produce(into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]))
            if n == 0 { break }
            done += n
        }
        let end = min(info.uncompressedSize, uncompressedOffset + Int64(buffer.count))
        guard uncompressedOffset + Int64(done) == end else { throw endsEarly(cursor, needed: end) }
        putIdle(cursor)
        return done
    }

    /// ``read(into:at:)`` through `spans`, a seek span at a time: bytes of a span decoded before
    /// are copied; the rest are decoded into the span's buffer, from the decoder that stopped
    /// where its bytes end (or from the seek point, into a new buffer), then copied.
    private func readThrough(
        _ spans: DecodedSpans, into buffer: UnsafeMutableRawBufferPointer, at uncompressedOffset: Int64
    ) throws(DecompressionError) -> Int {
        let table = info.seekTable
        let end = min(info.uncompressedSize, uncompressedOffset + Int64(buffer.count))
        var done = 0
        while uncompressedOffset + Int64(done) < end {
            let position = uncompressedOffset + Int64(done)
            let point = table.pointIndex(atOrBefore: position)
            let start = table.points[point].uncompressedOffset
            let stop =
                point + 1 < table.points.count ? table.points[point + 1].uncompressedOffset : info.uncompressedSize
            let piece = Int(min(end, stop) - position)
            let target = UnsafeMutableRawBufferPointer(rebasing: buffer[done..<(done + piece)])
            guard stop - start <= Int64(spans.largestSpan) else {
                // A span too long to keep: decoded straight into the buffer.
                let n = try readDirectly(into: target, at: position)
                guard n == piece else { return done + n }
                done += n
                continue
            }
            let key = DecodedSpans.Key(reader: number, point: point)
            let needed = Int(position - start) + piece
            var found = spans.lookup(key)
            if let (entry, filled) = found, filled >= needed {
                target.copyMemory(from: UnsafeRawBufferPointer(rebasing: entry.bytes[Int(position - start)..<needed]))
                done += piece
                continue
            }
            // Extend the span's bytes with the cursor that stopped where they end, or decode them
            // anew from the seek point into a new buffer.
            var cursor: Cursor?
            if let (entry, _) = found, let filled = spans.beginExtending(entry) {
                found = (entry, filled)
                cursor = takeIdleCursor(at: start + Int64(filled))
                if cursor == nil { spans.endExtending(entry) }
            }
            if cursor == nil {
                found = nil
                cursor = takeIdleCursor(at: start)
            }
            let decoder: Cursor
            if let cursor { decoder = cursor } else { decoder = try makeCursor(at: point) }
            guard let entry = found?.entry ?? DecodedSpans.Entry(length: Int(stop - start), from: spans.buffers) else {
                // No memory for the span's buffer: decoded straight into the buffer.
                putIdle(decoder)
                let n = try readDirectly(into: target, at: position)
                guard n == piece else { return done + n }
                done += n
                continue
            }
            var filled = found?.filled ?? 0
            do throws(DecompressionError) {
                while filled < needed {
                    let n = try decoder.decoder.produce(
                        into: UnsafeMutableRawBufferPointer(rebasing: entry.bytes[filled..<needed]))
                    guard n > 0 else { throw endsEarly(decoder, needed: start + Int64(needed)) }
                    filled += n
                }
            } catch {
                if found != nil { spans.endExtending(entry) }
                throw error
            }
            spans.publish(entry, filled: filled, as: key)
            target.copyMemory(from: UnsafeRawBufferPointer(rebasing: entry.bytes[Int(position - start)..<needed]))
            done += piece
            putIdle(decoder)
        }
        return done
    }

    /// An idle cursor exactly at uncompressed offset `position`, taken out of the pool; nil when
    /// none is there.
    private func takeIdleCursor(at position: Int64) -> Cursor? {
        monitor.withLock {
            guard let i = idle.lastIndex(where: { $0.decoder.position == position }) else { return nil }
            return idle.remove(at: i)
        }
    }

    /// Puts `cursor` back in the pool, dropping the least recently used beyond the pool's size.
    private func putIdle(_ cursor: Cursor) {
        monitor.withLock {
            idle.append(cursor)
            if idle.count > Self.maximumIdleCursors { idle.removeFirst() }
        }
    }

    private func endsEarly(_ cursor: Cursor, needed: Int64) -> DecompressionError {
        cursor.decoder.input.error(.endsEarly(needed: needed, end: cursor.decoder.position))
    }

    private func makeCursor(at pointIndex: Int) throws(DecompressionError) -> Cursor {
        let input = CompressedInput(source: source, format: info.format, chunkSize: 64 << 10)
        let start = DecoderStart.resume(info.seekTable, point: pointIndex)
        switch info.format {
        case .gzip: return Cursor(decoder: try GzipDecoder(input: input, start: start))
        case .zstd: return Cursor(decoder: ZstdDecoder(input: input, start: start))
        case .xz: return Cursor(decoder: XZDecoder(input: input, start: start))
        case .bzip2, .none: preconditionFailure("not seekable")
        }
    }
}
