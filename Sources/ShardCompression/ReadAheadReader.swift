import ShardCore
import ShardIO

#if canImport(Glibc)
    import Glibc
#endif

/// A front-to-back decompression of a whole shard that runs on a thread of its own, a few chunks
/// ahead of its reader: while the reader works on one chunk (hashing it, copying it out), the
/// next ones are being decompressed, so a sequential pass costs about the larger of the two, not
/// their sum.
///
/// Reads go forward: a read may start anywhere in the chunks still held (from the one the last
/// read started in on) or ahead of them (the chunks in between are skipped); a read
/// before them throws `.behindWindow`. Memory is bounded: `depth` chunks of `chunkSize` bytes
/// plus the codec's state, freed with the reader. A zstd shard's chunks grow to hold its first
/// frame's window and a block (for windows up to 8 MiB), so that its frames decode in place,
/// with no window of the codec's own (``ZstdDecoder/decodeInPlace(chunkSize:)``).
///
/// The thread is a POSIX thread (never Dispatch, for the reason `ParallelLoop` gives); it ends
/// at the end of the data, at the first error, or when the reader is deinitialized (which waits
/// for it; a reader deinitialized in a forked child, where the thread does not exist, does not).
/// One reader at a time: callers serialize ``read(into:at:)``.
///
/// ```swift
/// let ahead = try ReadAheadReader(file: try ReadOnlyFile(path: "shard.tar.zst"), format: .zstd)
/// var block = [UInt8](repeating: 0, count: 512)
/// let n = try block.withUnsafeMutableBytes { try ahead.read(into: $0, at: 0) }
/// ```
public final class ReadAheadReader: @unchecked Sendable {
    /// The shard's format.
    public let format: CompressionFormat
    private let state: State
    private let thread: WorkerThread?
    /// The process the thread runs in.
    private let process = getpid()

    /// Starts decompressing `file` on a new thread.
    ///
    /// - Parameters:
    ///   - format: the shard's format; not `.none`.
    ///   - chunkSize: bytes decompressed per chunk (at least 64 KiB).
    ///   - depth: chunks held at most (at least 2: one being read, one being filled).
    /// - Throws: ``DecompressionError`` (`.io`) when no thread can be made.
    /// - Complexity: allocates `depth` chunks.
    public convenience init(file: ReadOnlyFile, format: CompressionFormat, chunkSize: Int = 4 << 20, depth: Int = 3)
        throws(DecompressionError)
    {
        try self.init(source: CompressedSource(file), format: format, chunkSize: chunkSize, depth: depth)
    }

    /// Starts decompressing `source` (a local file or a remote object) on a new thread, as
    /// ``init(file:format:chunkSize:depth:)`` does for a file.
    ///
    /// - Throws: ``DecompressionError`` (`.io`) when no thread can be made.
    public init(source: CompressedSource, format: CompressionFormat, chunkSize: Int = 4 << 20, depth: Int = 3)
        throws(DecompressionError)
    {
        precondition(format != .none, "ReadAheadReader needs a compressed format")
        precondition(chunkSize >= 64 << 10 && depth >= 2, "ReadAheadReader needs chunks of 64 KiB and a depth of 2")
        self.format = format
        let input = CompressedInput(source: source, format: format)
        // No seek points are collected: the span is larger than any shard.
        let decoder = try DecompressingReader.forwardDecoder(input: input, format: format, seekSpan: 1 << 62)
        let state = State(decoder: decoder, chunkSize: chunkSize, depth: depth)
        self.state = state
        guard let thread = WorkerThread({ state.produce() }) else {
            state.stop()
            throw input.error(.io("no thread could be started to decompress ahead of the reader"))
        }
        self.thread = thread
    }

    deinit {
        guard getpid() == process else { return }
        state.stop()
        thread?.join()
    }

