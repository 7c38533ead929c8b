import Foundation
import ShardRemote
import ShardTestSupport
import Testing

/// Against moto's S3 on 127.0.0.1 with signature checking on (tools/remote-test-server.py s3):
/// every request must be signed with the IAM key the server made.
@Suite(.serialized, .motoServer) struct S3MotoTests {
    let server: TestServer
    let directory: TemporaryDirectory

    init() throws {
        server = try Moto.current
        directory = try TemporaryDirectory()
    }

    /// A configuration for the moto server with its key (or `secret` instead of its secret).
    func configuration(secret: String? = nil, token: String? = nil, anonymous: Bool = false) -> RemoteConfiguration {
        var c = RemoteConfiguration(endpoint: server.ready["endpoint"] as? String, region: "us-east-1")
        c.signing =
            anonymous
            ? .anonymous
            : .credentials(
                AWSCredentials(
                    accessKeyID: server.ready["access_key_id"] as! String,
                    secretAccessKey: secret ?? server.ready["secret_access_key"] as! String, sessionToken: token))
        c.retry = RetryPolicy(maxAttempts: 3, initialDelay: 0.05, maxDelay: 0.2, totalSeconds: 10)
        return c
    }

    /// Makes `bucket` and uploads `bytes` as `key`; returns the ETag moto gives it.
    @discardableResult
    func put(_ bytes: [UInt8], bucket: String, key: String) throws -> String {
        let file = directory.path + "/upload-\(UUID().uuidString)"
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        return try server.command(["op": "put", "bucket": bucket, "key": key, "file": file])["etag"] as! String
    }

    @Test func signedStatRangesBatchesAndStreamsReturnTheObjectsBytes() throws {
        try server.command(["op": "bucket", "bucket": "shards-read"])
        let bytes = testBytes(3_000_000, seed: 1)
        let etag = try put(bytes, bucket: "shards-read", key: "train/shard 000001&.tar")
        let client = RemoteClient(configuration: configuration())
        let location = RemoteLocation.s3(bucket: "shards-read", key: "train/shard 000001&.tar")

        let info = try client.stat(location)
        #expect(info.size == 3_000_000)
        #expect(info.etag == etag)
        #expect(info.lastModified != nil)

        #expect(try readBytes(client, location, at: 0, count: 512, ifMatch: etag) == Array(bytes[0..<512]))
        #expect(try readBytes(client, location, at: 1_234_567, count: 100_000) == Array(bytes[1_234_567..<1_334_567]))
        #expect(try readBytes(client, location, at: 2_999_990, count: 100) == Array(bytes[2_999_990...]))
        #expect(try readBytes(client, location, at: 3_000_000, count: 10) == [])

        // A batch with 8 in flight: every range lands in its own buffer.
        let ranges = (0..<40).map { i in (offset: Int64(i * 70_001), count: 5000 + i) }
        let arena = RangeArena(ranges.map(\.count))
        let results = client.readRanges(
            ranges.indices.map {
                RangeRequest(location: location, offset: ranges[$0].offset, buffer: arena[$0], ifMatch: etag)
            },
            maxInFlight: 8)
        for (i, r) in ranges.enumerated() {
            #expect(try results[i].get() == r.count)
            #expect(Array(arena[i]) == Array(bytes[Int(r.offset)..<(Int(r.offset) + r.count)]), "range \(i)")
        }

        let stream = try client.openStream(location, queueSize: 256 << 10)
        #expect(stream.info.size == 3_000_000 && stream.info.etag == etag)
        #expect(try readAll(stream, piece: 77_777) == bytes)
        #expect(stream.requests == 1)

        // Through RandomAccessBytes, as a reader of indexed shards would.
        let object = RemoteObjectBytes(client: client, info: info)
        var header = [UInt8](repeating: 0, count: 1024)
        let n = try header.withUnsafeMutableBytes { try object.read(into: $0, at: 2_999_500) }
        #expect(n == 500 && Array(header[..<500]) == Array(bytes[2_999_500...]))
    }

