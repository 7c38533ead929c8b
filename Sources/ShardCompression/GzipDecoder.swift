import CShardZlib

/// gzip through zlib's inflate: members one after another, each checked against its trailer
/// (CRC-32, computed by ``GzipCRC``, and length) in gzip mode; a resumption inside a member
/// inflates raw deflate data from a checkpoint (zran's method: `inflatePrime` with the partial
/// byte's bits, then `inflateSetDictionary` with the 32 KiB window) and skips that member's
/// trailer.
///
/// A forward pass collects checkpoints: it inflates with `Z_NO_FLUSH` until `span` bytes have
/// come out since the last point, then with `Z_BLOCK` to the next deflate block boundary and
/// takes the window there (`inflateGetDictionary`), a zstd frame when that is smaller. The start
/// of each member is a point too (it needs no window). A point is taken only when it costs at most
/// 5% of the compressed bytes since the last one, so the table stays under 5% of the shard
/// whatever the data.
final class GzipDecoder: ShardDecoder {
    let input: CompressedInput
    private(set) var position: Int64
    private let stream: UnsafeMutablePointer<z_stream>
    /// The uncompressed size when resuming (nothing after it is read); nil for a forward pass.
    private let limit: Int64?
    private let span: Int64
    private var points: [SeekPoint] = []
    /// Inside a member entered raw: its 8-byte trailer is skipped, not checked.
    private var rawMode = false
    private var atMemberBoundary: Bool
    private var members = 0
    private var finished = false
    private var lastPointIn: Int64 = 0
    private var lastPointOut: Int64 = 0
    /// No point is tried before the input reaches this offset (one was too dear here).
    private var retryAfterIn: Int64 = 0
    /// Whether the member being inflated is checked against its trailer: one entered at its
    /// start. (zlib's own check is off: ``GzipCRC`` computes the same CRC-32 several times faster.)
    private var checksMember = false
    /// The CRC-32 and length (modulo 2^32) of the member's data so far.
    private var memberCRC: UInt32 = 0
    private var memberLength: UInt32 = 0
    /// Compresses the points' windows; made when the first point is taken.
    private lazy var windowCompressor = WindowCompressor()

    /// The most a point may cost, as a share of the compressed bytes it covers: 1/20 = 5%.
    private static let costDivisor: Int64 = 20
    /// A point's stored size before its window.
    private static let pointOverhead: Int64 = 23

    init(input: CompressedInput, start: DecoderStart) throws(DecompressionError) {
        self.input = input
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let status = shardstore_inflate_init2(stream, 31)
        precondition(status == Z_OK, "inflateInit2 failed (\(status)): out of memory")
        switch start {
        case .forward(let span):
            precondition(span > 0)
            self.span = span
            limit = nil
            position = 0
            atMemberBoundary = true
        case .resume(let table, let index):
            let point = table.points[index]
            span = 0
            limit = table.uncompressedSize
            position = point.uncompressedOffset
            input.seek(to: point.compressedOffset)
            atMemberBoundary = point.isMemberStart
            if !point.isMemberStart {
                rawMode = true
                inflateReset2(stream, -15)
                if point.bits > 0 {
                    inflatePrime(stream, Int32(point.bits), Int32(point.partialByte >> (8 - point.bits)))
                }
                let window = point.window()
                if !window.isEmpty {
                    _ = window.withUnsafeBufferPointer { inflateSetDictionary(stream, $0.baseAddress, uInt($0.count)) }
                }
            }
        }
    }

