import Foundation
import ShardCore
import ShardRemote
import ShardTestSupport
import Testing

/// Against a plain web server with Range, ETag and If-Match (tools/remote-test-server.py http).
@Suite struct HTTPServerTests {
    @Test func rangeGetsBatchesAndStreamsReturnTheFilesBytes() throws {
        let bytes = testBytes(5_000_000, seed: 7)
        let served = try ServedFile(bytes, as: "shard-000000.tar")
        let client = RemoteClient(configuration: RemoteConfiguration())
        let location = try RemoteLocation(parsing: served.url)

        let info = try client.stat(location)
        #expect(info.size == 5_000_000 && info.etag != nil && info.lastModified != nil)
        #expect(try readBytes(client, location, at: 0, count: 512, ifMatch: info.etag) == Array(bytes[..<512]))
        #expect(try readBytes(client, location, at: 4_999_000, count: 5000) == Array(bytes[4_999_000...]))
        #expect(try readBytes(client, location, at: 6_000_000, count: 10) == [])

        let ranges = (0..<64).map { i in (offset: Int64(i * 77_777), count: 1 + i * 97) }
        let arena = RangeArena(ranges.map(\.count))
        let results = client.readRanges(
            ranges.indices.map {
                RangeRequest(location: location, offset: ranges[$0].offset, buffer: arena[$0], ifMatch: info.etag)
            },
            maxInFlight: 8)
        for (i, r) in ranges.enumerated() {
            #expect(try results[i].get() == r.count)
            #expect(Array(arena[i]) == Array(bytes[Int(r.offset)..<(Int(r.offset) + r.count)]), "range \(i)")
        }

        // Read slowly in small pieces: the transfer pauses while the queue is full.
        let stream = try client.openStream(location, queueSize: 64 << 10)
        #expect(stream.info.size == 5_000_000 && stream.info.etag == info.etag)
        #expect(try readAll(stream, piece: 10_000) == bytes)
        #expect(stream.requests == 1)
    }

    @Test func theStreamIsAForwardRandomAccessSourceForTheScanner() throws {
        let bytes = testBytes(1_000_000, seed: 8)
        let served = try ServedFile(bytes)
        let stream = try RemoteClient(configuration: RemoteConfiguration()).openStream(
            .http(served.url), queueSize: 64 << 10)
        #expect(stream.byteCount == 1_000_000)
        var header = [UInt8](repeating: 0, count: 512)
        for offset in [0, 512, 300_000, 300_100, 999_900] {
            let n = try header.withUnsafeMutableBytes { try stream.read(into: $0, at: Int64(offset)) }
            #expect(Array(header[..<n]) == Array(bytes[offset..<min(offset + 512, bytes.count)]), "at \(offset)")
        }
        var pieces: [UInt8] = []
        #expect(throws: RemoteError.self) { try stream.forEachPiece(offset: 999_950, count: 100) { pieces += $0 } }
        #expect(throws: RemoteError.self) { _ = try header.withUnsafeMutableBytes { try stream.read(into: $0, at: 0) } }
    }

    /// A decompressor's input during ingest: forward reads come from the one stream; a read behind
    /// what it holds, or far ahead of it, is a range request with the stream's ETag, and the
    /// stream goes on where it was.
    @Test func streamedObjectBytesFallBackToRangeRequestsBehindAndFarAhead() throws {
        let bytes = testBytes(9_000_000, seed: 10)
        let served = try ServedFile(bytes)
        let client = RemoteClient(configuration: RemoteConfiguration())
        let stream = try client.openStream(.http(served.url), queueSize: 64 << 10)
        let source = StreamedObjectBytes(stream: stream, client: client)
        #expect(source.byteCount == 9_000_000)
        func read(_ offset: Int, _ count: Int) throws -> [UInt8] {
            var buffer = [UInt8](repeating: 0, count: count)
            let n = try buffer.withUnsafeMutableBytes { try source.read(into: $0, at: Int64(offset)) }
            return Array(buffer[..<n])
        }
        #expect(try read(0, 100_000) == Array(bytes[0..<100_000]))
        #expect(try read(100_000, 400_000) == Array(bytes[100_000..<500_000]))
        let held = stream.heldRange
        #expect(held.contains(499_999) && held.upperBound < 2_000_000)
        // Behind the stream's window (it keeps the last 64 KiB): a range request.
        #expect(try read(10, 20) == Array(bytes[10..<30]))
        #expect(stream.heldRange == held)
        // Far ahead (an xz index at the end of the file): a range request, the stream stays put.
        #expect(try read(8_999_000, 5000) == Array(bytes[8_999_000...]))
        #expect(stream.heldRange == held)
        // Close ahead: the stream reads on past the gap.
        #expect(try read(600_000, 1000) == Array(bytes[600_000..<601_000]))
        #expect(stream.heldRange.upperBound >= 601_000)
        #expect(stream.requests == 1)
        #expect(source.failure == nil)
    }

