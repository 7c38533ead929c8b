import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A writer in another process (python3's `sqlite3` module) with a write transaction open on an
/// SQLite file, as `shardstore ingest` or `split assign` has while it runs: the other process
/// holds SQLite's real file locks, which is what readers must tell from a dead writer's journal.
///
/// ```swift
/// let writer = try SQLiteWriterProcess(path: index, lock: .exclusive, holdSeconds: 30)
/// // ... readers run here: the index is locked and `INDEX-journal` exists
/// writer.stop()
/// ```
public final class SQLiteWriterProcess {
    /// How the transaction begins: `BEGIN IMMEDIATE` takes the RESERVED lock (readers go on
    /// reading the committed index); `BEGIN EXCLUSIVE` takes the EXCLUSIVE lock (readers wait),
    /// as a writer does while it commits or spills its page cache.
    public enum Lock: String, Sendable {
        case reserved = "IMMEDIATE"
        case exclusive = "EXCLUSIVE"
    }

    private let process: Process

    /// Starts the writer and returns once its transaction is open and has written `sql` (so the
    /// journal exists). It commits after `holdSeconds`, or ends at `stop()`.
    ///
    /// - Throws: when python3 cannot be started or the transaction could not be opened.
    public init(
        path: String, lock: Lock,
        sql: String = "INSERT OR REPLACE INTO metadata(key, value) VALUES ('test.writer', '1')",
        holdSeconds: Double
    ) throws {
        let script = """
            import sqlite3, sys, time
            c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
            c.execute("BEGIN " + sys.argv[2])
            c.execute(sys.argv[3])
            print("ready", flush=True)
            time.sleep(float(sys.argv[4]))
            c.execute("COMMIT")
            """
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, path, lock.rawValue, sql, String(holdSeconds)]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let line = String(decoding: output.fileHandleForReading.readData(ofLength: 6), as: UTF8.self)
        guard line == "ready\n" else {
            process.waitUntilExit()
            throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "the writer did not start"])
        }
    }

    /// Waits for the writer to commit and exit.
    public func wait() {
        process.waitUntilExit()
    }

    /// Ends the writer now (SIGKILL: its transaction is never committed).
    public func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit { stop() }

    /// Runs a writer that opens a transaction on `path`, writes about 4 MB (more than its 10-page
    /// cache holds, so changed pages reach the file itself) and is killed with SIGKILL before it
    /// commits: what `kill -9` of a writer leaves, a hot journal beside a changed file.
    ///
    /// - Throws: when python3 fails otherwise.
    public static func killMidTransaction(path: String) throws {
        let script = """
            import os, signal, sqlite3, sys
            c = sqlite3.connect(sys.argv[1], isolation_level=None)
            c.execute("PRAGMA cache_size = 10")
            c.execute("BEGIN IMMEDIATE")
            c.execute("CREATE TABLE test_filler(x)")
            for _ in range(4):
                c.execute("INSERT INTO test_filler VALUES (zeroblob(1000000))")
            os.kill(os.getpid(), signal.SIGKILL)
            """
        let result = try runProcess("python3", ["-c", script, path])
        guard result.status == SIGKILL else {
            throw CocoaError(
                .fileWriteUnknown,
                userInfo: [
                    NSLocalizedDescriptionKey: "the writer was not killed: \(result.status) \(result.stderrText)"
                ])
        }
    }
}
