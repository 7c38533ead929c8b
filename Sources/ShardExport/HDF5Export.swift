import ShardCore
import ShardIO
import ShardIndex
import ShardLoader

#if canImport(Glibc)
    import Glibc
#endif

/// How HDF5 datasets are compressed.
public enum HDF5Compression: Sendable, Equatable {
    /// No filter.
    case none
    /// The deflate filter at `level` (1–9), after the shuffle filter for numeric data.
    case gzip(level: Int)
}

/// Exports a selection to one HDF5 file through libhdf5.
///
/// The file's layout (row `r` of every dataset is the same sample):
/// - `/keys`: the sample keys, variable-length UTF-8 strings, in export order;
/// - one dataset per extension, named after it (`/npy`, `/jpg`, `/seg.png`), with a
///   `shardstore_kind` attribute saying how it is stored (see ``ColumnKind``), and a
///   `shardstore_note` attribute when the storage is a fallback:
///   - `.npy` members of one dtype and shape: an N+1-dimensional array of that type, little-endian,
///     C order (`h5py` reads row `r` as `np.load(member)`);
///   - `.npy` members of one dtype and different shapes: variable-length sequences of the elements
///     in C order, plus `/<ext>_shape`, variable-length int64 sequences of the shapes;
///   - `.npy` members of different dtypes: each member's whole bytes (variable-length uint8);
///   - text (`json`, `txt`, `text`, `csv`, `tsv`, `xml`, `html`, `md`, `yaml`, `yml`):
///     variable-length UTF-8 strings, or the exact bytes when a member is not UTF-8 or holds a
///     NUL byte;
///   - `.cls`: int64 when every member is a decimal integer (whitespace around it allowed), text
///     otherwise;
///   - anything else: the exact bytes (variable-length uint8);
/// - `/<ext>_present`: booleans, only when some sample lacks the extension; such a sample holds
///   the fill (zeros, the empty string, the empty sequence);
/// - `/splits/<name>`: int64 rows of each split, when more than one split is exported (each
///   sample is exported once: the first split's samples in its order, then the samples of the
///   next split not exported yet, and so on);
/// - root attributes: each metadata entry of the index (its JSON text), `shardstore_source_index`
///   (the index's absolute path), `shardstore_version`, `shardstore_splits` (the split names).
///
/// Datasets are chunked (about 1 MiB a chunk), deflated at the chosen level (after the shuffle
/// filter for numbers) or not compressed. The file is written under a temporary name beside the
/// destination and renamed into place at the end (``ExportOutput``).
public enum HDF5Export {
    /// The names of the root attributes the export itself writes.
    static let ownAttributes = ["shardstore_source_index", "shardstore_version", "shardstore_splits"]

    /// Exports `request`'s selection to the HDF5 file `request.out`.
    ///
    /// ```swift
    /// let report = try HDF5Export.run(
    ///     ExportRequest(index: "ds/index.sqlite", out: "train.h5", splits: ["train"], extensions: ["npy"]),
    ///     compression: .gzip(level: 4))
    /// print(report.entries)   // ["keys", "npy"]
    /// ```
    ///
    /// Reads every selected member twice: once to choose each extension's storage (and to check
    /// every `.npy` header), then to write it.
    ///
    /// - Parameters:
    ///   - progress: called from the exporting thread as it goes.
    ///   - isCancelled: polled every few hundred samples; when it returns true the export stops
    ///     with ``ExportError/cancelled`` and nothing is written.
    /// - Throws: ``ExportError`` (an existing output without `overwrite`, a member that cannot be
    ///   decoded, a failed libhdf5 call, names that collide, `writeFailed` for a full disk or a
    ///   file size limit), `IndexError` (an unknown split or
    ///   extension), `IOError`, ``ShardChangedError``.
    /// - Complexity: O(selected bytes), twice.
    public static func run(
        _ request: ExportRequest, compression: HDF5Compression = .gzip(level: 4),
        progress: (@Sendable (ExportProgress) -> Void)? = nil, isCancelled: @Sendable () -> Bool = { false }
    ) throws -> ExportReport {
        try run(request, compression: compression, progress: progress, isCancelled: isCancelled, stagingLimit: nil)
    }

