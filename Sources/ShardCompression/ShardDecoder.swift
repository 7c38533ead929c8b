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
    /// The seek points collected by a forward pass that has reached the end.
    func collectedPoints() throws(DecompressionError) -> [SeekPoint]
}

/// How a decoder starts: a forward pass over the whole file, or a resumption at the table's
/// point `point` that stops at the data's end (the table's uncompressed size).
enum DecoderStart {
    case forward(span: Int64)
    case resume(SeekTable, point: Int)
}
