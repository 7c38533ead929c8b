import ShardCore
import ShardIO
import ShardIndex
import ShardLoader

#if canImport(Glibc)
    import Glibc
#endif

/// How a raw export lays files out.
public enum RawLayout: String, Sendable, CaseIterable {
    /// `DIR/<split>/<key>.<ext>`: one file per member, the exact bytes.
    case files
    /// `DIR/<split>/<ext>.bin` + `<ext>.offsets.npy` + `keys.txt`, for numpy.memmap.
    case packed
}

/// Exports a selection to plain files in a folder.
///
/// Layouts (with `--split NAME` everything goes into `DIR/NAME/`; without one, into `DIR/`):
/// - ``RawLayout/files``: one file per member, `<key>.<ext>` with the member's exact bytes; a key
///   with folders (`cats/0001`) makes subfolders. The extension is the index's, lower-cased.
/// - ``RawLayout/packed``: per extension `<ext>.bin` (every sample's member back to back) and
///   `<ext>.offsets.npy` (NPY 1.0, `<i8`, `count + 1` values; sample `i`'s member is
///   `bin[offsets[i]:offsets[i+1]]`, empty when it has none), and `keys.txt` (one key per line,
///   in the same order). Keys are not paths there, so only keys holding a line break are refused.
///
/// Names (files layout): `.` and empty folder components are dropped (`./000001.jpg` is written
/// as `000001.jpg`); absolute names, `..` components, components over 255 bytes or with a NUL,
/// two members that land on the same file, and a file that is also another member's folder are
/// all refused in one ``ExportError/unsafeNames(_:)`` before anything is written. Files are
/// created relative to folder descriptors with `O_NOFOLLOW | O_EXCL` (see `FileTree`), so a
/// symbolic link planted in the output while it is written is refused, never followed.
///
/// Samples are read in storage order (``Dataset/forEachSample(_:)``: each shard front to back),
/// which is also the order of `keys.txt` and the offsets. The output is written into a temporary
/// folder beside `request.out`, synced, and renamed into place (``ExportOutput``): a failure or
/// a cancellation leaves nothing behind, and an existing `out` is replaced only with `overwrite`.
///
/// ```swift
/// let request = ExportRequest(index: "ds/index.sqlite", out: "val", splits: ["val"])
/// let report = try RawExport.run(request, layout: .files)
/// // val/val/000123.jpg, val/val/000123.cls, ...
/// ```
public enum RawExport {
    /// Runs a raw export.
    ///
    /// - Parameters:
    ///   - request: the index, at most one split, the extensions, the output folder.
    ///   - layout: one file per member, or packed arrays.
    ///   - progress: called from the exporting thread, at most about twenty times a second
    ///     (and at each phase change).
    ///   - isCancelled: polled once per sample; when it returns true the export stops and
    ///     throws ``ExportError/cancelled``.
    /// - Returns: what was written.
    /// - Throws: ``ExportError`` (`outputExists`, `missingParent`, `outputIsInput`,
    ///   `unsafeNames`, `invalidArgument`, `cancelled`, `writeFailed` for a full disk), `IndexError` (unknown split or
    ///   extension), `ShardChangedError`, `IOError` (a failed read or write). Nothing is left at
    ///   `request.out` or beside it after a throw.
    /// - Complexity: one pass over the selection's index rows to check names, then one
    ///   sequential read of the selected members; files layout: one `openat`/`write`/`close`
    ///   per member, then one `syncfs`; packed: buffered writes, one `fsync` per file.
    public static func run(
        _ request: ExportRequest, layout: RawLayout,
        progress: (@Sendable (ExportProgress) -> Void)? = nil, isCancelled: @Sendable () -> Bool = { false }
    ) throws -> ExportReport {
        do {
            return try export(request, layout: layout, progress: progress, isCancelled: isCancelled)
        } catch {
            throw ExportError.writeFailure(error, out: request.out)
        }
    }

