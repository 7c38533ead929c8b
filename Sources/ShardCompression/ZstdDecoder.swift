import CShardZstd

/// Zstandard through `ZSTD_decompressStream`, a frame at a time: this decoder finds the frames
/// itself (skipping skippable frames, `50`–`5f 2a 4d 18` + a 32-bit length), so a forward pass
/// records the data frames' (compressed, uncompressed) starts, and a resumption starts at one.
/// Frames with a content checksum are checked by the library.
///
/// In a ``ReadAheadReader`` (``decodeInPlace(chunkSize:)``), frames whose window a chunk holds are
/// decoded with the buffer-less API (`ZSTD_decompressContinue`), block by block straight into the
/// chunks: a back-reference reaches into the previous chunk, which stays unchanged until the next
/// one is full. `ZSTD_decompressStream` would decode into a window of its own and copy out of it.
final class ZstdDecoder: ShardDecoder {
    let input: CompressedInput
    private(set) var position: Int64
    private let context: OpaquePointer
    private let limit: Int64?
    private var points: [SeekPoint] = []
    private var atFrameBoundary = true
    private var frames = 0
    private var finished = false
    /// Frames with a window of at most this many bytes are decoded in place (0: none).
    private var inPlaceWindow = 0
    /// Whether the current frame is decoded in place.
    private var frameInPlace = false
    /// A block's compressed bytes when they straddle two of the input's chunks.
    private var staging: UnsafeMutableRawBufferPointer?

    /// The most bytes a block decodes to (`ZSTD_BLOCKSIZE_MAX`): a block is decoded in place only
    /// into at least this much room.
    static let blockSizeMax = 128 << 10
    /// The most compressed bytes one buffer-less step takes: a block (at most its decoded size,
    /// 128 KiB, or zstd refuses it) or a frame header.
    private static let stepMax = blockSizeMax + 64

    private static let dataMagic: [UInt8] = [0x28, 0xb5, 0x2f, 0xfd]
    /// A frame start is recorded only this many compressed bytes after the last one recorded
    /// (an entry's 16 bytes, 20 times): the table stays under 5% of the shard even when the
    /// frames are tiny; a read then decodes through the small frames in between.
    private static let minimumGap: Int64 = 20 * 16

    init(input: CompressedInput, start: DecoderStart) {
        self.input = input
        guard let context = ZSTD_createDCtx() else { preconditionFailure("ZSTD_createDCtx: out of memory") }
        self.context = context
        switch start {
        case .forward:
            limit = nil
            position = 0
        case .resume(let table, let index):
            limit = table.uncompressedSize
            position = table.points[index].uncompressedOffset
            input.seek(to: table.points[index].compressedOffset)
        }
    }

    deinit {
        ZSTD_freeDCtx(context)
        staging?.deallocate()
    }

    /// The largest window the chunks of an in-place pass grow to hold.
    static let inPlaceWindowMax = 8 << 20

    /// Decodes, from the next frame on, the frames whose window fits in a chunk (less a block) in
    /// place: for a forward pass whose output chunks each stay unchanged until the next one is
    /// full, filled through ``produceChunk(into:)`` only. Returns the chunk size to use: at least
    /// `chunkSize`, more when the first frame's window (up to ``inPlaceWindowMax``) needs it.
    ///
    /// - Complexity: reads the input's first chunk, for the first frame's header.
    func decodeInPlace(chunkSize: Int) -> Int {
        precondition(limit == nil && position == 0, "in-place decoding is for a forward pass, from its start")
        var size = chunkSize
        var header = ZSTD_frameHeader()
        // The first chunk of input, which the decoding reads next anyway (a remote shard's header
        // then costs no request of its own); a failure is left to the decoding to report.
        _ = try? input.refill()
        if let bytes = try? input.peek(Int(ZSTD_FRAMEHEADERSIZE_MAX)),
            bytes.withUnsafeBytes({ ZSTD_getFrameHeader(&header, $0.baseAddress, $0.count) }) == 0,
            header.frameType == ZSTD_frame, header.windowSize <= UInt64(Self.inPlaceWindowMax)
        {
            // Whole 64 KiB units.
            size = max(size, (Int(header.windowSize) + Self.blockSizeMax + 0xffff) & ~0xffff)
        }
        inPlaceWindow = max(0, size - Self.blockSizeMax)
        return size
    }

