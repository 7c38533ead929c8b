import Foundation
import ShardTestSupport
import Testing

/// Runs the built `shardstore` binary as a subprocess, in the style of swift-argument-parser's
/// `AssertExecuteCommand`: exact stdout, stderr and exit status.
enum CLI {
    struct BinaryNotFound: Error, CustomStringConvertible {
        var searched: [String]
        var description: String {
            "no `shardstore` executable beside the test bundle (searched: \(searched.joined(separator: ", "))); build with `swift build --build-tests`"
        }
    }

    /// The absolute path of the `shardstore` binary built with the tests (the test target
    /// depends on the executable, so it sits in the same `.build/<triple>/debug/` folder).
    static let executable: Result<String, BinaryNotFound> = {
        var starts: [URL] = []
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            starts.append(URL(fileURLWithPath: exe))
        }
        if let first = CommandLine.arguments.first {
            starts.append(URL(fileURLWithPath: first).standardizedFileURL)
        }
        starts.append(Bundle.main.bundleURL)
        if let exe = Bundle.main.executableURL { starts.append(exe) }
        var searched: [String] = []
        for start in starts {
            var directory = start
            for _ in 0..<4 {
                let candidate = directory.appendingPathComponent("shardstore").path
                searched.append(candidate)
                var isDirectory: ObjCBool = false
                if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory), !isDirectory.boolValue,
                    FileManager.default.isExecutableFile(atPath: candidate)
                {
                    return .success(candidate)
                }
                directory = directory.deletingLastPathComponent()
            }
        }
        return .failure(BinaryNotFound(searched: searched))
    }()

    /// Runs `shardstore ARGS` in `directory` (through `runProcess`, which starts it with
    /// `/usr/bin/env`: an absolute path runs that file).
    @discardableResult
    static func run(_ arguments: [String], in directory: String, stdin: [UInt8] = []) throws -> ProcessResult {
        try runProcess(executable.get(), arguments, stdin: stdin, currentDirectory: directory)
    }
}

/// Runs `shardstore ARGS` and checks the exit status and, when given, the exact stdout and stderr.
@discardableResult
func expectRun(
    _ arguments: [String], in directory: String, status: Int32 = 0, stdout: String? = nil,
    stderr: String? = nil, sourceLocation: SourceLocation = #_sourceLocation
) throws -> ProcessResult {
    let result = try CLI.run(arguments, in: directory)
    #expect(
        result.status == status,
        "exit status of `shardstore \(arguments.joined(separator: " "))`; stderr: \(result.stderrText)",
        sourceLocation: sourceLocation)
    if let stdout {
        #expect(
            result.stdoutText == stdout, "stdout of `shardstore \(arguments.joined(separator: " "))`",
            sourceLocation: sourceLocation)
    }
    if let stderr {
        #expect(
            result.stderrText == stderr, "stderr of `shardstore \(arguments.joined(separator: " "))`",
            sourceLocation: sourceLocation)
    }
    return result
}

/// `shardstore: error: MESSAGE\n` exactly, exit 1, nothing on stdout.
@discardableResult
func expectFailure(
    _ arguments: [String], in directory: String, message: String, sourceLocation: SourceLocation = #_sourceLocation
) throws -> ProcessResult {
    try expectRun(
        arguments, in: directory, status: 1, stdout: "", stderr: "shardstore: error: \(message)\n",
        sourceLocation: sourceLocation)
}

/// One JSON object from a line of output.
func jsonObject(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
    let object = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
    guard let dictionary = object as? [String: Any] else {
        Issue.record("not a JSON object: \(text)", sourceLocation: sourceLocation)
        return [:]
    }
    return dictionary
}

/// The lines of `text` without the final newline (empty text: no lines).
func lines(_ text: String) -> [String] {
    var parts = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    if parts.last == "" { parts.removeLast() }
    return parts
}

func int(_ value: Any?) -> Int? { (value as? NSNumber)?.intValue }

// MARK: - Fixtures

/// One sample of a fixture shard: its key and its members' data by extension, in tar order.
struct FixtureSample {
    var key: String
    var members: [(ext: String, data: [UInt8])]
}

/// A shard made with `TarWriter`, with the samples it holds and where each member's data is.
struct FixtureShard {
    var name: String
    var samples: [FixtureSample]
    var tar: TarWriter

    var bytes: [UInt8] { tar.bytes }
    var memberCount: Int { samples.reduce(0) { $0 + $1.members.count } }

    /// The data offset of member `key.ext` in the tar.
    func dataOffset(of key: String, _ ext: String) -> Int64? {
        tar.entries.first { $0.name == Array("\(key).\(ext)".utf8) }?.dataOffset
    }

    /// The header offset of the `n`th entry.
    func headerOffset(ofEntry n: Int) -> Int64 { tar.entries[n].headerOffset }

    func write(in directory: String) throws {
        try tar.write(to: directory + "/" + name)
    }
}

/// Deterministic member data: `count` bytes that cover all byte values.
func fixtureBytes(seed: Int, count: Int) -> [UInt8] {
    var state = UInt64(truncatingIfNeeded: seed) &* 0x9E37_79B9_7F4A_7C15 &+ 1
    return (0..<count).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return UInt8(truncatingIfNeeded: state >> 56)
    }
}

/// Six-digit zero-padded key.
func key6(_ n: Int) -> String {
    let s = String(n)
    return String(repeating: "0", count: max(0, 6 - s.count)) + s
}

