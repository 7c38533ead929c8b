import ShardCore

/// A remote object's bytes read front to back from the one GET that streams it (``RemoteStream``),
/// for a decompressor that reads its input in increasing offsets (an ingest's or a verify's pass
/// over a compressed shard). A read behind what the stream still holds, or far ahead of it (an xz
/// file's index, which the decoder reads from the end of the file once the data is done), is one
/// range request instead, sent with the stream's ETag, so the stream is never drained to reach it.
///
/// For one thread at a time.
///
/// ```swift
/// let stream = try client.openStream(location, ifMatch: etag)
/// let bytes = StreamedObjectBytes(stream: stream, client: client)
/// let reader = try DecompressingReader(source: CompressedSource(bytes, path: url), format: .gzip)
/// ```
public final class StreamedObjectBytes: RandomAccessBytes {
    /// The stream.
    public let stream: RemoteStream
    private let ranges: RemoteObjectBytes
    /// The failure behind the last read that threw (the stream's or a range request's), for a
    /// message that names the request rather than the decompressor.
    public private(set) var failure: RemoteError?

    /// How far past the newest byte received a read is still served by reading the stream on.
    public static let skipLimit: Int64 = 4 << 20

    /// Reads `stream`'s object; reads it cannot serve go to `client` as range requests.
    public init(stream: RemoteStream, client: RemoteClient) {
        self.stream = stream
        ranges = RemoteObjectBytes(client: client, info: stream.info)
    }

    /// The object's size (from the stream's answer).
    public var byteCount: Int64 { stream.byteCount }

    /// Copies up to `buffer.count` bytes at `offset`; fewer only at the object's end.
    ///
    /// - Throws: ``RemoteError`` (`.shardChanged` when the object was replaced).
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        let held = stream.heldRange
        do {
            if offset >= held.lowerBound && offset <= held.upperBound + Self.skipLimit {
                return try stream.read(into: buffer, at: offset)
            }
            return try ranges.read(into: buffer, at: offset)
        } catch let error as RemoteError {
            failure = error
            throw error
        }
    }
}
