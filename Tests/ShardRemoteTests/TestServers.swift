import Foundation
import ShardRemote
import ShardTestSupport
import Testing

// The local servers the remote tests read from: tools/remote-test-server.py in one of its modes
// (s3: moto with signature checking on; http: a static server with ranges; faults: objects behind
// 503s, drops and stalls), on 127.0.0.1 and a port the system picks. A server serves until its
// standard input closes: `stop()` closes it (and kills the process if it lingers), `deinit` calls
// `stop()`, and if the test process itself dies the pipe closes with it, so no server outlives
// the tests. Nothing is skipped: without Python or moto the tests fail saying what to install.

/// The repository's root (three folders above this file).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// Why a test server could not be used.
struct TestServerError: Error, CustomStringConvertible {
    let description: String
}

/// A Python interpreter that imports `modules`: `SHARDSTORE_TEST_PYTHON`, the project's
/// `.build-venv` (made by tools/setup-system, which tools/test runs), then `python3`.
///
/// - Throws: naming what to install when none does.
func testPython(importing modules: String) throws -> String {
    let environment = ProcessInfo.processInfo.environment
    let candidates = [environment["SHARDSTORE_TEST_PYTHON"], repositoryRoot + "/.build-venv/bin/python", "python3"]
    for python in candidates.compactMap({ $0 }) {
        if python.hasPrefix("/"), !FileManager.default.isExecutableFile(atPath: python) { continue }
        if let r = try? runProcess(python, ["-c", "import \(modules)"]), r.status == 0 { return python }
    }
    throw TestServerError(
        description:
            "no Python here imports \(modules) (tried SHARDSTORE_TEST_PYTHON, .build-venv/bin/python, python3): "
            + "run tools/setup-system, which installs moto[server] and boto3 into .build-venv")
}

/// One running tools/remote-test-server.py.
final class TestServer: @unchecked Sendable {
    let mode: String
    let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private let errorLog: String
    private let lock = NSLock()
    private var stopped = false
    /// The fields of the server's ready line (`port`, and for s3 the endpoint and the key).
    private(set) var ready: [String: Any] = [:]

    /// The server's port on 127.0.0.1.
    var port: Int { ready["port"] as! Int }
    /// `http://127.0.0.1:PORT`.
    var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Starts `tools/remote-test-server.py MODE ARGUMENTS` and waits for its ready line.
    init(_ mode: String, _ arguments: [String] = []) throws {
        self.mode = mode
        let modules = ["s3": "moto.server, boto3", "https": "cryptography"][mode] ?? "http.server"
        let python = try testPython(importing: modules)
        errorLog = NSTemporaryDirectory() + "/shardstore-remote-test-server-\(UUID().uuidString).log"
        _ = FileManager.default.createFile(atPath: errorLog, contents: nil)
        process.executableURL = URL(fileURLWithPath: python.hasPrefix("/") ? python : "/usr/bin/env")
        process.arguments =
            (python.hasPrefix("/") ? [] : [python]) + [repositoryRoot + "/tools/remote-test-server.py", mode]
            + arguments
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle(forWritingAtPath: errorLog)
        try process.run()
        guard let line = readLine(),
            let fields = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
            fields["port"] is Int
        else {
            let log = (try? String(contentsOfFile: errorLog, encoding: .utf8)) ?? ""
            stopNow()
            throw TestServerError(
                description: "the \(mode) test server did not start; its standard error:\n\(log.suffix(3000))")
        }
        ready = fields
    }

    deinit { stop() }

    /// One line of the server's standard output (nil at its end).
    private func readLine() -> String? {
        var bytes: [UInt8] = []
        while true {
            let data = output.fileHandleForReading.readData(ofLength: 1)
            guard let byte = data.first else { return nil }
            if byte == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(byte)
        }
    }

    /// Sends one command (s3 mode) and returns its answer's fields.
    ///
    /// - Throws: when the server answers `ok: false` (with its reason) or not at all.
    @discardableResult
    func command(_ fields: [String: String]) throws -> [String: Any] {
        let line = try JSONSerialization.data(withJSONObject: fields) + Data("\n".utf8)
        input.fileHandleForWriting.write(line)
        guard let answer = readLine(),
            let reply = try? JSONSerialization.jsonObject(with: Data(answer.utf8)) as? [String: Any]
        else { throw TestServerError(description: "the \(mode) test server did not answer \(fields)") }
        guard reply["ok"] as? Bool == true else {
            throw TestServerError(description: "the \(mode) test server refused \(fields): \(reply["error"] ?? "?")")
        }
        return reply
    }

