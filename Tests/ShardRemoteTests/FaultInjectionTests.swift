import Foundation
import ShardIO
import ShardTestSupport
import Synchronization
import Testing

@testable import ShardRemote

/// Against tools/remote-test-server.py faults: objects behind 503s, dropped and cut connections,
/// and stalls; and a port nothing listens on.
@Suite struct FaultInjectionTests {
    static let quickRetries = RetryPolicy(maxAttempts: 5, initialDelay: 0.05, maxDelay: 0.2, totalSeconds: 10)

    func client(retry: RetryPolicy = quickRetries, lowSpeedSeconds: Int = 30) -> RemoteClient {
        var c = RemoteConfiguration(retry: retry, connectTimeout: 2)
        c.lowSpeedSeconds = lowSpeedSeconds
        return RemoteClient(configuration: c)
    }

    /// How many requests the faults server has had for `path`.
    func requestCount(_ server: TestServer, _ path: String) throws -> Int {
        let bytes = try readBytes(client(), .http(server.baseURL + "/_count" + path), at: 0, count: 32)
        return Int(String(decoding: bytes, as: UTF8.self))!
    }

    @Test func retriesThrough503sAndDroppedConnections() throws {
        let server = try TestServer("faults")
        defer { server.stop() }
        let c = client()
        #expect(
            try readBytes(c, .http(server.baseURL + "/503/3/100000/a"), at: 1000, count: 500)
                == Array(faultBytes(100_000)[1000..<1500]))
        #expect(try requestCount(server, "/503/3/100000/a") == 4)
        #expect(
            try readBytes(c, .http(server.baseURL + "/drop/2/100000/b"), at: 0, count: 100)
                == Array(faultBytes(100_000)[..<100]))
        #expect(try requestCount(server, "/drop/2/100000/b") == 3)
        #expect(try c.stat(.http(server.baseURL + "/503/2/777/c")).size == 777)

        // A batch: each range retried on its own.
        let paths = (0..<6).map { "/\($0 % 2 == 0 ? "503" : "drop")/\($0 % 3)/50000/batch\($0)" }
        let arena = RangeArena(Array(repeating: 1000, count: paths.count))
        let results = c.readRanges(
            paths.indices.map {
                RangeRequest(location: .http(server.baseURL + paths[$0]), offset: 2000, buffer: arena[$0])
            },
            maxInFlight: 3)
        for i in paths.indices {
            #expect(try results[i].get() == 1000)
            #expect(Array(arena[i]) == Array(faultBytes(50_000)[2000..<3000]))
            #expect(try requestCount(server, paths[i]) == i % 3 + 1)
        }
    }

    @Test func aStreamCutShortResumesFromWhereItBroke() throws {
        let server = try TestServer("faults")
        defer { server.stop() }
        let stream = try client().openStream(.http(server.baseURL + "/cut/2/3000000/s"), queueSize: 128 << 10)
        #expect(try readAll(stream) == faultBytes(3_000_000))
        #expect(stream.requests == 3)
        #expect(stream.bytesReceived == 3_000_000)
    }

    @Test func aWeakETagIsNotSentAsIfMatch() throws {
        let server = try TestServer("faults")
        defer { server.stop() }
        let c = client()
        let location = RemoteLocation.http(server.baseURL + "/weak/0/5000/w")
        let info = try c.stat(location)
        #expect(info.etag == "W/\"fault-5000\"")
        #expect(try readBytes(c, location, at: 10, count: 10, ifMatch: info.etag) == Array(faultBytes(5000)[10..<20]))
        #expect(try readAll(try c.openStream(location, ifMatch: info.etag)) == faultBytes(5000))
        // A strong ETag that no longer matches is refused.
        let strong = RemoteLocation.http(server.baseURL + "/ok/0/5000/s")
        let error = remoteError { _ = try readBytes(c, strong, at: 0, count: 10, ifMatch: "\"fault-4999\"") }
        #expect(error?.isShardChanged == true)
    }

    @Test func retriesStopAtTheBudgetWithTheLastError() throws {
        let server = try TestServer("faults")
        defer { server.stop() }
        let policy = RetryPolicy(maxAttempts: 4, initialDelay: 0.05, maxDelay: 0.1, totalSeconds: 10)
        let error = remoteError {
            _ = try readBytes(client(retry: policy), .http(server.baseURL + "/503/100/1000/x"), at: 0, count: 10)
        }
        #expect(
            error?.description
                == "\(server.baseURL)/503/100/1000/x: read of bytes 0-9 failed after 4 attempts: HTTP 503 SlowDown: try again"
        )
        #expect(try requestCount(server, "/503/100/1000/x") == 4)

        // The time budget ends retries before the attempts do.
        let slow = RetryPolicy(maxAttempts: 100, initialDelay: 0.2, maxDelay: 0.2, totalSeconds: 0.5)
        let start = Date()
        let timed = remoteError {
            _ = try readBytes(client(retry: slow), .http(server.baseURL + "/503/100/1000/y"), at: 0, count: 10)
        }
        #expect(Date().timeIntervalSince(start) < 3)
        #expect((timed?.attempts ?? 100) < 6)
    }

    @Test func aDeadServerGivesAClearErrorAfterTheBudget() throws {
        let port = try closedPort()
        let policy = RetryPolicy(maxAttempts: 3, initialDelay: 0.05, maxDelay: 0.1, totalSeconds: 10)
        let error = remoteError {
            _ = try readBytes(client(retry: policy), .http("http://127.0.0.1:\(port)/x.tar"), at: 0, count: 10)
        }
        guard case .transport(7, _) = error?.kind else {
            Issue.record("expected curl error 7, got \(String(describing: error))")
            return
        }
        #expect(error?.attempts == 3)
        let text = error?.description ?? ""
        #expect(
            text.hasPrefix("http://127.0.0.1:\(port)/x.tar: read of bytes 0-9 failed after 3 attempts: "), "\(text)")
        #expect(text.hasSuffix("(curl error 7); check that the server is up and reachable and the endpoint is right"))
    }

    @Test func aStalledServerHitsTheTimeout() throws {
        let server = try TestServer("faults")
        defer { server.stop() }
        let policy = RetryPolicy(maxAttempts: 2, initialDelay: 0.05, maxDelay: 0.1, totalSeconds: 30)
        let start = Date()
        let error = remoteError {
            _ = try readBytes(
                client(retry: policy, lowSpeedSeconds: 1), .http(server.baseURL + "/stall/0/1000/z"), at: 0, count: 10)
        }
        let elapsed = Date().timeIntervalSince(start)
        guard case .timedOut = error?.kind else {
            Issue.record("expected a timeout, got \(String(describing: error))")
            return
        }
        #expect(error?.attempts == 2)
        #expect(elapsed >= 2 && elapsed < 10, "\(elapsed) s")
        #expect(error?.description.contains("timed out") == true)
    }

    @Test func anonymousS3RequestsRefusedSayWhatToDo() throws {
        let server = try TestServer("faults")
        defer { server.stop() }
        let c = RemoteClient(configuration: RemoteConfiguration(endpoint: server.baseURL, signing: .anonymous))
        let error = remoteError { _ = try c.stat(.s3(bucket: "private", key: "0/100/obj")) }
        #expect(
            error?.description
                == "s3://private/0/100/obj (\(server.baseURL)/private/0/100/obj): stat failed: access denied (HTTP 403); "
                + "the request was unsigned (anonymous): the bucket must allow public reads, or give credentials "
                + "(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)")
        let read = remoteError { _ = try readBytes(c, .s3(bucket: "private", key: "0/100/obj"), at: 0, count: 10) }
        guard case .accessDenied(403, "AccessDenied", "Access Denied", true) = read?.kind else {
            Issue.record("expected an anonymous 403, got \(String(describing: read))")
            return
        }
    }
}