    func produce(into output: UnsafeMutableRawBufferPointer) throws(DecompressionError) -> Int {
        precondition(inPlaceWindow == 0, "a decoder that decodes in place fills chunks (produceChunk)")
        var produced = 0
        while produced < output.count, try inFrame() {
            produced += try streamStep(into: UnsafeMutableRawBufferPointer(rebasing: output[produced...]))
        }
        return produced
    }

    func produceChunk(into output: UnsafeMutableRawBufferPointer) -> (
        count: Int, ended: Bool, failure: DecompressionError?
    ) {
        var produced = 0
        do {
            while try inFrame() {
                let rest = UnsafeMutableRawBufferPointer(rebasing: output[produced...])
                if frameInPlace {
                    guard let n = try blockStep(into: rest) else { break }
                    produced += n
                } else {
                    if rest.isEmpty { break }
                    produced += try streamStep(into: rest)
                }
            }
        } catch {
            return (produced, false, error)
        }
        return (produced, finished, nil)
    }

    /// Moves past frame boundaries (skippable frames, and a resumption's end): true inside a data
    /// frame, false once the data has ended.
    private func inFrame() throws(DecompressionError) -> Bool {
        while !finished {
            if let limit, position >= limit {
                finished = true
                break
            }
            if !atFrameBoundary { return true }
            if try !startFrame() { finished = true }
        }
        return false
    }

    /// One `ZSTD_decompressStream` call into `output` (not empty); the bytes it wrote.
    private func streamStep(into output: UnsafeMutableRawBufferPointer) throws(DecompressionError) -> Int {
        if input.available.isEmpty {
            guard try input.refill() else { throw input.error(.truncated, at: input.end) }
        }
        let available = input.available
        var room = output.count
        if let limit { room = Int(min(Int64(room), limit - position)) }
        var inBuffer = ZSTD_inBuffer(src: available.baseAddress, size: available.count, pos: 0)
        var outBuffer = ZSTD_outBuffer(dst: output.baseAddress!, size: room, pos: 0)
        let status = ZSTD_decompressStream(context, &outBuffer, &inBuffer)
        input.consume(inBuffer.pos)
        position += Int64(outBuffer.pos)
        if ZSTD_isError(status) != 0 {
            throw input.error(.corrupt(String(cString: ZSTD_getErrorName(status))))
        }
        if status == 0 {
            frames += 1
            atFrameBoundary = true
        }
        return outBuffer.pos
    }