    /// Copies up to `buffer.count` uncompressed bytes at `offset`, waiting for the thread when
    /// they are not decompressed yet; fewer only at the end of the data.
    ///
    /// - Throws: ``DecompressionError`` for bad data (at the read that reaches it), and of kind
    ///   `.behindWindow` for an offset before the chunks still held.
    /// - Complexity: O(buffer.count) copying, plus waiting for the decompression.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        var done = 0
        while done < buffer.count {
            guard let chunk = try state.chunk(holding: offset + Int64(done), readFrom: offset) else { break }
            let from = Int(offset + Int64(done) - chunk.start)
            let n = min(buffer.count - done, chunk.count - from)
            (buffer.baseAddress! + done).copyMemory(from: chunk.bytes.baseAddress! + from, byteCount: n)
            done += n
        }
        return done
    }

    /// A decompressed chunk: `count` bytes from uncompressed offset `start`.
    struct Chunk {
        let bytes: UnsafeMutableRawBufferPointer
        var start: Int64
        var count: Int
    }

    /// What the thread and the reader share, guarded by `monitor`.
    final class State: @unchecked Sendable {
        private let monitor = Monitor()
        private let decoder: any ShardDecoder
        private let chunkSize: Int
        private let depth: Int
        /// Chunks not holding data, for the thread to fill.
        private var free: [UnsafeMutableRawBufferPointer] = []
        /// Chunks holding data, in order; the reader drops those behind its reads.
        private var filled: [Chunk] = []
        /// Every chunk, allocated by the thread when it starts.
        private var all: [UnsafeMutableRawBufferPointer] = []
        /// The uncompressed offset of the next chunk's first byte.
        private var produced: Int64 = 0
        private var ended = false
        private var failure: DecompressionError?
        private var stopped = false
        /// Whether the thread waits for a chunk it may fill.
        private var starved = false
        /// The chunk the thread filled last: never the next one it fills, even when the reader has
        /// given it back, since zstd's in-place decoding refers to it while it fills the next.
        private var lastFilled: UnsafeMutableRawPointer?

        init(decoder: any ShardDecoder, chunkSize: Int, depth: Int) {
            self.decoder = decoder
            self.chunkSize = chunkSize
            self.depth = depth
        }

        deinit { for b in all { b.deallocate() } }

        /// The thread's loop: fills free chunks in order until the data ends, an error, or stop.
        func produce() {
            // zstd decodes in place when a chunk holds the frame's window and a block: the chunks
            // grow to that for windows up to 8 MiB (zstd -19's; -3's is 2 MiB).
            let size = (decoder as? ZstdDecoder)?.decodeInPlace(chunkSize: chunkSize) ?? chunkSize
            monitor.withLock {
                all = (0..<depth).map { _ in .allocate(byteCount: size, alignment: 64) }
                free = all
            }
            while true {
                let next: UnsafeMutableRawBufferPointer? = monitor.withLock {
                    while !stopped {
                        if let i = free.firstIndex(where: { $0.baseAddress != lastFilled }) {
                            starved = false
                            return free.remove(at: i)
                        }
                        starved = true
                        monitor.broadcast()
                        monitor.wait()
                    }
                    starved = false
                    return nil
                }
                guard let bytes = next else { return }
                // A chunk stays unchanged until the next one is full (the reader may give it back
                // meanwhile, but only this thread refills chunks), so the decoder may refer to it
                // while it fills the next: zstd decodes in place. What came before a failure is
                // handed out first, so the read that reaches the failure is the one that throws.
                let (count, end, error) = decoder.produceChunk(into: bytes)
                let finished: Bool = monitor.withLock {
                    if count > 0 {
                        filled.append(Chunk(bytes: bytes, start: produced, count: count))
                        produced += Int64(count)
                        lastFilled = bytes.baseAddress
                    } else {
                        free.append(bytes)
                    }
                    failure = error
                    ended = end
                    monitor.broadcast()
                    return end || error != nil || stopped
                }
                if finished { return }
            }
        }

        /// Ends the thread's loop (it finishes the chunk it is filling first).
        func stop() {
            monitor.withLock {
                stopped = true
                monitor.broadcast()
            }
        }

        /// The chunk holding uncompressed byte `position`, for a read that starts at `start`
        /// (at or before it); nil at the end of the data. The chunk stays valid until the next call.
        ///
        /// Chunks wholly before `start` are given back to the thread; the chunks from `start` on
        /// stay, so that the next read may start anywhere in this one (a sequential pass reads a
        /// window ahead, then the sample that straddled its end). When the thread waits for a
        /// chunk to fill and `position` lies ahead of what it made, the chunks wholly before
        /// `position` are given back too.
        func chunk(holding position: Int64, readFrom start: Int64) throws -> Chunk? {
            try monitor.withLock { () throws -> Chunk? in
                while true {
                    var dropped = false
                    while let first = filled.first, first.start + Int64(first.count) <= start {
                        free.append(filled.removeFirst().bytes)
                        dropped = true
                    }
                    if dropped { monitor.broadcast() }
                    if let first = filled.first, position < first.start {
                        throw decoder.input.error(.behindWindow(offset: position, windowStart: first.start))
                    }
                    if let held = filled.first(where: { position < $0.start + Int64($0.count) }) { return held }
                    if filled.isEmpty && position < produced {
                        throw decoder.input.error(.behindWindow(offset: position, windowStart: produced))
                    }
                    if let failure { throw failure }
                    if ended { return nil }
                    if starved && !free.contains(where: { $0.baseAddress != lastFilled }) {
                        // Every chunk the thread may fill is held and lies before `position`:
                        // give them back.
                        while let first = filled.first, first.start + Int64(first.count) <= position {
                            free.append(filled.removeFirst().bytes)
                        }
                        monitor.broadcast()
                    }
                    monitor.wait()
                }
            }
        }
    }
}
