import ShardCore
import ShardIO
import ShardRemote

#if canImport(Glibc)
    import Glibc
#endif

/// The objects remote shard arguments name: brace ranges expand without a request; a wildcard in
/// an S3 key lists the bucket under the key's prefix before its first wildcard (ListObjectsV2)
/// and keeps the keys the pattern matches, as a shell would (`*` and `?` stop at `/`); a plain
/// location is looked up with one HEAD request.
enum RemoteShardList {
    /// Every object `arguments` name, in argument order (a listing's keys in key order), each
    /// once, with its size, ETag and modification time.
    ///
    /// ```swift
    /// let objects = try RemoteShardList.expand(["s3://data/train/shard-{000000..000009}.tar"], client: client)
    /// ```
    ///
    /// - Throws: ``IngestError`` (`.remoteNoMatch` for a pattern that matches nothing or a
    ///   wildcard in an `http(s)` URL; `.remoteFailed` when a request fails, a 404 included).
    /// - Complexity: one listing per wildcard word (a page per 1,000 keys); one HEAD per plain word.
    static func expand(_ arguments: [String], client: RemoteClient) throws(IngestError) -> [RemoteObjectInfo] {
        var out: [RemoteObjectInfo] = []
        var seen = Set<String>()
        for argument in arguments {
            let words: [String]
            do { words = try BraceExpansion.expand(argument) } catch {
                throw .remoteNoMatch(pattern: argument, reason: "\(error)")
            }
            for word in words {
                for info in try objects(word, argument: argument, client: client)
                where seen.insert(info.location.description).inserted {
                    out.append(info)
                }
            }
        }
        return out
    }

    /// The objects one brace-expanded word names.
    private static func objects(_ word: String, argument: String, client: RemoteClient) throws(IngestError)
        -> [RemoteObjectInfo]
    {
        let location: RemoteLocation
        do { location = try RemoteLocation(parsing: word) } catch { throw .remoteFailed(error) }
        switch location {
        case .http(let url):
            guard !ShardPatterns.isGlob(String(pathPart(of: url))) else {
                throw .remoteNoMatch(
                    pattern: argument,
                    reason:
                        "a wildcard in an http(s) URL cannot be expanded (a web server cannot be listed); name the shards with a brace range ('shard-{000000..000099}.tar')"
                )
            }
            do { return [try client.stat(location)] } catch { throw .remoteFailed(error) }
        case .s3(let bucket, let key):
            guard ShardPatterns.isGlob(key) else {
                do { return [try client.stat(location)] } catch { throw .remoteFailed(error) }
            }
            let prefix = String(key.prefix { !"*?[".contains($0) })
            let listed: [RemoteObjectInfo]
            do { listed = try client.listObjects(bucket: bucket, prefix: prefix) } catch { throw .remoteFailed(error) }
            let matched = listed.filter { info in
                guard case .s3(_, let candidate) = info.location else { return false }
                return fnmatch(key, candidate, FNM_PATHNAME) == 0
            }
            .sorted { $0.location.description < $1.location.description }
            guard !matched.isEmpty else {
                throw .remoteNoMatch(
                    pattern: argument,
                    reason:
                        "no object in bucket '\(bucket)' matches '\(key)' (\(listed.count) listed under the prefix '\(prefix)'); check the bucket, the prefix and the pattern (`aws s3 ls s3://\(bucket)/\(prefix)`)"
                )
            }
            return matched
        }
    }

    /// The path of an `http(s)` URL (what follows its authority), without a query.
    private static func pathPart(of url: String) -> Substring {
        var rest = Substring(url)
        if let scheme = rest.firstRange(of: "://") { rest = rest[scheme.upperBound...] }
        rest = rest.drop { $0 != "/" }
        if let query = rest.firstIndex(of: "?") { rest = rest[..<query] }
        return rest
    }
}