    @Test func aWrongSecretIsA403ThatNamesTheURLAndNeverTheSecret() throws {
        try server.command(["op": "bucket", "bucket": "shards-denied"])
        try put([1, 2, 3], bucket: "shards-denied", key: "k.tar")
        let secret = "WRONG-secret/+abcdefghijklmnopqrstuvwxyz"
        let client = RemoteClient(configuration: configuration(secret: secret))
        let location = RemoteLocation.s3(bucket: "shards-denied", key: "k.tar")
        for error in [
            remoteError { _ = try readBytes(client, location, at: 0, count: 3) },
            remoteError { _ = try client.stat(location) },
            remoteError { _ = try client.listObjects(bucket: "shards-denied", prefix: "") },
            remoteError { _ = try client.openStream(location) },
        ] {
            guard let error else { continue }
            guard case .accessDenied(403, _, _, false) = error.kind else {
                Issue.record("expected a 403, got \(error)")
                continue
            }
            #expect(error.attempts == 1, "a 403 is not retried")
            let text = error.description
            #expect(text.hasPrefix("s3://shards-denied/"), "\(text)")
            #expect(text.contains("\(server.baseURL)/shards-denied"))
            #expect(
                text.contains("check the credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)"))
            #expect(text.contains("this machine's clock"))
            #expect(!text.contains(secret), "\(text)")
            #expect(!"\(error.kind)".contains(secret))
        }

