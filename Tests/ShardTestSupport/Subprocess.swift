import Foundation

/// The outcome of `runProcess`.
public struct ProcessResult: Sendable {
    /// The exit status (or the signal number when the process was killed by one).
    public var status: Int32
    /// Everything the process wrote to standard output.
    public var stdout: [UInt8]
    /// Everything the process wrote to standard error.
    public var stderr: [UInt8]

    /// Standard output as text (invalid UTF-8 repaired).
    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    /// Standard error as text (invalid UTF-8 repaired).
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
}

/// Runs `command` (looked up on `PATH` through `/usr/bin/env`) with `arguments`, feeding it
/// `stdin`, and waits for it.
///
/// Standard input, output and error go through temporary files, so large outputs cannot
/// deadlock.
///
/// ```swift
/// let result = try runProcess("python3", ["-c", "print(1)"])
/// // result.status == 0, result.stdoutText == "1\n"
/// ```
///
/// - Throws: when the process cannot be started or the files cannot be made.
public func runProcess(
    _ command: String, _ arguments: [String], stdin: [UInt8] = [],
    currentDirectory: String? = nil
) throws -> ProcessResult {
    let directory = try TemporaryDirectory()
    let inputPath = directory.path + "/stdin"
    let outputPath = directory.path + "/stdout"
    let errorPath = directory.path + "/stderr"
    try Data(stdin).write(to: URL(fileURLWithPath: inputPath))
    try Data().write(to: URL(fileURLWithPath: outputPath))
    try Data().write(to: URL(fileURLWithPath: errorPath))
    let input = try FileHandle(forReadingFrom: URL(fileURLWithPath: inputPath))
    let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
    let error = try FileHandle(forWritingTo: URL(fileURLWithPath: errorPath))
    defer {
        try? input.close()
        try? output.close()
        try? error.close()
    }

    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [command] + arguments
    if let currentDirectory {
        process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory)
    }
    process.standardInput = input
    process.standardOutput = output
    process.standardError = error
    try process.run()
    process.waitUntilExit()
    return ProcessResult(
        status: process.terminationStatus,
        stdout: [UInt8](try Data(contentsOf: URL(fileURLWithPath: outputPath))),
        stderr: [UInt8](try Data(contentsOf: URL(fileURLWithPath: errorPath))))
}

/// A fresh directory under the system's temporary directory, removed with everything in it when
/// the value is released.
///
/// ```swift
/// let directory = try TemporaryDirectory()
/// try tar.write(to: directory.path + "/shard-000000.tar")
/// ```
public final class TemporaryDirectory: Sendable {
    /// The directory's absolute path.
    public let path: String

    /// Makes the directory.
    ///
    /// - Throws: when it cannot be made.
    public init(prefix: String = "shardstore-test") throws {
        let base = FileManager.default.temporaryDirectory.path
        path = base + "/" + prefix + "-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }
}