    /// One buffer-less step of an in-place frame (a header, a block, the checksum) into `output`
    /// right after the frame's bytes so far (or at the start of the next chunk): the bytes it
    /// wrote, or nil when a block comes next and `output` may be too small for it.
    private func blockStep(into output: UnsafeMutableRawBufferPointer) throws(DecompressionError) -> Int? {
        let need = ZSTD_nextSrcSizeToDecompress(context)
        if need == 0 {
            frames += 1
            atFrameBoundary = true
            frameInPlace = false
            return 0
        }
        let type = ZSTD_nextInputType(context)
        if (type == ZSTDnit_block || type == ZSTDnit_lastBlock) && output.count < Self.blockSizeMax { return nil }
        let start = input.offset
        guard need <= Self.stepMax else {
            throw input.error(
                .corrupt("a zstd block of \(need) compressed bytes, over the format's 128 KiB"), at: start)
        }
        if input.available.isEmpty {
            guard try input.refill() else { throw input.error(.truncated, at: input.end) }
        }
        var source = UnsafeRawBufferPointer(input.available)
        if source.count >= need {
            source = UnsafeRawBufferPointer(rebasing: source[0..<need])
            input.consume(need)
        } else {
            // The step straddles two input chunks: gather it.
            let gathered = staging ?? .allocate(byteCount: Self.stepMax, alignment: 16)
            staging = gathered
            var copied = 0
            while copied < need {
                if input.available.isEmpty {
                    guard try input.refill() else { throw input.error(.truncated, at: input.end) }
                }
                let piece = input.available
                let n = min(piece.count, need - copied)
                (gathered.baseAddress! + copied).copyMemory(from: piece.baseAddress!, byteCount: n)
                input.consume(n)
                copied += n
            }
            source = UnsafeRawBufferPointer(rebasing: gathered[0..<need])
        }
        let n = ZSTD_decompressContinue(context, output.baseAddress, output.count, source.baseAddress, need)
        if ZSTD_isError(n) != 0 {
            throw input.error(.corrupt(String(cString: ZSTD_getErrorName(n))), at: start)
        }
        position += Int64(n)
        return n
    }

    /// At a frame boundary: skips skippable frames and starts the next data frame, or returns
    /// false at the end of the data.
    private func startFrame() throws(DecompressionError) -> Bool {
        while true {
            let head = try input.peek(8)
            if head.count >= 4 && head[0] & 0xf0 == 0x50 && head[1...3].elementsEqual([0x2a, 0x4d, 0x18]) {
                guard head.count == 8 else { throw input.error(.truncated, at: input.end) }
                let length = Int64(head[4]) | Int64(head[5]) << 8 | Int64(head[6]) << 16 | Int64(head[7]) << 24
                try input.skip(8 + length)
                continue
            }
            if head.starts(with: Self.dataMagic) {
                if limit == nil {
                    let point = SeekPoint(compressedOffset: input.offset, uncompressedOffset: position)
                    if let last = points.last, last.uncompressedOffset == position {
                        // A frame that produced nothing is no entry point: this one replaces it.
                        points[points.count - 1] = point
                    } else if points.isEmpty
                        || input.offset - points[points.count - 1].compressedOffset >= Self.minimumGap
                    {
                        points.append(point)
                    }
                }
                ZSTD_DCtx_reset(context, ZSTD_reset_session_only)
                frameInPlace = false
                if inPlaceWindow > 0 {
                    // In place when the header declares a window the previous chunk holds; any
                    // other frame (a larger window, a dictionary, a bad header) streams, and the
                    // streaming decoder reports what is wrong with it.
                    var header = ZSTD_frameHeader()
                    let bytes = try input.peek(Int(ZSTD_FRAMEHEADERSIZE_MAX))
                    let status = bytes.withUnsafeBytes { ZSTD_getFrameHeader(&header, $0.baseAddress, $0.count) }
                    if status == 0 && header.frameType == ZSTD_frame && header.dictID == 0
                        && header.windowSize <= UInt64(inPlaceWindow)
                    {
                        let begun = ZSTD_decompressBegin(context)
                        frameInPlace = ZSTD_isError(begun) == 0
                    }
                }
                atFrameBoundary = false
                return true
            }
            if limit != nil {
                throw input.error(.corrupt("no zstd frame where the seek table expects uncompressed byte \(position)"))
            }
            if head.isEmpty {
                if input.end == 0 { throw input.error(.truncated, at: 0) }
                return false
            }
            if head.count < 4 && Self.dataMagic.starts(with: head) { throw input.error(.truncated, at: input.end) }
            if frames == 0 && input.offset == 0 { throw input.error(.corrupt("not a zstd frame")) }
            throw input.error(.trailingGarbage)
        }
    }

    func collectedPoints() throws(DecompressionError) -> [SeekPoint] {
        precondition(finished && limit == nil)
        return points.filter { $0.uncompressedOffset < position || $0.uncompressedOffset == 0 }
    }
}