    /// Stops the server: closes its standard input, waits up to 5 s, then kills it. Idempotent.
    func stop() {
        lock.lock()
        defer { lock.unlock() }
        guard !stopped else { return }
        stopped = true
        try? input.fileHandleForWriting.close()
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        stopNow()
        try? FileManager.default.removeItem(atPath: errorLog)
    }

    private func stopNow() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// A web server (tools/remote-test-server.py http, or https) serving one file from a folder of
/// its own; the server stops and the folder goes when the value is released.
final class ServedFile {
    let directory: TemporaryDirectory
    let server: TestServer
    /// The file's path on disk (to change it under the server).
    let path: String
    /// The file's URL.
    let url: String
    /// The https server's CA certificate (for the client's CA bundle).
    var caBundle: String { directory.path + "/ca.pem" }

    /// Writes `bytes` as `name` and serves it over `mode` ("http" or "https").
    init(_ bytes: [UInt8], as name: String = "s.tar", mode: String = "http") throws {
        directory = try TemporaryDirectory()
        let files = directory.path + "/files"
        try FileManager.default.createDirectory(atPath: files, withIntermediateDirectories: true)
        path = files + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        server = try TestServer(mode, mode == "https" ? [files, directory.path + "/ca.pem"] : [files])
        url = "\(mode)://127.0.0.1:\(server.port)/\(name)"
    }

    deinit { server.stop() }
}

/// The moto server of the S3 suite: started once before its tests, stopped after them (also when
/// they fail), by the `.motoServer` trait.
enum Moto {
    @TaskLocal static var server: TestServer?

    /// The running server (the suite must carry the `.motoServer` trait).
    static var current: TestServer {
        get throws {
            guard let server else { throw TestServerError(description: "no moto server: add the .motoServer trait") }
            return server
        }
    }
}

/// Runs a suite with a moto server (tools/remote-test-server.py s3) for its tests.
struct MotoServerTrait: SuiteTrait, TestScoping {
    var isRecursive: Bool { false }

    func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        let server = try TestServer("s3")
        defer { server.stop() }
        try await Moto.$server.withValue(server) { try await function() }
    }
}

extension Trait where Self == MotoServerTrait {
    /// Starts a moto server before the suite and stops it after.
    static var motoServer: Self { MotoServerTrait() }
}

/// The bytes the faults server serves for an object of `size` bytes (byte i is i % 251).
func faultBytes(_ size: Int) -> [UInt8] { (0..<size).map { UInt8($0 % 251) } }

/// Deterministic test bytes: `count` bytes from a seed (a 64-bit LCG's high bytes).
func testBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var state = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
    return (0..<count).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return UInt8(truncatingIfNeeded: state >> 56)
    }
}

/// A port on 127.0.0.1 that nothing listens on (bound, then closed).
func closedPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
        }
    }
    guard bound else { throw TestServerError(description: "cannot bind a port on 127.0.0.1") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Reads `count` bytes at `offset` with one range request.
func readBytes(
    _ client: RemoteClient, _ location: RemoteLocation, at offset: Int64, count: Int, ifMatch: String? = nil
) throws -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count)
    let n = try bytes.withUnsafeMutableBytes { try client.read(location, at: offset, into: $0, ifMatch: ifMatch) }
    return Array(bytes[..<n])
}

/// Reads a stream to its end in pieces of `piece` bytes.
func readAll(_ stream: RemoteStream, piece: Int = 100_000) throws -> [UInt8] {
    var all: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: piece)
    while true {
        let n = try buffer.withUnsafeMutableBytes { try stream.read(into: $0) }
        if n == 0 { return all }
        all += buffer[..<n]
    }
}

/// The error `body` throws, as a RemoteError (a test failure when it throws nothing or another).
func remoteError(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> RemoteError? {
    do {
        try body()
        Issue.record("expected a RemoteError, got success", sourceLocation: sourceLocation)
    } catch let error as RemoteError {
        return error
    } catch {
        Issue.record("expected a RemoteError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

/// Buffers for a batch of ranges, in one allocation freed with the arena.
final class RangeArena {
    private let storage: UnsafeMutableRawBufferPointer
    private let starts: [Int]
    private let counts: [Int]

    init(_ counts: [Int]) {
        self.counts = counts
        var starts: [Int] = []
        var total = 0
        for c in counts {
            starts.append(total)
            total += c
        }
        self.starts = starts
        storage = .allocate(byteCount: max(total, 1), alignment: 16)
        storage.initializeMemory(as: UInt8.self, repeating: 0)
    }

    deinit { storage.deallocate() }

    subscript(i: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: storage[starts[i]..<(starts[i] + counts[i])])
    }
}