    /// ``run(_:compression:progress:isCancelled:)`` with the staging budget set (tests use 0 to
    /// make the second pass read the shards again).
    static func run(
        _ request: ExportRequest, compression: HDF5Compression, progress: (@Sendable (ExportProgress) -> Void)?,
        isCancelled: @Sendable () -> Bool, stagingLimit: Int64?
    ) throws -> ExportReport {
        try withoutActuallyEscaping(isCancelled) { isCancelled in
            var exporter = try HDF5Exporter(
                request, compression: compression, progress: progress, isCancelled: isCancelled)
            exporter.stagingLimit = stagingLimit
            return try exporter.run()
        }
    }
}

/// One run of ``HDF5Export/run(_:compression:progress:isCancelled:)``.
private struct HDF5Exporter {
    let request: ExportRequest
    let compression: HDF5Compression
    let progress: (@Sendable (ExportProgress) -> Void)?
    let isCancelled: @Sendable () -> Bool
    let clock = ContinuousClock()
    let started: ContinuousClock.Instant
    var lastReport: ContinuousClock.Instant
    let reader: IndexReader
    /// Overrides ``MemberStaging/budget(for:limit:)``'s limit.
    var stagingLimit: Int64?

    init(
        _ request: ExportRequest, compression: HDF5Compression, progress: (@Sendable (ExportProgress) -> Void)?,
        isCancelled: @escaping @Sendable () -> Bool
    ) throws {
        if case .gzip(let level) = compression, !(1...9).contains(level) {
            throw ExportError.invalidArgument("the gzip level must be 1 to 9, not \(level)")
        }
        self.request = request
        self.compression = compression
        self.progress = progress
        self.isCancelled = isCancelled
        started = clock.now
        lastReport = started
        reader = try IndexReader(path: request.index)
    }

    var seconds: Double {
        let d = (clock.now - started).components
        return Double(d.seconds) + Double(d.attoseconds) * 1e-18
    }

    /// Reports progress at most every 20 ms (and always when `force`), and checks for cancellation.
    mutating func tick(_ phase: ExportProgress.Phase, done: Int, total: Int, bytes: Int64, force: Bool = false) throws {
        if isCancelled() { throw ExportError.cancelled }
        guard let progress else { return }
        let now = clock.now
        guard force || now - lastReport >= .milliseconds(20) else { return }
        lastReport = now
        progress(ExportProgress(phase: phase, samplesDone: done, samplesTotal: total, bytes: bytes, seconds: seconds))
    }

