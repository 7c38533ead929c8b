/// A decoder of a compressed shard's data from an entry point on: the file's start for a
/// ``DecompressingReader`` (which also checks what follows the last stream and collects seek
/// points), or a ``SeekPoint`` for a ``SeekableReader`` cursor (which stops at the data's end).
protocol ShardDecoder: AnyObject {
    /// The compressed input, with the offset of the next unconsumed byte.
    var input: CompressedInput { get }
    /// The uncompressed offset of the next byte ``produce(into:)`` writes.
    var position: Int64 { get }
    /// Fills `output` as far as the data goes; returns fewer bytes only at the end of the data,
    /// 0 once there.
    func produce(into output: UnsafeMutableRawBufferPointer) throws(DecompressionError) -> Int
    /// Fills `output`, a chunk of a ``ReadAheadReader`` that stays unchanged until the next
    /// chunk is full, as far as the data goes: all of it (as ``produce(into:)``), or less when the
    /// decoder writes whole blocks in place and the next one may not fit (zstd, after
    /// ``ZstdDecoder/decodeInPlace(chunkSize:)``). `ended`: the data ended (nothing more comes).
    /// `failure`: what stopped the decoding after `count` good bytes.
    func produceChunk(into output: UnsafeMutableRawBufferPointer) -> (
        count: Int, ended: Bool, failure: DecompressionError?
    )
    /// The seek points collected by a forward pass that has reached the end.
    func collectedPoints() throws(DecompressionError) -> [SeekPoint]
}

extension ShardDecoder {
    func produceChunk(into output: UnsafeMutableRawBufferPointer) -> (
        count: Int, ended: Bool, failure: DecompressionError?
    ) {
        var count = 0
        while count < output.count {
            do {
                let n = try produce(into: UnsafeMutableRawBufferPointer(rebasing: output[count...]))
                if n == 0 { return (count, true, nil) }
                count += n
            } catch {
                return (count, false, error)
            }
        }
        return (count, false, nil)
    }
}

/// How a decoder starts: a forward pass over the whole file, or a resumption at the table's
/// point `point` that stops at the data's end (the table's uncompressed size).
enum DecoderStart {
    case forward(span: Int64)
    case resume(SeekTable, point: Int)
}