    deinit {
        inflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    func produce(into output: UnsafeMutableRawBufferPointer) throws(DecompressionError) -> Int {
        var produced = 0
        while produced < output.count && !finished {
            if let limit, position >= limit {
                finished = true
                break
            }
            if atMemberBoundary {
                if try !startMember() { finished = true }
                continue
            }
            if input.available.isEmpty {
                guard try input.refill() else { throw input.error(.truncated, at: input.end) }
            }
            let available = input.available
            let availableIn = min(available.count, Int(UInt32.max))
            var room = output.count - produced
            if let limit { room = Int(min(Int64(room), limit - position)) }
            room = min(room, Int(UInt32.max))
            stream.pointee.next_in = available.baseAddress!.assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_in = uInt(availableIn)
            stream.pointee.next_out = (output.baseAddress! + produced).assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_out = uInt(room)
            let wantsPoint = limit == nil && position - lastPointOut >= span && input.offset >= retryAfterIn
            let status = inflate(stream, wantsPoint ? Z_BLOCK : Z_NO_FLUSH)
            let used = availableIn - Int(stream.pointee.avail_in)
            let made = room - Int(stream.pointee.avail_out)
            input.consume(used)
            if checksMember && made > 0 {
                memberCRC = GzipCRC.update(
                    memberCRC, UnsafeRawBufferPointer(start: output.baseAddress! + produced, count: made))
                memberLength &+= UInt32(truncatingIfNeeded: made)
            }
            produced += made
            position += Int64(made)
            switch status {
            case Z_OK:
                if wantsPoint { try considerPoint() }
            case Z_STREAM_END:
                members += 1
                if rawMode {
                    try input.skip(8)
                    rawMode = false
                } else if checksMember {
                    try checkTrailer()
                }
                checksMember = false
                atMemberBoundary = true
            case Z_BUF_ERROR:
                // No progress: the input chunk is used up (refilled above next time round).
                continue
            case Z_NEED_DICT:
                throw input.error(.corrupt("a preset dictionary is required, which gzip does not allow"))
            case Z_DATA_ERROR:
                throw dataError()
            case Z_MEM_ERROR:
                throw input.error(.corrupt("zlib ran out of memory"))
            default:
                throw input.error(.corrupt("zlib inflate status \(status)"))
            }
        }
        return produced
    }

    private func dataError() -> DecompressionError {
        let message = stream.pointee.msg.map { String(cString: $0) } ?? "invalid data"
        switch message {
        case "incorrect data check":
            return input.error(
                .corrupt("CRC-32 mismatch in the gzip member's trailer (incorrect data check)"), at: input.offset - 4)
        case "incorrect length check":
            return input.error(
                .corrupt("length mismatch in the gzip member's trailer (incorrect length check)"),
                at: input.offset - 4)
        default:
            return input.error(.corrupt(message))
        }
    }

    /// Compares the trailer zlib has just read past (CRC-32, then the length modulo 2^32, both
    /// little-endian) with the member's data.
    private func checkTrailer() throws(DecompressionError) {
        let (crc, length) = try input.consumedBytes(8).withUnsafeBytes {
            var reader = LittleEndianReader($0)
            return (reader.u32(), reader.u32())
        }
        guard crc == memberCRC else {
            throw input.error(
                .corrupt("CRC-32 mismatch in the gzip member's trailer (incorrect data check)"), at: input.offset - 8)
        }
        guard length == memberLength else {
            throw input.error(
                .corrupt("length mismatch in the gzip member's trailer (incorrect length check)"),
                at: input.offset - 4)
        }
    }

    /// At the end of a member (or the file's start): starts the next member, or returns false at
    /// the end of the data (an all-zero tail is padding).
    private func startMember() throws(DecompressionError) -> Bool {
        let magic = try input.peek(2)
        if magic == [0x1f, 0x8b] {
            // A member start needs no window, but it still costs its entry: the 5% rule holds
            // for files of many small members too.
            let cheap = input.offset - lastPointIn >= Self.costDivisor * Self.pointOverhead
            if limit == nil && (points.isEmpty || (position - lastPointOut >= span && cheap)) {
                points.append(
                    SeekPoint(compressedOffset: input.offset, uncompressedOffset: position, isMemberStart: true))
                lastPointIn = input.offset
                lastPointOut = position
            }
            inflateReset2(stream, 31)
            // zlib still reads the header and the trailer, and checks neither; checkTrailer
            // does, with a faster CRC-32. (An optional header CRC, FHCRC, goes unchecked: the
            // header's fields are read and used as zlib reads them, and the data's CRC covers
            // what matters.)
            inflateValidate(stream, 0)
            checksMember = true
            memberCRC = 0
            memberLength = 0
            atMemberBoundary = false
            return true
        }
        if limit != nil {
            throw input.error(.corrupt("no gzip member where the seek table expects uncompressed byte \(position)"))
        }
        if members == 0 {
            if [0x1f, 0x8b].starts(with: magic) { throw input.error(.truncated, at: input.end) }
            throw input.error(.corrupt("not a gzip header"))
        }
        if input.isAtEnd { return false }
        if try input.restIsZero() {
            input.seek(to: input.end)
            return false
        }
        throw input.error(.trailingGarbage)
    }

    /// At a deflate block boundary after `span` bytes: takes a checkpoint when it is cheap enough.
    private func considerPoint() throws(DecompressionError) {
        let dataType = stream.pointee.data_type
        // 128: just after a block's end (or the header); 64: in the last block, after which
        // there is nothing to resume.
        guard dataType & 0xc0 == 0x80 else { return }
        let compressedSince = input.offset - lastPointIn
        guard compressedSince >= Self.costDivisor * Self.pointOverhead else {
            retryAfterIn = lastPointIn + Self.costDivisor * Self.pointOverhead
            return
        }
        var window = [UInt8](repeating: 0, count: 32768)
        var length: uInt = 0
        _ = window.withUnsafeMutableBufferPointer { inflateGetDictionary(stream, $0.baseAddress, &length) }
        window.removeSubrange(Int(length)...)
        var point = SeekPoint(compressedOffset: input.offset, uncompressedOffset: position)
        point.windowLength = window.count
        if let compressed = window.withUnsafeBytes({ windowCompressor.compress($0) }) {
            point.storedWindow = compressed
            point.windowCoding = .zstd
        } else {
            point.storedWindow = window
        }
        let cost = Self.pointOverhead + Int64(point.storedWindow.count)
        guard cost * Self.costDivisor <= compressedSince else {
            retryAfterIn = lastPointIn + cost * Self.costDivisor
            return
        }
        point.bits = UInt8(dataType & 7)
        if point.bits > 0 { point.partialByte = try input.byteBefore() }
        points.append(point)
        lastPointIn = input.offset
        lastPointOut = position
    }

    func collectedPoints() throws(DecompressionError) -> [SeekPoint] {
        precondition(finished && limit == nil)
        // A point at the very end (an empty last member) leads nowhere.
        return points.enumerated().filter { $0.offset == 0 || $0.element.uncompressedOffset < position }.map(\.element)
    }
}