    mutating func run() throws -> ExportReport {
        if isCancelled() { throw ExportError.cancelled }
        let output = try ExportOutput(
            destination: request.out, kind: .file, overwrite: request.overwrite,
            inputs: ExportRequest.inputs(index: request.index, reader: reader))
        let metadata = try reader.metadata()
        for entry in metadata where HDF5Export.ownAttributes.contains(entry.key) {
            throw ExportError.invalidArgument(
                "the index's metadata key '\(MessageText.escaped(entry.key))' has the name of an attribute the export writes itself; rename it with `shardstore meta`"
            )
        }
        let shards = try reader.shards()
        let selection = try HDF5Selection(request, isCancelled: isCancelled)
        try tick(.planning, done: 0, total: selection.count, bytes: 0, force: true)
        let staging = MemberStaging.budget(for: selection, limit: stagingLimit).map { _ in MemberStaging() }
        let surveys = try survey(selection, staging: staging, shards: shards)
        let columns = try plan(surveys, rows: selection.count, splits: selection.splitNames)

        // libhdf5 opens the temporary through /proc/self/fd/N: the file ExportOutput created
        // (O_EXCL, O_NOFOLLOW), whatever is put at its name meanwhile.
        let temporary = output.file!
        let file: HDF5File
        do {
            file = try HDF5File(creating: temporary.descriptorPath, name: request.out)
        } catch {
            // libhdf5 resolves the descriptor's link to a name, and fails when the temporary's name
            // was replaced: say so.
            try temporary.checkName()
            throw ExportError.writeFailure(error, out: request.out)
        }
        let members: Int
        do {
            members = try write(
                selection, columns: columns, staging: staging, metadata: metadata, to: file, shards: shards)
            try tick(
                .publishing, done: selection.count, total: selection.count, bytes: bytesTotal(surveys), force: true)
            try file.close()
        } catch {
            try? file.close()
            output.discard()
            throw ExportError.writeFailure(error, out: request.out)
        }
        let size = try temporary.size()
        if isCancelled() { throw ExportError.cancelled }
        do {
            try output.publish()
        } catch {
            throw ExportError.writeFailure(error, out: request.out)
        }
        var entries = ["keys"]
        for c in columns { entries += c.names }
        if selection.splitNames.count > 1 { entries.append("splits") }
        return ExportReport(
            out: request.out, samples: selection.count, members: members, bytesRead: bytesTotal(surveys),
            bytesWritten: size, entries: entries, choice: selection.choice, seconds: seconds)
    }

    func bytesTotal(_ surveys: [ColumnSurvey]) -> Int64 { surveys.reduce(0) { $0 + $1.bytes } }

    // MARK: First pass

    /// Reads every member once: checks `.npy` headers, text and integers, counts presence; with
    /// `staging`, keeps a copy of every key and member for the second pass.
    mutating func survey(_ selection: HDF5Selection, staging: MemberStaging?, shards: [ShardRecord]) throws
        -> [ColumnSurvey]
    {
        var surveys: [ColumnSurvey] = []
        var byExt: [String: Int] = [:]
        var bytes: Int64 = 0
        for row in 0..<selection.count {
            if row & 255 == 0 { try tick(.planning, done: row, total: selection.count, bytes: bytes) }
            try selection.withSample(row: row) { view in
                staging?.keys.append(view.keyBytes)
                for member in view {
                    let c: Int
                    if let known = byExt[member.ext] {
                        c = known
                    } else {
                        c = surveys.count
                        byExt[member.ext] = c
                        surveys.append(ColumnSurvey(ext: member.ext))
                        staging?.columns[member.ext] = StagedColumn()
                    }
                    if surveys[c].lastRow == row {
                        throw ExportError.invalidArgument(
                            "sample '\(MessageText.escaped(view.key))' has more than one '.\(MessageText.escaped(member.ext))' member; an HDF5 export holds one a sample: leave the extension out with --ext, or export with --format raw"
                        )
                    }
                    do {
                        try surveys[c].add(member.bytes, row: row)
                    } catch let error as NPYError {
                        throw try badMember(view, member.ext, reason: error.description, shards: shards)
                    }
                    if let staged = staging?.columns[member.ext] {
                        staged.bytes.append(member.bytes)
                        staged.rows.append(row)
                    }
                    bytes += Int64(member.bytes.count)
                }
            }
        }
        try tick(.planning, done: selection.count, total: selection.count, bytes: bytes, force: true)
        return surveys.sorted { $0.ext < $1.ext }
    }

    /// ``ExportError/badMember(key:ext:shard:offset:reason:)`` for member `ext` of `view`, with
    /// the shard and offset looked up in the index.
    func badMember(_ view: SampleView, _ ext: String, reason: String, shards: [ShardRecord]) throws -> ExportError {
        try Self.badMember(reader, view, ext, reason: reason, shards: shards)
    }

    static func badMember(
        _ reader: IndexReader, _ view: SampleView, _ ext: String, reason: String, shards: [ShardRecord]
    ) throws -> ExportError {
        let member = try reader.members(ofSample: Int64(view.index)).first { $0.ext == ext }
        let shard = shards.first { $0.id == member?.location.shardID }
        return ExportError.badMember(
            key: view.key.description, ext: ext, shard: shard?.path ?? "?",
            offset: member?.location.dataOffset ?? -1, reason: reason)
    }