/// One client shared by many reader threads (POSIX threads, as the loader makes them), and the
/// connections it keeps alive.
@Suite struct ConcurrencyAndKeepAliveTests {
    /// How many connections the faults server has accepted (this question opens one more).
    func connections(_ server: TestServer) throws -> Int {
        let client = RemoteClient(configuration: RemoteConfiguration())
        let bytes = try readBytes(client, .http(server.baseURL + "/_connections"), at: 0, count: 32)
        return Int(String(decoding: bytes, as: UTF8.self))!
    }

    @Test func sequentialReadsReuseOneConnection() throws {
        let server = try TestServer("faults")
        defer { server.stop() }
        let before = try connections(server)
        let client = RemoteClient(configuration: RemoteConfiguration())
        let location = RemoteLocation.http(server.baseURL + "/ok/0/200000/keep")
        for i in 0..<50 {
            #expect(
                try readBytes(client, location, at: Int64(i * 3000), count: 1000)
                    == Array(faultBytes(200_000)[(i * 3000)..<(i * 3000 + 1000)]))
        }
        _ = try client.stat(location)
        #expect(
            try connections(server) - before == 2, "50 reads and a stat on one kept-alive connection, plus the question"
        )
    }

    @Test func manyThreadsReadThroughOneClient() throws {
        let server = try TestServer("faults")
        defer { server.stop() }
        let client = RemoteClient(configuration: RemoteConfiguration(retry: FaultInjectionTests.quickRetries))
        let expected = faultBytes(300_000)
        let failures = Mutex<[String]>([])
        ParallelLoop.run(iterations: 8, width: 8) { thread in
            for i in 0..<40 {
                let offset = (thread * 40 + i) * 911 % 290_000
                // Every fifth object path fails twice first, so retries run on many threads at once.
                let path = i % 5 == 0 ? "/503/2/300000/t\(thread)-\(i)" : "/ok/0/300000/shared"
                do {
                    let got = try readBytes(client, .http(server.baseURL + path), at: Int64(offset), count: 5000)
                    if got != Array(expected[offset..<(offset + 5000)]) {
                        failures.withLock { $0.append("\(thread)/\(i): wrong bytes") }
                    }
                } catch { failures.withLock { $0.append("\(thread)/\(i): \(error)") } }
            }
        }
        #expect(failures.withLock { $0 } == [])
        let opened = try connections(server)
        #expect(opened <= 8 + 2, "\(opened) connections for 8 threads")
    }
}