    /// ``run(_:layout:progress:isCancelled:)`` without naming a full disk.
    private static func export(
        _ request: ExportRequest, layout: RawLayout,
        progress: (@Sendable (ExportProgress) -> Void)?, isCancelled: @Sendable () -> Bool
    ) throws -> ExportReport {
        var meter = Meter(progress: progress)
        guard request.splits.count <= 1 else {
            throw ExportError.invalidArgument(
                "a raw export writes one split at a time (given: \(request.splits.map { "'\($0)'" }.joined(separator: ", "))); run one export per split"
            )
        }
        let split = request.splits.first
        if let split { try checkSplitFolder(split) }

        let reader = try IndexReader(path: request.index)
        if let split { _ = try reader.splitID(split) }
        let shards = try reader.shards()
        let output = try ExportOutput(
            destination: request.out, kind: .directory, overwrite: request.overwrite,
            inputs: ExportRequest.inputs(index: request.index, reader: reader))
        defer { output.discard() }

        let reading = try request.reading()
        let dataset = try Dataset(
            index: request.index, split: split, extensions: request.extensions, strategy: reading.choice.strategy,
            options: reading.options)
        let total = dataset.count
        meter.report(.planning, 0, total, force: true)
        let plan = try Plan.make(
            reader: reader, split: split, extensions: dataset.extensions, layout: layout, shards: shards,
            isCancelled: isCancelled)

        let tree = try FileTree(root: output.temporaryPath)
        let base: [[UInt8]] = split.map { [Array($0.utf8)] } ?? []
        var done = 0
        var members = 0
        var bytesRead: Int64 = 0
        var bytesWritten: Int64 = 0
        let entries: [String]
        meter.report(.writing, 0, total, force: true)
        do {
            if !base.isEmpty { _ = try tree.folder(base[...]) }
            switch layout {
            case .files:
                try dataset.forEachSample { view in
                    if isCancelled() { throw ExportError.cancelled }
                    let key = Array(view.keyBytes)
                    for member in view {
                        try write(member, key: key, base: base, tree: tree, plan: plan)
                        members += 1
                        bytesWritten += Int64(member.bytes.count)
                    }
                    bytesRead += Int64(view.byteCount)
                    done += 1
                    meter.report(.writing, done, total, bytes: bytesRead)
                }
                meter.report(.publishing, done, total, bytes: bytesRead, force: true)
                try tree.syncFileSystem()
                entries = split.map { [$0] } ?? plan.topLevel
            case .packed:
                let packed = try PackedWriter(
                    tree: tree, folder: base, extensions: plan.extensions, expectedSamples: total)
                try dataset.forEachSample { view in
                    if isCancelled() { throw ExportError.cancelled }
                    members += try packed.append(view)
                    bytesRead += Int64(view.byteCount)
                    done += 1
                    meter.report(.writing, done, total, bytes: bytesRead)
                }
                meter.report(.publishing, done, total, bytes: bytesRead, force: true)
                bytesWritten = try packed.finish()
                entries = split.map { [$0] } ?? packed.entries
            }
        } catch let crossing as FileTree.Crossing {
            throw ExportError.invalidArgument(
                "refusing to write into '\(output.temporaryPath)': the path \(crossing.reason), which the export did not make; another process changed the folder while the export ran, and nothing was published. Stop what writes there and run the export again, or choose another --out"
            )
        }
        guard done == total else {
            throw ExportError.invalidArgument(
                "the index changed while it was being exported (\(done) samples read, \(total) expected); run the export again"
            )
        }
        if isCancelled() { throw ExportError.cancelled }
        try output.publish()
        let seconds = meter.elapsed()
        meter.report(.publishing, done, total, bytes: bytesRead, force: true)
        return ExportReport(
            out: request.out, samples: total, members: members, bytesRead: bytesRead, bytesWritten: bytesWritten,
            entries: entries, choice: request.strategy == .auto ? reading.choice : dataset.choice, seconds: seconds)
    }

    /// Writes one member of the files layout.
    private static func write(
        _ member: SampleView.Member, key: [UInt8], base: [[UInt8]], tree: FileTree, plan: Plan
    ) throws {
        let ext = Array(member.ext.utf8)
        guard case .success(let components) = ExportPath.components(key: key, ext: ext) else {
            throw ExportError.invalidArgument(
                "the index changed while it was being exported (member '\(ExportPath.display(ExportPath.memberName(key: key, ext: ext)))' was not planned); run the export again"
            )
        }
        do {
            try tree.writeFile(base + components, member.bytes)
        } catch let crossing as FileTree.Crossing {
            // The names were checked when planned: a symlink met now was planted by another
            // process while the export ran. The planned member (its shard) is looked up only
            // here: the write path pays no lookup.
            let origin = plan.files[ExportPath.joined(components)]
            let name = ExportPath.display(ExportPath.memberName(key: key, ext: ext))
            let shard = origin.map { plan.shardNames[$0.shard] } ?? "?"
            throw ExportError.invalidArgument(
                "refusing to write '\(name)' (in '\(shard)') into '\(tree.rootPath)': it \(crossing.reason), which the export did not make; another process changed the folder while the export ran, and nothing was published. Stop what writes there and run the export again, or choose another --out"
            )
        }
    }

    /// A split's name becomes a folder: it must be one safe component.
    private static func checkSplitFolder(_ split: String) throws {
        let bytes = Array(split.utf8)
        var problem = ExportPath.componentProblem(bytes)?.reason
        if bytes.isEmpty || bytes == [UInt8(ascii: ".")] { problem = "is not a folder name" }
        if bytes.contains(UInt8(ascii: "/")) { problem = "holds a '/'" }
        if let problem {
            throw ExportError.invalidArgument(
                "cannot export split '\(ExportPath.display(bytes))' as a folder: its name \(problem); assign its samples to a split with a plain name (`shardstore split INDEX assign NAME ...`)"
            )
        }
    }

    /// What the names check found: the files layout's paths, the packed layout's extensions.
    struct Plan {
        /// Files layout: every file path (joined components) and the member writing it.
        var files: [[UInt8]: NameCheck.Origin] = [:]
        /// Files layout: the top-level names, sorted.
        var topLevel: [String] = []
        /// Packed layout: the extensions, sorted.
        var extensions: [String] = []
        /// The shard paths as stored in the index, by shard number.
        var shardNames: [String]