    // MARK: Layout

    /// One extension's dataset(s) in the file.
    struct Column {
        var ext: String
        var kind: ColumnKind
        var note: String?
        /// Whether some row lacks the member (then `/<ext>_present` is written).
        var hasGaps: Bool
        /// The top-level names it writes.
        var names: [String] {
            var out = [ext]
            if case .raggedArray = kind { out.append(ext + "_shape") }
            if hasGaps { out.append(ext + "_present") }
            return out
        }
    }

    /// Chooses each extension's storage and checks that the names in the file are distinct and
    /// usable as HDF5 link names.
    func plan(_ surveys: [ColumnSurvey], rows: Int, splits: [String]) throws -> [Column] {
        var taken: [String: String] = ["keys": "the sample keys"]
        if splits.count > 1 { taken["splits"] = "the split group" }
        var problems: [String] = []
        let columns = surveys.map { s in
            let (kind, note) = s.kind
            return Column(ext: s.ext, kind: kind, note: note, hasGaps: s.present < rows)
        }
        for c in columns {
            if c.ext.isEmpty || c.ext == "." {
                problems.append("the extension '\(MessageText.escaped(c.ext))' cannot name an HDF5 dataset")
                continue
            }
            for name in c.names {
                if let other = taken[name] {
                    problems.append(
                        "'/\(MessageText.escaped(name))' of the .\(MessageText.escaped(c.ext)) members would collide with \(MessageText.escaped(other))"
                    )
                } else {
                    taken[name] = name == c.ext ? "the .\(c.ext) members" : "'/\(name)' of the .\(c.ext) members"
                }
            }
        }
        var badSplits: [String] = []
        if splits.count > 1 {
            for name in splits where name.contains("/") || name == "." || name == ".." {
                badSplits.append("the split name '\(MessageText.escaped(name))' cannot name an HDF5 dataset in /splits")
            }
        }
        guard problems.isEmpty, badSplits.isEmpty else {
            var advice: [String] = []
            if !problems.isEmpty { advice.append("leave those extensions out with --ext, or export with --format raw") }
            if !badSplits.isEmpty {
                advice.append(
                    "export such a split on its own (a single --split writes no /splits group), or assign its samples to a split with a plain name (`shardstore split INDEX assign NAME ...`)"
                )
            }
            throw ExportError.invalidArgument(
                "cannot lay out the HDF5 file: \((problems + badSplits).joined(separator: "; ")); \(advice.joined(separator: "; "))"
            )
        }
        return columns
    }

    // MARK: Second pass

