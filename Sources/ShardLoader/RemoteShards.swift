import ShardCore
import ShardIO
import ShardIndex
import ShardRemote

/// A dataset's remote shards (in S3-compatible storage or behind an HTTP(S) URL) and the client
/// that reads them: each read is one range request, sent with `If-Match` and the ETag recorded at
/// ingest, so that an object replaced since is refused (HTTP 412) rather than read.
///
/// ``FileSource`` reads a remote shard as it reads a local one, through ``read(_:into:at:)``:
/// one request for a sample's adjacent members with their headers, whose checks then run as for
/// any shard.
///
/// Safe to share between threads (the client keeps a connection per concurrent reader).
final class RemoteShards: Sendable {
    /// One remote shard: its record and where it lives.
    struct Shard: Sendable {
        let record: ShardRecord
        let location: RemoteLocation
    }

    /// The shards, by shard number (the dataset's numbering); nil for a local shard.
    let infos: [Shard?]
    let client: RemoteClient

    /// The remote shards among `records` and a client for them (from `configuration`, else from
    /// the environment and the AWS files, as the AWS tools read them); nil when no used shard is
    /// remote.
    ///
    /// - Throws: ``DatasetError`` (`.invalidArgument`) for a stored location that does not parse,
    ///   or a configuration that cannot be resolved (a named profile that does not exist); (`.corrupt`)
    ///   for a remote shard recorded as compressed (not readable yet).
    static func make(records: [ShardRecord], used: [Bool], configuration: RemoteConfiguration?, indexPath: String)
        throws -> RemoteShards?
    {
        guard records.indices.contains(where: { used[$0] && RemoteLocation.hasRemoteScheme(records[$0].path) }) else {
            return nil
        }
        var infos: [Shard?] = []
        for r in records {
            guard RemoteLocation.hasRemoteScheme(r.path) else {
                infos.append(nil)
                continue
            }
            let location: RemoteLocation
            do { location = try RemoteLocation(parsing: r.path) } catch {
                throw DatasetError(
                    .corrupt,
                    "the index records shard '\(MessageText.escaped(r.path))' at a location that cannot be used (\(error)); ingest it again"
                )
            }
            guard !r.isCompressed else {
                throw DatasetError(
                    .corrupt,
                    "remote shard '\(MessageText.escaped(r.path))' is \(r.compression)-compressed, which this build reads only from local files; copy it here, or store it uncompressed"
                )
            }
            infos.append(Shard(record: r, location: location))
        }
        let resolved: RemoteConfiguration
        if let configuration {
            resolved = configuration
        } else {
            do { resolved = try RemoteConfiguration.resolve() } catch {
                throw DatasetError(.invalidArgument, "\(error)")
            }
        }
        return RemoteShards(infos: infos, client: RemoteClient(configuration: resolved), indexPath: indexPath)
    }

    private let indexPath: String

    private init(infos: [Shard?], client: RemoteClient, indexPath: String) {
        self.infos = infos
        self.client = client
        self.indexPath = indexPath
    }

    /// The same shards for a child process after `fork()`: a client without the parent's
    /// connections.
    func forChildProcess() -> RemoteShards {
        RemoteShards(infos: infos, client: client.forChildProcess(), indexPath: indexPath)
    }

    /// Whether shard `n` is remote.
    @inline(__always)
    func isRemote(_ n: Int) -> Bool { infos[n] != nil }

    /// The number of remote shards among the used ones.
    func count(used: [Bool]) -> Int { infos.indices.filter { used[$0] && infos[$0] != nil }.count }

    /// Reads up to `buffer.count` bytes of remote shard `n` at `offset` with one range request
    /// (fewer only at the end of the object); nil when shard `n` is not remote.
    ///
    /// - Throws: ``ShardChangedError`` when the object is no longer the one ingested (its ETag
    ///   or size changed); `RemoteError` when the request fails after its retries.
    func read(_ n: Int, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int? {
        guard let shard = infos[n] else { return nil }
        let size = shard.record.size
        guard offset < size else { return 0 }
        let wanted = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<Int(min(Int64(buffer.count), size - offset))])
        let failure: RemoteError
        do {
            return try client.read(shard.location, at: offset, into: wanted, ifMatch: shard.record.etag)
        } catch {
            failure = error
        }
        guard failure.isShardChanged else { throw failure }
        throw ShardChangedError(
            path: shard.record.path,
            detail: "its ETag is no longer \(shard.record.etag ?? "the one recorded"): the object was replaced",
            indexPath: indexPath)
    }
}