        /// Reads the selection's keys and extensions from the index and checks every name.
        ///
        /// - Throws: ``ExportError/unsafeNames(_:)`` (files layout), ``ExportError/invalidArgument(_:)``
        ///   (packed: keys with line breaks, extensions that cannot name a file), `SQLiteError`.
        static func make(
            reader: IndexReader, split: String?, extensions: [String]?, layout: RawLayout, shards: [ShardRecord],
            isCancelled: () -> Bool
        ) throws -> Plan {
            var plan = Plan(shardNames: shards.map(\.path))
            var shardNumbers: [Int64: Int] = [:]
            for (n, s) in shards.enumerated() { shardNumbers[s.id] = n }
            var check = NameCheck(shardNames: plan.shardNames)
            var found = Set<String>()
            var brokenKeys: [(key: String, shard: String)] = []
            var lastKeyID: Int64 = -1

            var sql = "SELECT s.id, s.key, m.ext, m.shard_id, s.shard_id FROM "
            sql += split == nil ? "samples s" : "split_members sm JOIN samples s ON s.id = sm.sample_id"
            sql += " LEFT JOIN members m ON m.sample_id = s.id"
            var values: [SQLValue] = []
            if let extensions {
                sql += " AND m.ext IN (\(extensions.map { _ in "?" }.joined(separator: ", ")))"
                values += extensions.map { .text($0) }
            }
            if let split {
                sql += " WHERE sm.split_id = ? ORDER BY sm.position, m.ext"
                values.append(.integer(try reader.splitID(split)))
            } else {
                sql += " ORDER BY s.id, m.ext"
            }
            let st = try reader.database.prepare(sql)
            try st.bind(values)
            var rows = 0
            while try st.step() {
                rows += 1
                if rows & 4095 == 0, isCancelled() { throw ExportError.cancelled }
                let id = st.int64(at: 0)
                let key = st.textBytes(at: 1)
                let hasMember = !st.isNull(at: 2)
                let shard = shardNumbers[hasMember ? st.int64(at: 3) : st.int64(at: 4)] ?? 0
                switch layout {
                case .files:
                    if hasMember { check.add(key: key, ext: Array(st.text(at: 2).utf8), shard: shard) }
                case .packed:
                    if hasMember { found.insert(st.text(at: 2)) }
                    if id != lastKeyID, key.contains(where: { $0 == 0x0A || $0 == 0x0D }) {
                        brokenKeys.append((ExportPath.display(key), plan.shardNames[shard]))
                    }
                }
                lastKeyID = id
            }
            st.reset()
            switch layout {
            case .files:
                guard check.refused.isEmpty else { throw ExportError.unsafeNames(check.refused) }
                plan.files = check.files
                if split == nil {
                    let slash = UInt8(ascii: "/")
                    let top = Set(check.files.keys.map { Array($0.prefix { $0 != slash }) })
                    plan.topLevel = top.sorted { $0.lexicographicallyPrecedes($1) }.map { ExportPath.display($0) }
                }
            case .packed:
                if !brokenKeys.isEmpty {
                    let shown = brokenKeys.prefix(10).map { "'\($0.key)' (in '\($0.shard)')" }
                    let more = brokenKeys.count > 10 ? ", and \(brokenKeys.count - 10) more" : ""
                    throw ExportError.invalidArgument(
                        "cannot write keys.txt: \(brokenKeys.count) key\(brokenKeys.count == 1 ? "" : "s") hold\(brokenKeys.count == 1 ? "s" : "") a line break, and keys.txt has one key per line: \(shown.joined(separator: ", "))\(more); nothing was written. Rename them in the shards, or export with --layout files"
                    )
                }
                plan.extensions = (extensions ?? Array(found)).sorted()
                for ext in plan.extensions {
                    if let problem = ExportPath.componentProblem(Array((ext + ".offsets.npy").utf8)) {
                        throw ExportError.invalidArgument(
                            "cannot name the packed files of extension '.\(ExportPath.display(Array(ext.utf8)))': '\(ExportPath.display(Array(ext.utf8))).offsets.npy' \(problem.reason); leave the extension out with --ext"
                        )
                    }
                }
            }
            return plan
        }
    }

    /// Progress reports, limited to about twenty a second.
    struct Meter {
        let progress: (@Sendable (ExportProgress) -> Void)?
        private let clock = ContinuousClock()
        private let start: ContinuousClock.Instant
        private var last = -1.0

        init(progress: (@Sendable (ExportProgress) -> Void)?) {
            self.progress = progress
            start = clock.now
        }

        func elapsed() -> Double {
            let d = clock.now - start
            return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
        }

        mutating func report(
            _ phase: ExportProgress.Phase, _ done: Int, _ total: Int, bytes: Int64 = 0, force: Bool = false
        ) {
            guard let progress else { return }
            let now = elapsed()
            guard force || now - last >= 0.05 else { return }
            last = now
            progress(ExportProgress(phase: phase, samplesDone: done, samplesTotal: total, bytes: bytes, seconds: now))
        }
    }
}
