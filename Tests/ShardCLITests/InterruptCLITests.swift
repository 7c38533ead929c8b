import Foundation
import ShardTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Ctrl-C and `kill -9` during an ingest: the index holds either everything it held before or
/// everything it should hold after, never a mix.
@Suite("shardstore ingest: SIGINT and SIGKILL", .serialized)
struct InterruptCLITests {
    static let shardCount = 30
    static let membersPerShard = 3000
    static let baseSamples = 5
    static var newSamples: Int { shardCount * membersPerShard }

    /// 30 shards of 3,000 one-member samples (about 3 MB each), made once.
    static let bigShards: [[UInt8]] = (0..<shardCount).map { s in
        var tar = TarWriter(format: .ustar)
        let payload = Array("payload of a sample".utf8)
        for i in 0..<membersPerShard {
            tar.addFile("s\(s)-\(i).txt", payload)
        }
        tar.finish()
        return tar.bytes
    }

    /// A workspace with `base.tar` ingested (5 samples) and the big shards written, or only the
    /// big shards when `existing` is false.
    static func prepare(existing: Bool) throws -> Workspace {
        let w = try Workspace(shards: 0)
        var base = TarWriter(format: .ustar)
        for i in 0..<baseSamples { base.addFile("base-\(i).cls", Array("\(i)".utf8)) }
        base.finish()
        try base.write(to: w.file("base.tar"))
        if existing {
            try expectRun(["ingest", "index.sqlite", "base.tar", "--quiet"], in: w.path, stdout: "", stderr: "")
        }
        for (i, bytes) in bigShards.enumerated() {
            try Data(bytes).write(to: URL(fileURLWithPath: w.file("big-\(key6(i)).tar")))
        }
        return w
    }