        // A session token the server does not know: refused (so it was sent), and not shown.
        let token = "SESSION-token-0123456789"
        let withToken = RemoteClient(configuration: configuration(token: token))
        let refused = remoteError { _ = try readBytes(withToken, location, at: 0, count: 3) }
        #expect(refused != nil)
        #expect(refused?.description.contains(token) == false)
    }

    @Test func temporaryCredentialsSignWithTheirSessionToken() throws {
        try server.command(["op": "bucket", "bucket": "shards-session"])
        try put([7, 8, 9], bucket: "shards-session", key: "k.tar")
        let session = try server.command(["op": "session"])
        var c = configuration()
        c.signing = .credentials(
            AWSCredentials(
                accessKeyID: session["access_key_id"] as! String,
                secretAccessKey: session["secret_access_key"] as! String,
                sessionToken: (session["session_token"] as! String)))
        #expect(
            try readBytes(RemoteClient(configuration: c), .s3(bucket: "shards-session", key: "k.tar"), at: 1, count: 5)
                == [8, 9])
    }

    @Test func anObjectReplacedAfterStatIsRefusedAsChanged() throws {
        try server.command(["op": "bucket", "bucket": "shards-changed"])
        let location = RemoteLocation.s3(bucket: "shards-changed", key: "shard-000000.tar")
        try put(testBytes(10_000, seed: 2), bucket: "shards-changed", key: "shard-000000.tar")
        let client = RemoteClient(configuration: configuration())
        let before = try client.stat(location)
        try put(testBytes(10_000, seed: 3), bucket: "shards-changed", key: "shard-000000.tar")

        let expected =
            "s3://shards-changed/shard-000000.tar (\(server.baseURL)/shards-changed/shard-000000.tar): read of bytes "
            + "0-99 failed: shard changed since ingest; run ingest again (its ETag is no longer \(before.etag!))"
        let error = remoteError { _ = try readBytes(client, location, at: 0, count: 100, ifMatch: before.etag) }
        #expect(error?.description == expected)
        #expect(error?.isShardChanged == true)

        let arena = RangeArena([10])
        let batch = client.readRanges([
            RangeRequest(location: location, offset: 5, buffer: arena[0], ifMatch: before.etag)
        ])
        #expect(throws: RemoteError.self) { try batch[0].get() }
        if case .failure(let e) = batch[0] { #expect(e.isShardChanged) }

        let stream = remoteError { _ = try client.openStream(location, ifMatch: before.etag) }
        #expect(stream?.isShardChanged == true)
        // The new version reads fine with its own ETag.
        let after = try client.stat(location)
        #expect(
            try readBytes(client, location, at: 0, count: 10, ifMatch: after.etag)
                == Array(testBytes(10_000, seed: 3)[..<10]))
    }

    @Test func listingFollowsContinuationTokensUnderAPrefix() throws {
        try server.command(["op": "bucket", "bucket": "shards-list"])
        var keys = (0..<23).map { "train/shard-\(String($0 + 1_000_000).dropFirst()).tar" }
        keys += ["train/odd & <name> é.tar"]
        for key in keys { try put(Array(key.utf8), bucket: "shards-list", key: key) }
        for key in ["val/shard-000000.tar", "trainX.tar", "README"] { try put([0], bucket: "shards-list", key: key) }
        let client = RemoteClient(configuration: configuration())

        let firstPage = try client.listPage(bucket: "shards-list", prefix: "train/", maxKeys: 5)
        #expect(firstPage.objects.count == 5 && firstPage.isTruncated && firstPage.nextContinuationToken != nil)

        let listed = try client.listObjects(bucket: "shards-list", prefix: "train/", pageSize: 5)
        #expect(listed.map(\.location) == keys.sorted().map { .s3(bucket: "shards-list", key: $0) })
        #expect(listed.map(\.size) == keys.sorted().map { Int64($0.utf8.count) })
        #expect(listed.allSatisfy { $0.etag?.hasPrefix("\"") == true && $0.lastModified != nil })
        #expect(try client.listObjects(bucket: "shards-list", prefix: "nothing/").isEmpty)
        #expect(try client.listObjects(bucket: "shards-list", prefix: "").count == keys.count + 3)

        // A prefix and a key that need percent-encoding are signed as the server canonicalizes them.
        let odd = try client.listObjects(bucket: "shards-list", prefix: "train/odd & <na")
        #expect(odd.map(\.location) == [.s3(bucket: "shards-list", key: "train/odd & <name> é.tar")])
        #expect(try client.stat(odd[0].location).size == Int64("train/odd & <name> é.tar".utf8.count))
        #expect(try readBytes(client, odd[0].location, at: 6, count: 3, ifMatch: odd[0].etag) == Array("odd".utf8))

        let missing = remoteError { _ = try client.listObjects(bucket: "no-such-bucket-here", prefix: "") }
        guard case .notFound(let code, _) = missing?.kind else {
            Issue.record("expected a 404, got \(String(describing: missing))")
            return
        }
        #expect(code == "NoSuchBucket")
    }

    @Test func aMissingKeyIsA404NamingTheKeyAndWhatToCheck() throws {
        try server.command(["op": "bucket", "bucket": "shards-missing"])
        let client = RemoteClient(configuration: configuration())
        let error = remoteError {
            _ = try readBytes(client, .s3(bucket: "shards-missing", key: "gone.tar"), at: 0, count: 10)
        }
        #expect(error?.attempts == 1)
        #expect(
            error?.description
                == "s3://shards-missing/gone.tar (\(server.baseURL)/shards-missing/gone.tar): read of bytes 0-9 failed: "
                + "not found (HTTP 404 NoSuchKey: The specified key does not exist.); check the bucket name and the key "
                + "(and the endpoint: AWS_ENDPOINT_URL or --endpoint)")
    }

    @Test func anonymousRequestsToAPrivateBucketFail() throws {
        try server.command(["op": "bucket", "bucket": "shards-private"])
        try put([1, 2, 3], bucket: "shards-private", key: "k.tar")
        var c = configuration(anonymous: true)
        c.retry = .none
        // moto answers an unsigned request with an error (a 500 from its missing Authorization
        // header in the version tested); what matters is that no bytes come back.
        let error = remoteError {
            _ = try readBytes(
                RemoteClient(configuration: c), .s3(bucket: "shards-private", key: "k.tar"), at: 0, count: 3)
        }
        #expect(error != nil)
    }
}
