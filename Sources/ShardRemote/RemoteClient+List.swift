/// One page of a bucket listing (ListObjectsV2).
public struct ListPage: Sendable, Equatable {
    /// The objects on this page, in the server's (UTF-8 binary) key order.
    public var objects: [RemoteObjectInfo]
    /// Whether more pages follow.
    public var isTruncated: Bool
    /// The token that asks for the next page (when ``isTruncated``).
    public var nextContinuationToken: String?
}

extension RemoteClient {
    /// Every object in `bucket` whose key starts with `prefix`, across all pages.
    ///
    /// ```swift
    /// let shards = try client.listObjects(bucket: "datasets", prefix: "train/shard-")
    /// ```
    ///
    /// - Parameter pageSize: keys per request (`max-keys`; the server's default, 1000, when nil).
    /// - Throws: ``RemoteError`` (for example `.notFound` with code `NoSuchBucket`).
    /// - Complexity: one request per page.
    public func listObjects(bucket: String, prefix: String, pageSize: Int? = nil) throws(RemoteError)
        -> [RemoteObjectInfo]
    {
        var all: [RemoteObjectInfo] = []
        var token: String?
        repeat {
            let page = try listPage(bucket: bucket, prefix: prefix, continuationToken: token, maxKeys: pageSize)
            all += page.objects
            if page.isTruncated && (page.nextContinuationToken ?? "").isEmpty {
                throw RemoteError(
                    .badResponse("a truncated listing without a NextContinuationToken"),
                    url: "s3://\(bucket)/\(prefix)",
                    operation: "list")
            }
            token = page.isTruncated ? page.nextContinuationToken : nil
        } while token != nil
        return all
    }

    /// One page of the listing of `bucket` under `prefix` (`GET /bucket?list-type=2`).
    ///
    /// - Throws: ``RemoteError``; `.badResponse` when the answer is not a ListBucketResult.
    /// - Complexity: one request.
    public func listPage(bucket: String, prefix: String, continuationToken: String? = nil, maxKeys: Int? = nil)
        throws(RemoteError) -> ListPage
    {
        // Parameters in canonical form (sorted by name, values AWS-encoded), so the URL is signed
        // the same whatever libcurl does with query strings.
        var parameters: [(String, String)] = [("list-type", "2"), ("prefix", prefix)]
        if let continuationToken { parameters.append(("continuation-token", continuationToken)) }
        if let maxKeys { parameters.append(("max-keys", String(maxKeys))) }
        let query = parameters.sorted { $0.0 < $1.0 }.map { "\($0.0)=\(awsPercentEncoded($0.1, keepSlash: false))" }
            .joined(separator: "&")
        let location = RemoteLocation.s3(bucket: bucket, key: "")
        let spec = try request(for: location, method: .get, headers: [], operation: "list of '\(prefix)'", query: query)
        let transfer = try perform(spec) { Transfer(sink: .collect(limit: 64 << 20)) }
        do {
            return try Self.parseListing(transfer.body, bucket: bucket)
        } catch {
            throw RemoteError(
                .badResponse("the listing is not a ListBucketResult (\(error.reason) at byte \(error.offset))"),
                url: spec.displayURL, operation: spec.operation)
        }
    }

    /// Parses a ListObjectsV2 answer: each `Contents`' Key, Size, ETag and LastModified;
    /// IsTruncated; NextContinuationToken.
    static func parseListing(_ body: [UInt8], bucket: String) throws(MiniXML.Malformed) -> ListPage {
        var page = ListPage(objects: [], isTruncated: false, nextContinuationToken: nil)
        var sawRoot = false
        var key: String?
        var size: Int64?
        var etag: String?
        var modified: String?
        do {
            try MiniXML.forEachElement(body) { path, text in
                guard path.first == "ListBucketResult" else { return }
                switch path.dropFirst().joined(separator: "/") {
                case "": sawRoot = true
                case "IsTruncated": page.isTruncated = text == "true"
                case "NextContinuationToken": page.nextContinuationToken = text
                case "Contents/Key": key = text
                case "Contents/Size": size = Int64(text)
                case "Contents/ETag": etag = text
                case "Contents/LastModified": modified = text
                case "Contents":
                    guard let k = key, let s = size else {
                        throw MiniXML.Malformed(reason: "a Contents element without Key or Size", offset: 0)
                    }
                    page.objects.append(
                        RemoteObjectInfo(
                            location: .s3(bucket: bucket, key: k), size: s, etag: etag,
                            lastModified: modified.flatMap(HTTPDate.parse), lastModifiedText: modified))
                    (key, size, etag, modified) = (nil, nil, nil, nil)
                default: break
                }
            }
        } catch let error as MiniXML.Malformed {
            throw error
        } catch {
            throw MiniXML.Malformed(reason: "\(error)", offset: 0)
        }
        guard sawRoot else { throw MiniXML.Malformed(reason: "no ListBucketResult element", offset: 0) }
        return page
    }
}
