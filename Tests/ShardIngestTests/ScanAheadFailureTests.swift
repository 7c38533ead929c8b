import Foundation
import ShardStore
import ShardTestSupport
import Synchronization
import Testing

/// An ingest that fails (a corrupt shard, a duplicate, a cancellation) while the scanner threads
/// have already scanned later shards must throw its error like any other failure. The failing
/// ingest runs in a child process (this test binary, filtered to `scanAheadChild`), so that a
/// crash shows up as a failed expectation here instead of taking the whole test run down.
@Suite("Failures while later shards are already scanned")
struct ScanAheadFailureTests {
    static let probeVariable = "SHARDSTORE_INGEST_SCAN_AHEAD_PROBE"

    @Test(
        "an ingest failing early with later shards scanned ahead throws (no crash)",
        arguments: ["corrupt", "duplicate", "cancelled"])
    func scanAhead(scenario: String) throws {
        let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let result = try runProcess(
            "env",
            [
                "\(Self.probeVariable)=\(scenario)", executable, "--testing-library", "swift-testing", "--filter",
                "scanAheadChild",
            ])
        let output = result.stdoutText + result.stderrText
        let crash = output.split(separator: "\n").filter {
            $0.contains("crashed") || $0.contains("BUG IN") || $0.contains("Fatal")
        }.prefix(3)
        #expect(result.status == 0, "child exited with \(result.status): \(crash.joined(separator: " | "))")
        #expect(output.contains("Test run with 1 test in 1 suite passed"), "\(output.suffix(400))")
    }

    /// Run only in the child process started by `scanAhead`.
    @Test(.enabled(if: ProcessInfo.processInfo.environment[probeVariable] != nil))
    func scanAheadChild() throws {
        let scenario = ProcessInfo.processInfo.environment[Self.probeVariable]!
        let dir = try TemporaryDirectory()
        var shards: [String] = []
        func shard(_ name: String, _ files: [(String, [UInt8])]) throws {
            try writeShard(dir.path + "/" + name, files)
            shards.append(dir.path + "/" + name)
        }
        let expected: String
        var cancel = false
        switch scenario {
        case "corrupt":
            try shard("s0.tar", [("a.jpg", [1])])
            var bad = TarWriter(format: .ustar)
            bad.addFile("b.jpg", pattern(1000))
            bad.finish()
            bad.truncate(to: 1000)
            try bad.write(to: dir.path + "/s1.tar")
            shards.append(dir.path + "/s1.tar")
            try shard("s2.tar", [("c.jpg", [3])])
            try shard("s3.tar", [("d.jpg", [4])])
            expected =
                "shard 's1.tar': truncated member at offset 0: its data ends at 1512 but the file ends at 1000; re-fetch the shard or leave it out of the ingest"
        case "duplicate":
            try shard("s0.tar", [("x.jpg", [1])])
            try shard("s1.tar", [("x.jpg", [2])])
            try shard("s2.tar", [("c.jpg", [3])])
            try shard("s3.tar", [("d.jpg", [4])])
            expected =
                "duplicate member 'x.jpg': first at 's0.tar' offset 0, again at 's1.tar' offset 0; choose what to do with --on-duplicate first|last|keep"
        default:
            try shard("s0.tar", [("a.jpg", [1])])
            try shard("s1.tar", [("b.jpg", [2])])
            try shard("s2.tar", [("c.jpg", [3])])
            cancel = true
            expected = "ingest cancelled"
        }
        let files = try listing(dir.path)
        let cancelAfterFirst = cancel
        let polls = Counter()
        // After the first shard is written the consumer waits 300 ms (in the progress callback):
        // meanwhile the one scanner thread scans ahead (up to its window of 2 * jobs + 2 shards).
        // In the "cancelled" scenario every poll after the first (the scan of shard 0) says
        // cancel, so the shards scanned ahead fail as cancelled.
        let options = IngestOptions(
            jobs: 1,
            progress: { p in if p.shardsDone == 1 { usleep(300_000) } },
            isCancelled: {
                cancelAfterFirst
                    && polls.value.withLock { n in
                        n += 1
                        return n > 1
                    }
            })
        let error = try #require(
            caught { _ = try Ingest.run(index: dir.path + "/index.sqlite", shards: shards, options: options) })
        #expect(String(describing: error) == expected)
        #expect(try listing(dir.path) == files)
    }
}

final class Counter: Sendable {
    let value = Mutex(0)
}
