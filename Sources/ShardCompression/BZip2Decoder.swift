import CShardBZip2

/// bzip2 through libbz2, stream after stream (as `pbzip2` and `cat a.bz2 b.bz2` write them). Each
/// block's and stream's CRC is checked by the library. bzip2 has no entry points: a forward pass
/// only.
final class BZip2Decoder: ShardDecoder {
    let input: CompressedInput
    private(set) var position: Int64 = 0
    private let stream: UnsafeMutablePointer<bz_stream>
    private var initialized = false
    private var atStreamBoundary = true
    private var streams = 0
    private var finished = false

    init(input: CompressedInput) {
        self.input = input
        stream = .allocate(capacity: 1)
        stream.initialize(to: bz_stream())
    }

    deinit {
        if initialized { shardstore_bz2_decompress_end(stream) }
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    func produce(into output: UnsafeMutableRawBufferPointer) throws(DecompressionError) -> Int {
        var produced = 0
        while produced < output.count && !finished {
            if atStreamBoundary {
                if try !startStream() { finished = true }
                continue
            }
            if input.available.isEmpty {
                guard try input.refill() else { throw input.error(.truncated, at: input.end) }
            }
            let available = input.available
            let availableIn = min(available.count, Int(UInt32.max))
            let room = min(output.count - produced, Int(UInt32.max))
            stream.pointee.next_in = available.baseAddress!.assumingMemoryBound(to: CChar.self)
            stream.pointee.avail_in = UInt32(availableIn)
            stream.pointee.next_out = (output.baseAddress! + produced).assumingMemoryBound(to: CChar.self)
            stream.pointee.avail_out = UInt32(room)
            let status = shardstore_bz2_decompress(stream)
            let made = room - Int(stream.pointee.avail_out)
            input.consume(availableIn - Int(stream.pointee.avail_in))
            produced += made
            position += Int64(made)
            switch status {
            case BZ_OK:
                continue
            case BZ_STREAM_END:
                streams += 1
                atStreamBoundary = true
            case BZ_DATA_ERROR:
                throw input.error(.corrupt("bad block data or CRC mismatch"))
            case BZ_DATA_ERROR_MAGIC:
                throw input.error(.corrupt("bad stream header"))
            case BZ_MEM_ERROR:
                throw input.error(.corrupt("libbz2 ran out of memory"))
            default:
                throw input.error(.corrupt("libbz2 status \(status)"))
            }
        }
        return produced
    }

    private func startStream() throws(DecompressionError) -> Bool {
        let head = try input.peek(4)
        if head.count == 4 && head[0...2].elementsEqual([0x42, 0x5a, 0x68]) && (0x31...0x39).contains(head[3]) {
            guard shardstore_bz2_load() == 0 else {
                throw input.error(
                    .io(
                        "libbz2 cannot be loaded (\(String(cString: shardstore_bz2_error()))): install it (Debian: libbz2-1.0)"
                    ))
            }
            if initialized { shardstore_bz2_decompress_end(stream) }
            stream.pointee = bz_stream()
            let status = shardstore_bz2_decompress_init(stream, 0, 0)
            precondition(status == BZ_OK, "BZ2_bzDecompressInit failed (\(status)): out of memory")
            initialized = true
            atStreamBoundary = false
            return true
        }
        if streams == 0 {
            if [0x42, 0x5a, 0x68].starts(with: head.prefix(3)) && head.count < 4 {
                throw input.error(.truncated, at: input.end)
            }
            throw input.error(.corrupt("not a bzip2 stream header"))
        }
        if head.isEmpty { return false }
        throw input.error(.trailingGarbage)
    }

    func collectedPoints() throws(DecompressionError) -> [SeekPoint] { [] }
}
