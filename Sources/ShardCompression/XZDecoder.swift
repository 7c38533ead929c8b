import CShardLZMA
import ShardIO

#if canImport(Glibc)
    import Glibc
#endif

/// xz through liblzma. A forward pass decodes stream after stream (`lzma_stream_decoder`, which
/// checks every block's check and the index), allowing stream padding (zeros, a multiple of 4
/// bytes) between and after them; its seek points are the block starts, read afterwards from
/// the file's indexes (`lzma_file_info_decoder`). A resumption decodes block after block from
/// the table (`lzma_block_header_decode` + `lzma_block_decoder`).
final class XZDecoder: ShardDecoder {
    let input: CompressedInput
    private(set) var position: Int64
    private let stream: UnsafeMutablePointer<lzma_stream>
    /// Resuming: the block options and filters, which the block decoder keeps using while it
    /// decodes (so they live as long as the decoder).
    private let block: UnsafeMutablePointer<lzma_block>
    private let filters: UnsafeMutablePointer<lzma_filter>
    private static let filterSlots = Int(LZMA_FILTERS_MAX) + 1
    /// Resuming: the table and the point of the next block to start.
    private let table: SeekTable?
    private var nextBlock = 0
    private var atBoundary = true
    private var streams = 0
    private var finished = false

    private static let magic: [UInt8] = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]
    /// The most memory a file may make liblzma use (its dictionary, its index): 512 MiB. xz -9
    /// needs 65 MiB; a file asking for more is refused rather than allocated for.
    static let memoryLimit: UInt64 = 512 << 20
    /// LZMA_FILTER_LZMA1 and LZMA_FILTER_LZMA2 (macros Swift does not import).
    private static let lzmaFilterIDs: Set<UInt64> = [0x4000_0000_0000_0001, 0x21]

    init(input: CompressedInput, start: DecoderStart) {
        self.input = input
        stream = .allocate(capacity: 1)
        stream.initialize(to: lzma_stream())
        block = .allocate(capacity: 1)
        block.initialize(to: lzma_block())
        filters = .allocate(capacity: Self.filterSlots)
        filters.initialize(repeating: lzma_filter(id: UInt64.max, options: nil), count: Self.filterSlots)
        switch start {
        case .forward:
            table = nil
            position = 0
        case .resume(let table, let index):
            self.table = table
            nextBlock = index
            position = table.points[index].uncompressedOffset
        }
    }

    deinit {
        lzma_end(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
        freeFilterOptions()
        filters.deinitialize(count: Self.filterSlots)
        filters.deallocate()
        block.deinitialize(count: 1)
        block.deallocate()
    }

    /// Frees what `lzma_block_header_decode` allocated for the filters' options.
    private func freeFilterOptions() {
        for i in 0..<Self.filterSlots {
            free(filters[i].options)
            filters[i] = lzma_filter(id: UInt64.max, options: nil)
        }
    }

    func produce(into output: UnsafeMutableRawBufferPointer) throws(DecompressionError) -> Int {
        var produced = 0
        while produced < output.count && !finished {
            if let table, position >= table.uncompressedSize {
                finished = true
                break
            }
            if atBoundary {
                let started = table == nil ? try startStream() : try startBlock()
                if !started { finished = true }
                continue
            }
            if input.available.isEmpty {
                guard try input.refill() else { throw input.error(.truncated, at: input.end) }
            }
            let available = input.available
            var room = output.count - produced
            if let table { room = Int(min(Int64(room), table.uncompressedSize - position)) }
            stream.pointee.next_in = UnsafePointer(available.baseAddress!.assumingMemoryBound(to: UInt8.self))
            stream.pointee.avail_in = available.count
            stream.pointee.next_out = (output.baseAddress! + produced).assumingMemoryBound(to: UInt8.self)
            stream.pointee.avail_out = room
            let status = lzma_code(stream, LZMA_RUN)
            let made = room - stream.pointee.avail_out
            input.consume(available.count - stream.pointee.avail_in)
            produced += made
            position += Int64(made)
            switch status {
            case LZMA_OK, LZMA_BUF_ERROR:
                continue
            case LZMA_STREAM_END:
                streams += 1
                atBoundary = true
            default:
                throw input.error(.corrupt(Self.describe(status)))
            }
        }
        return produced
    }

    static func describe(_ status: lzma_ret) -> String {
        switch status {
        case LZMA_DATA_ERROR: "compressed data is corrupt (or a check does not match)"
        case LZMA_FORMAT_ERROR: "not an xz stream"
        case LZMA_OPTIONS_ERROR: "unsupported options"
        case LZMA_MEM_ERROR: "liblzma ran out of memory"
        case LZMA_MEMLIMIT_ERROR: "it needs more than \(memoryLimit >> 20) MiB of memory to decode"
        case LZMA_PROG_ERROR: "liblzma programming error"
        default: "liblzma status \(status.rawValue)"
        }
    }

    /// Forward: after a stream (or at the file's start), skips stream padding and starts the
    /// next stream, or returns false at the end of the file.
    private func startStream() throws(DecompressionError) -> Bool {
        if streams > 0 {
            let paddingStart = input.offset
            while true {
                let head = try input.peek(4096)
                let zeros = head.prefix(while: { $0 == 0 }).count
                try input.skip(Int64(zeros))
                if zeros < head.count || head.isEmpty { break }
            }
            if (input.offset - paddingStart) % 4 != 0 {
                throw input.error(
                    .corrupt("stream padding of \(input.offset - paddingStart) bytes, not a multiple of 4"))
            }
        }
        let head = try input.peek(Self.magic.count)
        if head == Self.magic {
            let status = lzma_stream_decoder(stream, Self.memoryLimit, 0)
            precondition(status == LZMA_OK, "lzma_stream_decoder failed (\(status.rawValue)): out of memory")
            atBoundary = false
            return true
        }
        if streams == 0 {
            if Self.magic.starts(with: head) { throw input.error(.truncated, at: input.end) }
            throw input.error(.corrupt("not an xz stream header"))
        }
        if head.isEmpty { return false }
        throw input.error(.trailingGarbage)
    }

    /// Resuming: starts the table's next block.
    private func startBlock() throws(DecompressionError) -> Bool {
        guard let table, nextBlock < table.points.count else {
            throw input.error(.corrupt("the seek table has no block at uncompressed byte \(position)"))
        }
        let point = table.points[nextBlock]
        guard point.uncompressedOffset == position else {
            throw input.error(
                .corrupt(
                    "the seek table's block \(nextBlock) starts at uncompressed byte \(point.uncompressedOffset), not \(position)"
                ))
        }
        input.seek(to: point.compressedOffset)
        let sizeByte = try input.peek(1)
        guard let first = sizeByte.first, first != 0 else {
            throw input.error(.corrupt("no block header where the seek table expects one"))
        }
        let headerSize = (Int(first) + 1) * 4
        let header = try input.peek(headerSize)
        guard header.count == headerSize else { throw input.error(.truncated, at: input.end) }
        // The previous block's decoder is done with these; the new one keeps `block` in use.
        freeFilterOptions()
        block.pointee = lzma_block()
        block.pointee.version = 1
        block.pointee.header_size = UInt32(headerSize)
        block.pointee.check = lzma_check(rawValue: UInt32(point.check))
        block.pointee.filters = filters
        var status = header.withUnsafeBufferPointer { lzma_block_header_decode(block, nil, $0.baseAddress) }
        if status == LZMA_OK {
            // The block decoder takes no memory limit: check the dictionary the header asks for.
            for i in 0..<Self.filterSlots where Self.lzmaFilterIDs.contains(filters[i].id) {
                if let options = filters[i].options?.assumingMemoryBound(to: lzma_options_lzma.self),
                    UInt64(options.pointee.dict_size) > Self.memoryLimit / 2
                {
                    status = LZMA_MEMLIMIT_ERROR
                }
            }
        }
        if status == LZMA_OK { status = lzma_block_decoder(stream, block) }
        guard status == LZMA_OK else {
            throw input.error(.corrupt("block header: \(Self.describe(status))"))
        }
        try input.skip(Int64(headerSize))
        nextBlock += 1
        atBoundary = false
        return true
    }

    /// The block starts from the file's indexes (every stream's), read from the end of the file.
    func collectedPoints() throws(DecompressionError) -> [SeekPoint] {
        precondition(finished && table == nil)
        // Heap-allocated, like every codec stream here: the library may keep its address.
        let decoder = UnsafeMutablePointer<lzma_stream>.allocate(capacity: 1)
        decoder.initialize(to: lzma_stream())
        defer {
            lzma_end(decoder)
            decoder.deinitialize(count: 1)
            decoder.deallocate()
        }
        // The decoder writes the index through this pointer at its end, calls later.
        let indexHolder = UnsafeMutablePointer<OpaquePointer?>.allocate(capacity: 1)
        indexHolder.initialize(to: nil)
        defer { indexHolder.deallocate() }
        let status = lzma_file_info_decoder(decoder, indexHolder, Self.memoryLimit, UInt64(input.end))
        precondition(status == LZMA_OK, "lzma_file_info_decoder failed (\(status.rawValue)): out of memory")
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 16)
        defer { chunk.deallocate() }
        var readAt: Int64 = 0
        var chunkCount = 0
        var chunkUsed = 0
        while true {
            if chunkUsed == chunkCount {
                let n = Int(min(Int64(chunk.count), max(0, input.end - readAt)))
                do {
                    chunkCount = try input.source.readAll(
                        into: UnsafeMutableRawBufferPointer(rebasing: chunk[0..<n]), at: readAt)
                } catch {
                    throw input.error(.io("\(error)"), at: readAt)
                }
                chunkUsed = 0
            }
            decoder.pointee.next_in = UnsafePointer(chunk.baseAddress!.assumingMemoryBound(to: UInt8.self) + chunkUsed)
            decoder.pointee.avail_in = chunkCount - chunkUsed
            let result = lzma_code(decoder, chunkCount == 0 ? LZMA_FINISH : LZMA_RUN)
            let used = chunkCount - chunkUsed - decoder.pointee.avail_in
            chunkUsed += used
            readAt += Int64(used)
            if result == LZMA_STREAM_END { break }
            if result == LZMA_SEEK_NEEDED {
                readAt = Int64(decoder.pointee.seek_pos)
                chunkCount = 0
                chunkUsed = 0
                continue
            }
            guard result == LZMA_OK else {
                throw input.error(.corrupt("the file's index: \(Self.describe(result))"), at: readAt)
            }
        }
        guard let index = indexHolder.pointee else {
            throw input.error(.corrupt("the file's index could not be read"), at: 0)
        }
        defer { lzma_index_end(index, nil) }
        var iterator = lzma_index_iter()
        lzma_index_iter_init(&iterator, index)
        var points: [SeekPoint] = []
        while lzma_index_iter_next(&iterator, LZMA_INDEX_ITER_BLOCK) == 0 {
            let uncompressed = Int64(iterator.block.uncompressed_file_offset)
            guard uncompressed < position else { continue }
            var point = SeekPoint(
                compressedOffset: Int64(iterator.block.compressed_file_offset), uncompressedOffset: uncompressed)
            point.check = UInt8(iterator.stream.flags.pointee.check.rawValue)
            // An empty block is no entry point: the next one replaces it.
            if points.last?.uncompressedOffset == uncompressed { points.removeLast() }
            points.append(point)
        }
        return points
    }
}
