import Foundation
import ShardCompression
import ShardCore
import ShardIO
import ShardTestSupport
import Testing

/// A tool the tests need is not installed.
struct MissingTool: Error, CustomStringConvertible {
    var tool: String
    var description: String {
        "the test needs `\(tool)` on PATH; install it (tools/setup-system installs gzip pigz zstd xz-utils bzip2)"
    }
}

/// A tool exited with an error.
struct ToolFailed: Error, CustomStringConvertible {
    var command: String
    var stderr: String
    var description: String { "`\(command)` failed: \(stderr)" }
}

/// Files and data for the compression tests: deterministic bytes, files written by the real
/// tools in a temporary directory, and readers over them.
final class CompressionFixture {
    let directory: TemporaryDirectory
    private var counter = 0

    init() throws { directory = try TemporaryDirectory(prefix: "shardstore-compression") }

    /// `count` bytes mixing runs of random bytes, English-like text and zeros (seeded).
    static func data(_ count: Int, seed: UInt64) -> [UInt8] {
        var rng = SplitMix64(seed: seed)
        let words = [
            "shard", "tar", "index", "sample", "key", "the", "of", "and", "webdataset", "image", "label", "json",
            "random", "access", "checkpoint", "window", "deflate", "block", "stream", "frame",
        ].map { Array($0.utf8) }
        var out: [UInt8] = []
        out.reserveCapacity(count + (32 << 10))
        while out.count < count {
            let run = Int(rng.next(below: 24 << 10)) + 1024
            switch rng.next(below: 5) {
            case 0, 1:
                for _ in 0..<(run / 8) { withUnsafeBytes(of: rng.next()) { out.append(contentsOf: $0) } }
            case 2:
                out.append(contentsOf: repeatElement(0, count: run / 4))
            default:
                let end = out.count + run
                while out.count < end {
                    out.append(contentsOf: words[Int(rng.next(below: UInt64(words.count)))])
                    out.append(rng.next(below: 12) == 0 ? 10 : 32)
                }
            }
        }
        return Array(out.prefix(count))
    }

    /// A fresh path in the directory.
    func path(_ name: String) -> String {
        counter += 1
        return directory.path + "/\(counter)-" + name
    }

    static func write(_ path: String, _ bytes: [UInt8]) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    static func read(_ path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// Runs a shell command line that uses `tools`, failing clearly when one is missing.
    static func shell(_ command: String, tools: [String]) throws {
        for tool in tools {
            let found = try runProcess("sh", ["-c", "command -v \(tool)"])
            guard found.status == 0 else { throw MissingTool(tool: tool) }
        }
        let result = try runProcess("sh", ["-c", command])
        guard result.status == 0 else { throw ToolFailed(command: command, stderr: result.stderrText) }
    }

    /// `bytes` compressed by `command` (a filter from stdin to stdout, e.g. "gzip -c"), as a file.
    func compressed(_ bytes: [UInt8], _ command: String, name: String) throws -> String {
        let input = path("plain")
        try Self.write(input, bytes)
        let output = path(name)
        try Self.shell("\(command) < '\(input)' > '\(output)'", tools: [String(command.split(separator: " ")[0])])
        return output
    }

    /// `pieces` compressed one by one by `command` and concatenated, `between` between them.
    func concatenated(_ pieces: [[UInt8]], _ command: String, name: String, between: [UInt8] = []) throws -> String {
        var all: [UInt8] = []
        for (i, piece) in pieces.enumerated() {
            if i > 0 { all += between }
            all += try Self.read(compressed(piece, command, name: "piece"))
        }
        let output = path(name)
        try Self.write(output, all)
        return output
    }

    /// A file holding `bytes`.
    func file(_ bytes: [UInt8], name: String) throws -> String {
        let output = path(name)
        try Self.write(output, bytes)
        return output
    }

    /// The whole file through a DecompressingReader: its bytes (read in `readSize` pieces) and info.
    static func pass(
        _ path: String, _ format: CompressionFormat, span: Int64 = 256 << 10, readSize: Int = 100_003
    ) throws -> ([UInt8], CompressedShardInfo) {
        let reader = try DecompressingReader(file: try ReadOnlyFile(path: path), format: format, seekSpan: span)
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: readSize)
        while true {
            let offset = Int64(out.count)
            let n = try buffer.withUnsafeMutableBytes { try reader.read(into: $0, at: offset) }
            if n == 0 { break }
            out += buffer[0..<n]
        }
        let info = try reader.finish()
        #expect(reader.byteCount == Int64(out.count))
        return (out, info)
    }

    /// The error a full pass throws (nil when it succeeds).
    static func passError(_ path: String, _ format: CompressionFormat) throws -> DecompressionError? {
        do {
            let reader = try DecompressingReader(file: try ReadOnlyFile(path: path), format: format)
            _ = try reader.finish()
            return nil
        } catch let error as DecompressionError {
            return error
        }
    }

    /// `count` bytes at `offset` through a SeekableReader.
    static func read(_ reader: SeekableReader, at offset: Int64, count: Int) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        let n = try buffer.withUnsafeMutableBytes { try reader.read(into: $0, at: offset) }
        return Array(buffer[0..<n])
    }

    /// Reads around every seek point, a range over several points, the last bytes and past the
    /// end, and a scrambled sample, comparing with `original`.
    static func checkRandomReads(_ reader: SeekableReader, _ original: [UInt8], points: [Int64]) throws {
        let size = Int64(original.count)
        func expectRange(_ offset: Int64, _ count: Int, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let got = try read(reader, at: offset, count: count)
            let end = Int(min(size, offset + Int64(count)))
            #expect(
                got == Array(original[Int(offset)..<end]), "at \(offset) count \(count)", sourceLocation: sourceLocation
            )
        }
        for point in points {
            for delta: Int64 in [-1, 0, 1] where point + delta >= 0 && point + delta < size {
                try expectRange(point + delta, 4000)
            }
            if point >= 10 { try expectRange(point - 10, 20) }
        }
        if points.count >= 3 {
            try expectRange(points[1] - 5000, Int(points[points.count - 1] - points[1] + 10000))
        }
        try expectRange(size - 100, 100)
        try expectRange(size - 100, 1000)
        try expectRange(size - 1, 1)
        #expect(try read(reader, at: size, count: 10) == [])
        var rng = SplitMix64(seed: 7)
        for _ in 0..<40 {
            let offset = Int64(rng.next(below: UInt64(size)))
            try expectRange(offset, Int(rng.next(below: 70_000)) + 1)
        }
    }

    /// The whole data through a SeekableReader in small consecutive reads.
    static func frontToBack(_ reader: SeekableReader, size: Int64, readSize: Int = 7919) throws -> [UInt8] {
        var out: [UInt8] = []
        while Int64(out.count) < size {
            let piece = try read(reader, at: Int64(out.count), count: readSize)
            if piece.isEmpty { break }
            out += piece
        }
        return out
    }
}

extension SeekTable {
    /// The table through its stored form (what the index gives back).
    func roundTripped(path: String = "shard") throws -> SeekTable {
        let bytes = serialized()
        return try bytes.withUnsafeBytes {
            try SeekTable(
                decoding: $0, format: format, compressedSize: compressedSize, uncompressedSize: uncompressedSize,
                path: path)
        }
    }
}
