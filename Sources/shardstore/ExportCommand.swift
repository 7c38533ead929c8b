import ArgumentParser
import ShardStore

#if canImport(Glibc)
    import Glibc
#endif

/// `--format`.
enum ExportFormat: String, ExpressibleByArgument, CaseIterable {
    case hdf5, raw
}

/// `--compression`.
enum CompressionChoice: String, ExpressibleByArgument, CaseIterable {
    case gzip, none
}

extension RawLayout: ExpressibleByArgument {}

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write splits to an HDF5 file, or to plain files in a folder.",
        discussion: """
            The output is written under a temporary name beside --out and renamed into place at the end, so a failed or interrupted export leaves nothing behind, and an existing --out is replaced only with --overwrite.

            Examples:
              shardstore export ds/index.sqlite --format hdf5 --split train --ext npy --out train.h5
              shardstore export ds/index.sqlite --format raw --split val --layout files --out val/
              shardstore export ds/index.sqlite --format raw --split train --ext npy --layout packed --out packed/
            """)

    @Argument(help: "The index file.")
    var index: String

    @Option(help: "The output format: hdf5 (one .h5 file) or raw (a folder of files).")
    var format: ExportFormat

    @Option(help: ArgumentHelp("The output: a file for hdf5, a folder for raw.", valueName: "path"))
    var out: String

    @Option(
        name: .customLong("split"),
        help: ArgumentHelp(
            "Export this split (hdf5: repeatable; raw: one). Without it, the whole dataset.", valueName: "name"))
    var splits: [String] = []

    @Option(
        name: .customLong("ext"),
        help: ArgumentHelp("Export only members with this extension (repeatable).", valueName: "ext"))
    var extensions: [String] = []

    @Option(help: "hdf5: gzip (with the shuffle filter for numbers) or none.")
    var compression: CompressionChoice = .gzip

    @Option(help: "hdf5: the gzip level, 1 (fast) to 9 (small).")
    var level: Int = 4

    @Option(
        help:
            "raw: files (DIR/<split>/<key>.<ext>, the exact bytes; keys with folders make subfolders) or packed (DIR/<split>/<ext>.bin, <ext>.offsets.npy, keys.txt, for numpy.memmap). Without --split, straight into DIR."
    )
    var layout: RawLayout = .files

    @Option(
        help: ArgumentHelp(
            "How member bytes are read: auto, memory, mmap or pread (see `shardstore bench --help`).",
            valueName: "strategy"))
    var strategy: LoadingStrategy = .auto

    @Flag(help: "Replace --out if it exists.")
    var overwrite = false

    @OptionGroup(title: "Remote shards") var remote: RemoteOptions

    @OptionGroup(title: "Cache folder") var cache: CacheOptions

    @Flag(help: "Print nothing but errors.")
    var quiet = false

    @Flag(help: "Print the summary as one JSON object.")
    var json = false

    func validate() throws {
        if !(1...9).contains(level) { throw ValidationError("Please give --level a number from 1 to 9.") }
        if out.isEmpty { throw ValidationError("Please give --out a path.") }
        if format == .hdf5, splits.count != Set(splits).count {
            throw ValidationError("Please name each --split once.")
        }
        if format == .raw, splits.count > 1 {
            throw ValidationError("Please give --format raw one --split at most; run one export per split.")
        }
    }

    func run() throws {
        installInterruptHandlers()
        var options = Dataset.Options(remote: try remote.configuration())
        try cache.apply(to: &options)
        let request = ExportRequest(
            index: index, out: out, splits: splits, extensions: extensions.isEmpty ? nil : extensions,
            overwrite: overwrite, strategy: strategy, options: options)
        let progress = !quiet && Terminal.stderrIsTerminal ? Self.progressRenderer() : nil
        let cancelled: @Sendable () -> Bool = { interruptRequested.load(ordering: .relaxed) }
        let report: ExportReport
        do {
            switch format {
            case .hdf5:
                report = try HDF5Export.run(
                    request, compression: compression == .none ? .none : .gzip(level: level), progress: progress,
                    isCancelled: cancelled)
            case .raw:
                report = try RawExport.run(request, layout: layout, progress: progress, isCancelled: cancelled)
            }
        } catch ExportError.cancelled {
            Terminal.clearProgress()
            Terminal.error("export interrupted; nothing was written to '\(out)'")
            // The shell's code for a command a signal stopped: 130 for SIGINT, 143 for SIGTERM,
            // 129 for SIGHUP.
            let signal = interruptSignal.load(ordering: .relaxed)
            throw ExitCode(128 + (signal > 0 ? signal : SIGINT))
        } catch {
            Terminal.clearProgress()
            Terminal.error(Terminal.message(for: error))
            throw ExitCode(1)
        }
        Terminal.clearProgress()
        if json {
            Terminal.line(Self.json(report, format: format))
        } else if !quiet {
            Terminal.line(Self.summary(report, format: format))
        }
        try Terminal.flush()
    }

    /// Draws progress at most ten times a second (and once at the end).
    static func progressRenderer() -> @Sendable (ExportProgress) -> Void {
        let throttle = ProgressThrottle()
        return { p in
            guard throttle.shouldDraw(at: p.seconds, final: p.samplesDone == p.samplesTotal) else { return }
            let total = max(p.samplesTotal, 1)
            let fraction = Double(p.samplesDone) / Double(total)
            let width = 24
            let filled = min(width, Int(fraction * Double(width)))
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            let rate = p.seconds > 0 ? Double(p.bytes) / 1e6 / p.seconds : 0
            Terminal.progress(
                "export: [\(bar)] \(Format.fixed(fraction * 100, 0))% \(Format.count(p.samplesDone))/\(Format.count(p.samplesTotal)) samples, \(Format.fixed(rate, 0)) MB/s (\(p.phase.rawValue))"
            )
        }
    }

    static func summary(_ r: ExportReport, format: ExportFormat) -> String {
        var s = "exported \(Format.count(r.samples, "sample")) (\(Format.count(r.members, "member")), "
        s += "\(Format.bytes(r.bytesRead)) read) to \(format.rawValue) '\(r.out)' (\(Format.bytes(r.bytesWritten)))"
        s += " in \(Format.fixed(r.seconds, 2)) s"
        return s
    }

    static func json(_ r: ExportReport, format: ExportFormat) -> String {
        var o = JSONObject()
        o.add("format", string: format.rawValue)
        o.add("out", string: r.out)
        o.add("samples", int: r.samples)
        o.add("members", int: r.members)
        o.add("bytes_read", int: r.bytesRead)
        o.add("bytes_written", int: r.bytesWritten)
        o.add("entries", JSONObject.array(r.entries.map(JSON.quote)))
        o.add("strategy", string: r.choice.strategy.rawValue)
        o.add("reason", string: r.choice.reason(.commandLine))
        o.add("seconds", double: r.seconds)
        return o.text
    }
}
