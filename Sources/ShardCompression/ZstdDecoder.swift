import CShardZstd

/// Zstandard through `ZSTD_decompressStream`, a frame at a time: this decoder finds the frames
/// itself (skipping skippable frames, `50`–`5f 2a 4d 18` + a 32-bit length), so a forward pass
/// records the data frames' (compressed, uncompressed) starts, and a resumption starts at one.
/// Frames with a content checksum are checked by the library.
final class ZstdDecoder: ShardDecoder {
    let input: CompressedInput
    private(set) var position: Int64
    private let context: OpaquePointer
    private let limit: Int64?
    private var points: [SeekPoint] = []
    private var atFrameBoundary = true
    private var frames = 0
    private var finished = false

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

    deinit { ZSTD_freeDCtx(context) }

    func produce(into output: UnsafeMutableRawBufferPointer) throws(DecompressionError) -> Int {
        var produced = 0
        while produced < output.count && !finished {
            if let limit, position >= limit {
                finished = true
                break
            }
            if atFrameBoundary {
                if try !startFrame() { finished = true }
                continue
            }
            if input.available.isEmpty {
                guard try input.refill() else { throw input.error(.truncated, at: input.end) }
            }
            let available = input.available
            var room = output.count - produced
            if let limit { room = Int(min(Int64(room), limit - position)) }
            var inBuffer = ZSTD_inBuffer(src: available.baseAddress, size: available.count, pos: 0)
            var outBuffer = ZSTD_outBuffer(dst: output.baseAddress! + produced, size: room, pos: 0)
            let status = ZSTD_decompressStream(context, &outBuffer, &inBuffer)
            input.consume(inBuffer.pos)
            produced += outBuffer.pos
            position += Int64(outBuffer.pos)
            if ZSTD_isError(status) != 0 {
                throw input.error(.corrupt(String(cString: ZSTD_getErrorName(status))))
            }
            if status == 0 {
                frames += 1
                atFrameBoundary = true
            }
        }
        return produced
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