    struct Outcome {
        var exitedNormally: Bool
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Starts `shardstore ARGS` in `w`'s folder, waits `delay` seconds, sends `signal`, waits for
    /// the exit.
    ///
    /// The child is started with `posix_spawn`, an empty signal mask and default signal actions, as
    /// a shell starts a foreground command: a child of Foundation's `Process` inherits a mask that
    /// blocks SIGINT, so Ctrl-C would never reach it. Paths in `arguments` are made absolute
    /// (`posix_spawn` has no portable working-directory action).
    /// Waits (at most 10 s) until process `pid` catches `signal` (its handler is installed, per
    /// `SigCgt` in `/proc/PID/status`) or has exited: on a loaded machine start-up can take longer
    /// than the delay, and a signal before the handler exists kills the process instead.
    static func waitUntilCatching(_ pid: pid_t, _ signal: Int32) {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return }
            var caught: UInt64 = 0
            for line in status.split(separator: "\n") {
                if line.hasPrefix("State:"), line.contains("Z") { return }
                if line.hasPrefix("SigCgt:") {
                    caught =
                        UInt64(line.dropFirst("SigCgt:".count).trimmingCharacters(in: .whitespaces), radix: 16) ?? 0
                }
            }
            if caught & (1 << UInt64(signal - 1)) != 0 { return }
            Thread.sleep(forTimeInterval: 0.005)
        }
    }

    /// Runs the CLI with `arguments` and sends `signal` after `delay` seconds, or, with `ready`, as
    /// soon as `ready()` holds (polled every 2 ms; a fixed delay races with a machine that got
    /// faster or slower since the full run was timed).
    static func runAndSignal(
        _ arguments: [String], in w: Workspace, after delay: Double, signal: Int32, when ready: (() -> Bool)? = nil
    ) throws -> Outcome {
        let executable = try CLI.executable.get()
        let out = w.file(".stdout")
        let err = w.file(".stderr")
        let argv =
            [executable] + arguments.map { $0.hasSuffix(".tar") || $0.hasSuffix(".sqlite") ? w.path + "/" + $0 : $0 }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let cArguments: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for p in cArguments { free(p) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, &attributes, cArguments, environ)
        guard spawned == 0 else { throw CocoaError(.executableLoad, userInfo: ["errno": spawned]) }

        if let ready {
            let deadline = Date().addingTimeInterval(60)
            while !ready(), Date() < deadline { Thread.sleep(forTimeInterval: 0.002) }
        } else {
            Thread.sleep(forTimeInterval: delay)
        }
        if signal != SIGKILL { Self.waitUntilCatching(pid, signal) }
        kill(pid, signal)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exitedNormally = status & 0x7F == 0
        let outcome = Outcome(
            exitedNormally: exitedNormally, status: exitedNormally ? (status >> 8) & 0xFF : status & 0x7F,
            stdout: String(decoding: try Data(contentsOf: URL(fileURLWithPath: out)), as: UTF8.self),
            stderr: String(decoding: try Data(contentsOf: URL(fileURLWithPath: err)), as: UTF8.self))
        try FileManager.default.removeItem(atPath: out)
        try FileManager.default.removeItem(atPath: err)
        print(
            "signal \(signal) after \(String(format: "%.3f", delay)) s (full run \(String(format: "%.2f", fullRunSeconds)) s): "
                + (outcome.exitedNormally ? "exit \(outcome.status)" : "killed by signal \(outcome.status)"))
        return outcome
    }

    /// The sample count `info --json` reports (nil when info fails, with the failure recorded).
    static func sampleCount(_ w: Workspace, sourceLocation: SourceLocation = #_sourceLocation) throws -> Int? {
        let info = try CLI.run(["info", "index.sqlite", "--json"], in: w.path)
        #expect(info.status == 0, "info after the signal: \(info.stderrText)", sourceLocation: sourceLocation)
        #expect(info.stderrText == "", sourceLocation: sourceLocation)
        guard info.status == 0 else { return nil }
        return int(try jsonObject(info.stdoutText)["samples"])
    }

    /// After any outcome, a plain ingest completes the index.
    static func expectRecovers(_ w: Workspace, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let again = try CLI.run(["ingest", "index.sqlite", "base.tar", "big-*.tar", "--json"], in: w.path)
        #expect(again.status == 0, "ingest after the signal: \(again.stderrText)", sourceLocation: sourceLocation)
        #expect(
            wholeMatch(
                again.stderrText, #"(note: removed '[^'\n]+', an unfinished index left by an interrupted ingest\n)?"#),
            "stderr: \(again.stderrText)", sourceLocation: sourceLocation)
        #expect(
            int(try jsonObject(again.stdoutText)["samples"]) == baseSamples + newSamples, sourceLocation: sourceLocation
        )
        let last = try CLI.run(["get", "index.sqlite", "s29-2999", "--ext", "txt"], in: w.path)
        #expect(last.stdoutText == "payload of a sample", "\(last.stderrText)", sourceLocation: sourceLocation)
    }

    /// Seconds a full ingest of the big shards into an existing index takes here (measured once),
    /// so signals can also be aimed at its last moments (finishing, committing).
    static let fullRunSeconds: Double = {
        guard let w = try? prepare(existing: true) else { return 5 }
        let start = Date()
        let result = try? CLI.run(["ingest", "index.sqlite", "big-*.tar", "--quiet"], in: w.path)
        let seconds = Date().timeIntervalSince(start)
        return result?.status == 0 ? seconds : 5
    }()

    /// A delay: a fraction of the full run's duration, at least 0.1 s (so the signal handlers are
    /// installed: a Ctrl-C during process start-up kills it before it touches the index).
    static func delay(_ fraction: Double) -> Double { max(0.1, fraction * fullRunSeconds) }

    @Test(
        "Ctrl-C during an ingest into an existing index: exit 130 and the old index, or exit 0 and the new one",
        arguments: [0.0, 0.3, 0.95, 0.99, 1.01])
    func interrupt(atFraction fraction: Double) throws {
        let w = try Self.prepare(existing: true)
        let before = try #require(try w.bytes("index.sqlite"))
        let outcome = try Self.runAndSignal(
            ["ingest", "index.sqlite", "big-*.tar"], in: w, after: Self.delay(fraction), signal: SIGINT)
        #expect(
            outcome.exitedNormally,
            "killed by signal \(outcome.status) instead of exiting; stderr: \(outcome.stderr.prefix(300))")
        #expect(outcome.status == 130 || outcome.status == 0, "status \(outcome.status); stderr \(outcome.stderr)")
        let count = try Self.sampleCount(w)
        if outcome.status == 130 {
            #expect(outcome.stdout == "")
            #expect(outcome.stderr == "shardstore: error: ingest interrupted; the index was not changed\n")
            #expect(count == Self.baseSamples)
            #expect(try w.bytes("index.sqlite") == before, "the index file changed")
            #expect(
                try w.listing().filter { $0.hasPrefix("index") } == ["index.sqlite", "index.sqlite-locations"],
                "journal or partial files left behind")
        } else if outcome.status == 0 {
            #expect(count == Self.baseSamples + Self.newSamples)
            #expect(
                outcome.stdout.hasPrefix("ingested 30 shards (30 new, 0 changed, 0 unchanged)"), "\(outcome.stdout)")
            #expect(outcome.stderr == "")
        } else {
            // Whatever happened, the index must hold the old or the new samples.
            #expect(
                count == Self.baseSamples || count == Self.baseSamples + Self.newSamples,
                "count \(String(describing: count))")
            try Self.expectRecovers(w)
        }
    }

    @Test(
        "Ctrl-C while creating a new index: exit 130 and no index, or exit 0 and a complete one", arguments: [0.0, 0.5])
    func interruptNew(atFraction fraction: Double) throws {
        let w = try Self.prepare(existing: false)
        let listing = try w.listing()
        let outcome = try Self.runAndSignal(
            ["ingest", "index.sqlite", "base.tar", "big-*.tar"], in: w, after: Self.delay(fraction), signal: SIGINT)
        #expect(
            outcome.exitedNormally && (outcome.status == 130 || outcome.status == 0),
            "exited \(outcome.exitedNormally) status \(outcome.status); stderr: \(outcome.stderr.prefix(300))")
        if outcome.status == 130 {
            #expect(outcome.stdout == "")
            #expect(outcome.stderr == "shardstore: error: ingest interrupted; no index was created\n")
            #expect(try w.listing() == listing, "files left behind")
        } else {
            #expect(try Self.sampleCount(w) == Self.baseSamples + Self.newSamples)
        }
    }

    @Test(
        "kill -9 during an ingest into an existing index: the index opens with the old or the new count",
        arguments: [0.0, 0.5, 0.97, 0.99, 1.0])
    func killExisting(atFraction fraction: Double) throws {
        let w = try Self.prepare(existing: true)
        let outcome = try Self.runAndSignal(
            ["ingest", "index.sqlite", "big-*.tar"], in: w, after: Self.delay(fraction), signal: SIGKILL)
        #expect(
            (!outcome.exitedNormally && outcome.status == SIGKILL) || (outcome.exitedNormally && outcome.status == 0),
            "exited \(outcome.exitedNormally) status \(outcome.status)")
        let count = try Self.sampleCount(w)
        if outcome.exitedNormally {
            #expect(count == Self.baseSamples + Self.newSamples)
        } else {
            #expect(
                count == Self.baseSamples || count == Self.baseSamples + Self.newSamples,
                "count \(String(describing: count))")
        }
        // Every other reader sees the same state.
        let listed = try CLI.run(["ls", "index.sqlite", "--limit", "1"], in: w.path)
        #expect(listed.status == 0, "\(listed.stderrText)")
        #expect(listed.stdoutText == "0\tbase-0\t-\tcls\n")
        try Self.expectRecovers(w)
    }

    @Test("kill -9 while creating a new index: no index, or a complete one", arguments: [0.0, 0.5, 0.99])
    func killNew(atFraction fraction: Double) throws {
        let w = try Self.prepare(existing: false)
        let outcome = try Self.runAndSignal(
            ["ingest", "index.sqlite", "base.tar", "big-*.tar"], in: w, after: Self.delay(fraction), signal: SIGKILL)
        if FileManager.default.fileExists(atPath: w.file("index.sqlite")) {
            #expect(try Self.sampleCount(w) == Self.baseSamples + Self.newSamples, "outcome \(outcome)")
        } else {
            #expect(!outcome.exitedNormally)
            try expectFailure(
                ["info", "index.sqlite"], in: w.path,
                message: "index 'index.sqlite' does not exist; create it with `shardstore ingest index.sqlite SHARD...`"
            )
        }
        try Self.expectRecovers(w)
        let listing = try w.listing()
        #expect(
            listing.filter { $0.contains("index") } == ["index.sqlite", "index.sqlite-locations"],
            "partial files left behind: \(listing)")
    }
}