/// `shard-NNNNNN.tar` holding `samples` samples keyed `NNNNNN` from `firstKey`, each with a
/// `.jpg` (binary, 300 to 1,199 bytes) and a `.json` member.
func makeShard(
    _ number: Int, samples: Int = 4, firstKey: Int? = nil, prefix: String = "shard-", dataSalt: Int = 0
) -> FixtureShard {
    var tar = TarWriter(format: .ustar)
    var out: [FixtureSample] = []
    let first = firstKey ?? number * 100
    for i in 0..<samples {
        let k = first + i
        let key = key6(k)
        let jpg = fixtureBytes(seed: k * 7 + dataSalt, count: 300 + (k * 131 + dataSalt) % 900)
        let json = Array("{\"key\": \"\(key)\", \"label\": \(k % 10)}".utf8)
        tar.addFile("\(key).jpg", jpg)
        tar.addFile("\(key).json", json)
        out.append(FixtureSample(key: key, members: [("jpg", jpg), ("json", json)]))
    }
    tar.finish()
    return FixtureShard(name: "\(prefix)\(key6(number)).tar", samples: out, tar: tar)
}

/// A temporary folder with `count` standard shards written into it.
struct Workspace {
    let directory: TemporaryDirectory
    var shards: [FixtureShard]
    var path: String { directory.path }

    init(shards count: Int = 3, samples: Int = 4) throws {
        directory = try TemporaryDirectory(prefix: "shardstore-cli")
        shards = (0..<count).map { makeShard($0, samples: samples) }
        for s in shards { try s.write(in: directory.path) }
    }

    var allSamples: [FixtureSample] { shards.flatMap(\.samples) }

    func file(_ name: String) -> String { path + "/" + name }

    func bytes(_ name: String) throws -> [UInt8]? {
        guard FileManager.default.fileExists(atPath: file(name)) else { return nil }
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: file(name))))
    }

    func write(_ name: String, _ bytes: [UInt8]) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: file(name)))
    }

    /// The names in the folder, sorted.
    func listing() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: path).sorted()
    }

    /// Ingests all shards into `index.sqlite` and checks that it succeeded.
    @discardableResult
    func ingestAll(_ extra: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) throws -> ProcessResult {
        let result = try CLI.run(["ingest", "index.sqlite", "shard-*.tar", "--quiet"] + extra, in: path)
        #expect(result.status == 0, "ingest failed: \(result.stderrText)", sourceLocation: sourceLocation)
        return result
    }
}

// MARK: - Expected text

/// A byte count in decimal units as the CLI documents it (`2.41 GB`: three significant digits,
/// plain bytes below 1000).
func decimalBytes(_ n: Int) -> String {
    if n < 1000 { return "\(n) B" }
    let units = ["kB", "MB", "GB", "TB"]
    var v = Double(n) / 1000
    var u = 0
    while v >= 1000, u < units.count - 1 {
        v /= 1000
        u += 1
    }
    let digits = v < 10 ? 2 : v < 100 ? 1 : 0
    return String(format: "%.\(digits)f", v) + " " + units[u]
}

/// Whether `text` matches `pattern` as a whole.
func wholeMatch(_ text: String, _ pattern: String) -> Bool {
    guard let regex = try? NSRegularExpression(pattern: "^(?:" + pattern + ")$", options: [.dotMatchesLineSeparators])
    else {
        return false
    }
    return regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
}

/// `text` escaped for use inside a regular expression.
func literal(_ text: String) -> String { NSRegularExpression.escapedPattern(for: text) }

/// The timing part of the ingest summary: ` in 0.05 s` and, when bytes were scanned, ` (12 MB/s)`.
let timingPattern = #" in \d+\.\d\d s( \(\d+ MB/s\))?"#

/// The summary line `shardstore ingest` prints, as a pattern with the timing part open.
func summaryPattern(
    shards: Int, new: Int, changed: Int, unchanged: Int, samples: Int, newSamples: Int, removed: Int = 0,
    members: Int, bytes: Int, split: String? = nil, index: String = "index.sqlite"
) -> String {
    var head =
        "ingested \(shards) shard\(shards == 1 ? "" : "s") (\(new) new, \(changed) changed, \(unchanged) unchanged)"
    head += ": \(samples) sample\(samples == 1 ? "" : "s") in the index (\(newSamples) new"
    if removed > 0 { head += ", \(removed) removed" }
    head += "), \(members) member\(members == 1 ? "" : "s") from \(decimalBytes(bytes)) scanned"
    var tail = ""
    if let split { tail += split }
    tail += " -> \(index)\n"
    return literal(head) + (bytes > 0 ? timingPattern : #" in \d+\.\d\d s"#) + literal(tail)
}

/// The version the binary reports (`shardstore --version`).
/// The JSON text of the index's `shardstore.content_id` (random at each ingest that changes it).
func contentID(of index: String, in directory: String) throws -> String {
    let result = try CLI.run(["meta", index, "get", "shardstore.content_id"], in: directory)
    return result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
}

func shardstoreVersion() throws -> String {
    let result = try CLI.run(["--version"], in: "/")
    return result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
}

// MARK: - Read-only indexes

/// Makes `w`'s folder and every file in it read-only, runs `shardstore ARGS` there, and restores
/// the permissions. Root ignores permissions, so as root the command runs as `nobody` (setpriv).
func runReadOnly(_ arguments: [String], in w: Workspace) throws -> ProcessResult {
    let names = try w.listing()
    for name in names { chmod(w.file(name), 0o444) }
    chmod(w.path, 0o555)
    defer {
        chmod(w.path, 0o755)
        for name in names { chmod(w.file(name), 0o644) }
    }
    let executable = try CLI.executable.get()
    if geteuid() == 0 {
        return try runProcess(
            "setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", executable] + arguments,
            currentDirectory: w.path)
    }
    return try CLI.run(arguments, in: w.path)
}
