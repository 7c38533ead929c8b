import ShardCore

/// One remote object as ``RandomAccessBytes``: every read is a range GET checked with
/// `If-Match` against the ETag it was opened with, so bytes of a replaced object are never
/// returned. The seed of the remote byte source for reads of indexed shards.
///
/// Thread-safe: many reader threads may read one object through one client at once.
///
/// ```swift
/// let shard = try RemoteObjectBytes(client: client, location: location)       // one HEAD
/// let shard = RemoteObjectBytes(client: client, info: recordedAtIngest)       // no request
/// var header = [UInt8](repeating: 0, count: 512)
/// _ = try header.withUnsafeMutableBytes { try shard.read(into: $0, at: 0) }
/// ```
public struct RemoteObjectBytes: RandomAccessBytes, Sendable {
    /// The client requests go through.
    public let client: RemoteClient
    /// The object, its size and the ETag every read is checked against.
    public let info: RemoteObjectInfo

    /// An object whose size and ETag are known (recorded at ingest).
    public init(client: RemoteClient, info: RemoteObjectInfo) {
        self.client = client
        self.info = info
    }

    /// An object as it is now (one HEAD request).
    ///
    /// - Throws: ``RemoteError`` from ``RemoteClient/stat(_:)``.
    public init(client: RemoteClient, location: RemoteLocation) throws(RemoteError) {
        self.init(client: client, info: try client.stat(location))
    }

    /// The object's size when it was stat'ed (or ingested).
    public var byteCount: Int64 { info.size }

    /// Reads up to `buffer.count` bytes at `offset` (fewer only at the object's end) with one
    /// range GET (none past the end).
    ///
    /// - Throws: ``RemoteError`` (`.shardChanged` when the object was replaced).
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        guard offset < info.size else { return 0 }
        let n = Int(min(Int64(buffer.count), info.size - offset))
        return try client.read(
            info.location, at: offset, into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<n]), ifMatch: info.etag)
    }
}