    /// Writes the attributes, `/keys`, every extension's datasets and `/splits`: from `staging`
    /// when the first pass kept the members, else reading them again. Returns the number of
    /// members written.
    mutating func write(
        _ selection: HDF5Selection, columns: [Column], staging: MemberStaging?,
        metadata: [(key: String, value: String)], to file: HDF5File, shards: [ShardRecord]
    ) throws -> Int {
        for entry in metadata { try file.setAttribute(entry.key, string: Array(entry.value.utf8)) }
        try file.setAttribute("shardstore_source_index", string: Array(try Paths.real(request.index).utf8))
        try file.setAttribute("shardstore_version", string: Array(ShardStoreVersion.string.utf8))
        try file.setAttribute("shardstore_splits", strings: selection.splitNames.map { Array($0.utf8) })

        let count = selection.count
        let keys = try TextColumnWriter(
            name: "keys", file: file, count: count, compression: compression, presenceName: nil)
        var writers: [HDF5ColumnWriter] = []
        for c in columns {
            let writer = try HDF5ColumnWriter.make(
                c.kind, name: c.ext, file: file, count: count, compression: compression,
                presenceName: c.hasGaps ? c.ext + "_present" : nil)
            try writer.dataset.setAttribute("shardstore_kind", string: c.kind.name)
            if let note = c.note { try writer.dataset.setAttribute("shardstore_note", string: note) }
            writers.append(writer)
        }
        let members: Int
        if let staging {
            let reader = reader
            members = try writeStaged(staging, count: count, keys: keys, columns: columns, writers: writers) {
                row, ext, reason in
                try selection.withSample(row: row) {
                    try Self.badMember(reader, $0, ext, reason: reason, shards: shards)
                }
            }
        } else {
            members = try writeRead(selection, keys: keys, columns: columns, writers: writers, shards: shards)
        }
        try keys.finish()
        for w in writers { try w.finish() }
        if selection.splitNames.count > 1 {
            try file.createGroup("splits")
            for (name, rows) in zip(selection.splitNames, selection.splitRows) {
                let dataset = try file.createDataset(
                    "splits/" + name, type: .int64, dims: [rows.count],
                    storage: .chunked(rows: rows.count, rowBytes: 8, compression: compression, numeric: true))
                try rows.withUnsafeBytes { try dataset.write(rows: 0..<rows.count, from: $0.baseAddress!) }
                try dataset.close()
            }
        }
        return members
    }

    /// The second pass from the copies the first one kept: the keys, then each extension.
    mutating func writeStaged(
        _ staging: MemberStaging, count: Int, keys: TextColumnWriter, columns: [Column], writers: [HDF5ColumnWriter],
        badMember: (Int, String, String) throws -> ExportError
    ) throws -> Int {
        let total = staging.columns.values.reduce(staging.keys.count) { $0 + $1.rows.count }
        var done = 0
        var bytes: Int64 = 0
        for i in 0..<staging.keys.count {
            try keys.add(row: i, staging.keys[i])
        }
        done += staging.keys.count
        for (c, column) in columns.enumerated() {
            guard let staged = staging.columns[column.ext] else { continue }
            for i in 0..<staged.rows.count {
                if i & 1023 == 0 {
                    try tick(.writing, done: done * count / max(total, 1), total: count, bytes: bytes)
                }
                let member = staged.bytes[i]
                do {
                    try writers[c].add(row: staged.rows[i], member)
                } catch let error as NPYError {
                    throw try badMember(staged.rows[i], column.ext, error.description)
                } catch let error as MemberMismatch {
                    throw try badMember(staged.rows[i], column.ext, error.reason)
                }
                bytes += Int64(member.count)
                done += 1
            }
            staging.columns[column.ext] = nil  // free the copies as soon as they are written
        }
        try tick(.writing, done: count, total: count, bytes: bytes, force: true)
        return total - staging.keys.count
    }

    /// The second pass reading every member again, row by row.
    mutating func writeRead(
        _ selection: HDF5Selection, keys: TextColumnWriter, columns: [Column], writers: [HDF5ColumnWriter],
        shards: [ShardRecord]
    ) throws -> Int {
        var byExt: [String: Int] = [:]
        for (i, c) in columns.enumerated() { byExt[c.ext] = i }
        let count = selection.count
        var bytes: Int64 = 0
        var members = 0
        for row in 0..<count {
            if row & 255 == 0 { try tick(.writing, done: row, total: count, bytes: bytes) }
            try selection.withSample(row: row) { view in
                try keys.add(row: row, view.keyBytes)
                for member in view {
                    guard let c = byExt[member.ext] else { continue }
                    do {
                        try writers[c].add(row: row, member.bytes)
                    } catch let error as NPYError {
                        throw try badMember(view, member.ext, reason: error.description, shards: shards)
                    } catch let error as MemberMismatch {
                        throw try badMember(view, member.ext, reason: error.reason, shards: shards)
                    }
                    bytes += Int64(member.bytes.count)
                    members += 1
                }
            }
        }
        try tick(.writing, done: count, total: count, bytes: bytes, force: true)
        return members
    }
}