@Suite struct ForkedChildTests {
    @Test func aClientUsedInAnotherProcessLeavesItsPoolAlone() throws {
        let server = try TestServer("faults")
        defer { server.stop() }
        let location = RemoteLocation.http(server.baseURL + "/ok/0/10000/child")
        // A client whose pools belong to another process, as in a forked child: every request
        // goes on a handle of its own (no keep-alive), and the results are right.
        let child = RemoteClient(configuration: RemoteConfiguration(), owner: getppid())
        let before = try ConcurrencyAndKeepAliveTests().connections(server)
        for i in 0..<3 {
            #expect(
                try readBytes(child, location, at: Int64(i * 100), count: 10)
                    == Array(faultBytes(10000)[(i * 100)..<(i * 100 + 10)]))
        }
        let arena = RangeArena([10, 10])
        let results = child.readRanges([
            RangeRequest(location: location, offset: 0, buffer: arena[0]),
            RangeRequest(location: location, offset: 10, buffer: arena[1]),
        ])
        #expect(try results.map { try $0.get() } == [10, 10])
        let stream = try child.openStream(location)
        #expect(try readAll(stream) == faultBytes(10000))
        #expect(try ConcurrencyAndKeepAliveTests().connections(server) - before >= 3 + 1 + 1 + 1)
        // The client for the child keeps its connections alive again.
        let fresh = child.forChildProcess()
        let mid = try ConcurrencyAndKeepAliveTests().connections(server)
        for _ in 0..<3 { _ = try readBytes(fresh, location, at: 0, count: 10) }
        #expect(try ConcurrencyAndKeepAliveTests().connections(server) - mid == 2)
    }
}