    @Test func aFileChangedAfterStatIsRefusedAsChanged() throws {
        let served = try ServedFile(testBytes(4096, seed: 9))
        let server = served.server
        let client = RemoteClient(configuration: RemoteConfiguration())
        let location = RemoteLocation.http(served.url)
        let info = try client.stat(location)
        try Data(testBytes(8192, seed: 10)).write(to: URL(fileURLWithPath: served.path))
        let error = remoteError { _ = try readBytes(client, location, at: 0, count: 512, ifMatch: info.etag) }
        #expect(
            error?.description
                == "\(server.baseURL)/s.tar: read of bytes 0-511 failed: shard changed since ingest; run ingest again "
                + "(its ETag is no longer \(info.etag!))")
        let missing = remoteError { _ = try client.stat(.http(server.baseURL + "/nope.tar")) }
        #expect(missing?.description.hasPrefix("\(server.baseURL)/nope.tar: stat failed: not found (HTTP 404)") == true)
    }
}

@Suite struct HTTPSTests {
    @Test func certificatesAreVerifiedAgainstTheSystemOrTheGivenCABundle() throws {
        let bytes = testBytes(100_000, seed: 11)
        let served = try ServedFile(bytes, mode: "https")
        let ca = served.caBundle
        let location = RemoteLocation.http(served.url)

        // The server's CA is not the system's: refused at once (not retried), saying what to do.
        let refused = remoteError { _ = try RemoteClient(configuration: RemoteConfiguration()).stat(location) }
        guard case .transport(let code, _) = refused?.kind else {
            Issue.record("expected a certificate error, got \(String(describing: refused))")
            return
        }
        #expect(code == 60)
        #expect(refused?.attempts == 1)
        #expect(refused?.description.contains("for a private CA give its certificates with --ca-bundle") == true)

        let client = RemoteClient(configuration: RemoteConfiguration(caBundle: ca))
        let info = try client.stat(location)
        #expect(info.size == 100_000)
        #expect(try readBytes(client, location, at: 99_000, count: 2000, ifMatch: info.etag) == Array(bytes[99_000...]))
        #expect(try readAll(try client.openStream(location)) == bytes)
    }
}

@Suite struct StreamScanTests {
    /// The ingest path in small: ShardCore's TarScanner pulls a remote shard through one GET and
    /// finds the same members, with the same bytes, as in the tar written.
    @Test func theTarScannerReadsARemoteShardInOnePass() throws {
        var tar = TarWriter(format: .pax)
        var written: [(name: String, data: [UInt8])] = []
        for i in 0..<300 {
            let data = testBytes(i % 7 == 0 ? 200_000 + i : 100 + i * 13, seed: UInt64(i))
            let name = "sample-\(100_000 + i).\(["jpg", "json", "cls"][i % 3])"
            tar.addFile(name, data)
            written.append((name, data))
        }
        tar.finish()
        let served = try ServedFile(tar.bytes, as: "shard-000000.tar")

        let stream = try RemoteClient(configuration: RemoteConfiguration()).openStream(
            .http(served.url), queueSize: 256 << 10)
        var scanner = TarScanner(stream)
        var found: [(name: String, data: [UInt8])] = []
        while let entry = try scanner.next() {
            var data: [UInt8] = []
            try stream.forEachPiece(offset: entry.dataOffset, count: entry.size) { data += $0 }
            found.append((String(decoding: entry.name, as: UTF8.self), data))
        }
        #expect(found.map(\.name) == written.map(\.name))
        #expect(found.map(\.data) == written.map(\.data))
        #expect(stream.requests == 1)
        #expect(stream.bytesReceived <= Int64(tar.bytes.count))
    }
}
