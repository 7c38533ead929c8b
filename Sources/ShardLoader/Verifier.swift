import ShardCompression
import ShardCore
import ShardIO
import ShardIndex
import ShardRemote

#if canImport(Glibc)
    import Glibc
#endif

/// One thing `shardstore verify` found wrong: a shard that is missing or changed, an index row
/// that cannot be right, a member whose own tar header does not match its row, or member data
/// whose CRC-32C differs from the one recorded at ingest.
public struct VerificationProblem: Sendable, Equatable, CustomStringConvertible {
    /// What kind of check failed.
    public enum Kind: String, Sendable, Equatable {
        /// The shard file: missing, unreadable, or its size or modification time differ from ingest.
        case shard
        /// The index row: offsets not block-aligned, data not after its header, a negative length,
        /// data past the shard's recorded size, a sample or shard that does not exist.
        case row = "index row"
        /// The member's own tar header (the 512-byte block before its data), or the shard ending
        /// before it.
        case header
        /// The member's data against its recorded CRC-32C.
        case data
    }

    /// What kind of check failed.
    public var kind: Kind
    /// The shard's path as the index stores it.
    public var shardPath: String
    /// The byte offset in the shard the problem is at: the header block for ``Kind/header``, the
    /// first data byte for ``Kind/data`` and ``Kind/row``; nil for ``Kind/shard``.
    public var offset: Int64?
    /// The member's key and extension; nil for ``Kind/shard`` (and the key for a row naming no
    /// sample).
    public var key: SampleKey?
    public var ext: String?
    /// What is wrong, in words (one line).
    public var detail: String
    /// What the index expects and what was found, when the check compares two values.
    public var expected: String?
    public var found: String?

    public init(
        kind: Kind, shardPath: String, offset: Int64? = nil, key: SampleKey? = nil, ext: String? = nil,
        detail: String, expected: String? = nil, found: String? = nil
    ) {
        self.kind = kind
        self.shardPath = shardPath
        self.offset = offset
        self.key = key
        self.ext = ext
        self.detail = detail
        self.expected = expected
        self.found = found
    }

    /// One line, every name quoted and escaped:
    /// `shard 'a.tar' byte 1536 key '000003' ext 'jpg': header: the header there names …`.
    public var description: String {
        var s = "shard " + MessageText.quoted(shardPath)
        if let offset { s += " byte \(offset)" }
        if let key { s += " key " + MessageText.quoted(key.bytes) }
        if let ext { s += " ext " + MessageText.quoted(ext) }
        return s + ": \(kind.rawValue): " + detail
    }
}

/// What `shardstore verify` checks and reports.
public struct VerificationOptions: Sendable {
    /// Check only the members of the samples in this split (and only the shards holding them).
    public var split: String?
    /// Also read every data byte and compare it with the CRC-32C recorded by
    /// `ingest --checksums`.
    public var data: Bool
    /// Called with each problem as it is found, in storage order. When nil, problems are
    /// collected in ``VerificationReport/problems``.
    public var onProblem: (@Sendable (VerificationProblem) -> Void)?
    /// Called from the verifying thread every few thousand members and after each shard.
    public var progress: (@Sendable (VerificationProgress) -> Void)?
    /// Polled between members; when it returns true verification stops with
    /// ``VerificationError/cancelled``.
    public var isCancelled: @Sendable () -> Bool
    /// How remote shards are reached; nil resolves it from the environment and the AWS files
    /// when a checked shard is remote.
    public var remote: RemoteConfiguration?

    public init(
        split: String? = nil, data: Bool = false, onProblem: (@Sendable (VerificationProblem) -> Void)? = nil,
        progress: (@Sendable (VerificationProgress) -> Void)? = nil,
        isCancelled: @escaping @Sendable () -> Bool = { false }, remote: RemoteConfiguration? = nil
    ) {
        self.split = split
        self.data = data
        self.onProblem = onProblem
        self.progress = progress
        self.isCancelled = isCancelled
        self.remote = remote
    }
}

/// Where a verification is.
public struct VerificationProgress: Sendable {
    /// Member rows checked so far, and in all.
    public var membersDone: Int
    public var membersTotal: Int
    /// Bytes read from shards so far.
    public var bytesRead: Int64
    /// Seconds since the verification started.
    public var seconds: Double
}

/// What a verification found.
public struct VerificationReport: Sendable {
    /// Whether data was checked against checksums (`--data`), not just headers.
    public var checkedData = false
    /// Member rows checked (every row of the selection, including ones with problems).
    public var members = 0
    /// Shards checked.
    public var shards = 0
    /// Bytes read from shards.
    public var bytesRead: Int64 = 0
    /// Problems found.
    public var problemCount = 0
    /// The problems, when ``VerificationOptions/onProblem`` was nil.
    public var problems: [VerificationProblem] = []
    /// Wall time in seconds.
    public var seconds = 0.0

    public init() {}

    /// Whether nothing was found wrong.
    public var isClean: Bool { problemCount == 0 }
}

/// Why a verification could not run (problems it finds are not errors: see
/// ``VerificationReport``).
public enum VerificationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// `data` was asked for, but the selected shards have no recorded checksums: `missing` of
    /// `total` lack them; `example` names one.
    case noChecksums(index: String, missing: Int, total: Int, example: String)
    /// Cancelled (Ctrl-C) after `members` members.
    case cancelled(members: Int)

    public var description: String {
        switch self {
        case .noChecksums(let index, let missing, let total, let example):
            let fix = "run `shardstore ingest --checksums \(index) SHARDS...` to record them"
            if missing == total {
                return "this index has no checksums; \(fix) (ingest reads the whole shards then)"
            }
            return
                "\(missing) of \(total) shards have no checksums (\(MessageText.quoted(example)) is one); \(fix) (ingest reads the shards without them whole)"
        case .cancelled(let members):
            return "verify interrupted after \(members) members"
        }
    }
}

/// Checks an index against its shards: every member's own tar header (and with `data`, every
/// byte against the CRC-32C recorded by `ingest --checksums`), every index row's sanity, and
/// every shard's presence, size and modification time. Reads each shard once, front to back.
///
/// What is checked:
/// - each shard: present, a regular file, size and modification time as recorded at ingest;
/// - each member row: header and data offsets block-aligned, data at least one block after the
///   header offset, length non-negative, data within the shard's recorded size, its sample and
///   shard exist;
/// - each member's own header (the 512-byte block before its data, read with `pread`, or from
///   large sequential reads with `data`): checksum, regular-file type, size equal to the
///   indexed length, name consistent with the key and extension (``MemberHeaderCheck``);
/// - with `data`: the CRC-32C of the member's bytes equals the recorded one.
///
/// ```swift
/// let report = try Verifier.run(index: "ds/index.sqlite", options: VerificationOptions(data: true))
/// for problem in report.problems { print(problem) }
/// ```
public enum Verifier {
    /// Verifies the index at `indexPath`.
    ///
    /// - Throws: ``VerificationError/noChecksums(index:missing:total:example:)`` when `data` is
    ///   asked for and some selected shard has no checksums (nothing was read);
    ///   ``VerificationError/cancelled(members:)``; `IndexError` (no index, unknown split),
    ///   `SchemaError`, `SQLiteError`, `IOError` for the index itself. Problems with shards,
    ///   rows, headers or data are reported, not thrown.
    /// - Complexity: O(members) header checks (one 512-byte `pread` each), or with `data` O(bytes
    ///   of the selected shards) in 4 MiB reads and CRC work; memory O(shards) plus one buffer.
    public static func run(index indexPath: String, options: VerificationOptions = VerificationOptions()) throws
        -> VerificationReport
    {
        let clock = ContinuousClock()
        let start = clock.now
        func elapsed() -> Double {
            let d = clock.now - start
            return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
        }
        let index = try IndexReader(path: indexPath)
        let indexDirectory = try Paths.real(Paths.directory(of: Paths.absolute(indexPath)))
        let shards = try index.shards()
        var shardByID: [Int64: Int] = [:]
        for (n, s) in shards.enumerated() { shardByID[s.id] = n }
        let total = try index.memberCount(inSplit: options.split)

        var report = VerificationReport()
        report.checkedData = options.data
        func problem(_ p: VerificationProblem) {
            report.problemCount += 1
            if let onProblem = options.onProblem { onProblem(p) } else { report.problems.append(p) }
        }

        // The shards to check: all of them, or those holding the split's members.
        var selected: [Bool]
        if let split = options.split {
            selected = Array(repeating: false, count: shards.count)
            for id in try index.shardIDs(inSplit: split) {
                if let n = shardByID[id] { selected[n] = true }
            }
        } else {
            selected = Array(repeating: true, count: shards.count)
        }
        if options.data {
            let withChecksums = try index.shardIDsWithChecksums()
            let lacking = shards.indices.filter { selected[$0] && !withChecksums.contains(shards[$0].id) }
            if let first = lacking.first {
                throw VerificationError.noChecksums(
                    index: indexPath, missing: lacking.count, total: selected.lazy.filter { $0 }.count,
                    example: shards[first].path)
            }
        }

        // The shard being read: its number, its file (nil when missing or unreadable).
        // Headers alone are read through a 4 KiB read-ahead window (the headers of small members
        // share one `pread`), with `data` from the sequential reader's large reads.
        var current: (n: Int, file: (any TarStream)?, reader: (any TarStream)?)?
        var headerBytesRead: Int64 = 0
        var readerBytesDone: Int64 = 0
        // What counts the shard's bytes read: the data reader, or a compressed shard's stream
        // (which reads the file for headers alone too).
        func counted() -> (any TarStream)? {
            guard let current else { return nil }
            return current.reader ?? (shards[current.n].isCompressed ? current.file : nil)
        }
        func finishShard() {
            if let reader = counted() { readerBytesDone += reader.bytesRead }
            current = nil
        }
        func bytesRead() -> Int64 { headerBytesRead + readerBytesDone + (counted()?.bytesRead ?? 0) }
        var opened = Array(repeating: false, count: shards.count)
        var client: RemoteClient?
        func open(_ n: Int) {
            finishShard()
            report.shards += 1
            opened[n] = true
            let record = shards[n]
            // A remote shard is read as one stream (one GET, sent with the recorded ETag), for its
            // headers and its data alike.
            if RemoteLocation.hasRemoteScheme(record.path) {
                do {
                    if client == nil {
                        client = RemoteClient(configuration: try options.remote ?? RemoteConfiguration.resolve())
                    }
                    let stream = try client!.openStream(try RemoteLocation(parsing: record.path), ifMatch: record.etag)
                    if stream.info.size != record.size {
                        problem(
                            VerificationProblem(
                                kind: .shard, shardPath: record.path,
                                detail:
                                    "its size is \(stream.info.size) bytes, \(record.size) at ingest; run ingest again",
                                expected: "\(record.size)", found: "\(stream.info.size)"))
                    }
                    if record.isCompressed {
                        // Decompressed as it arrives, for its headers and its data alike.
                        guard let format = CompressionFormat(name: record.compression), format != .none else {
                            throw DatasetError(
                                .corrupt,
                                "the index records it as '\(MessageText.escaped(record.compression))'-compressed, which this build cannot read"
                            )
                        }
                        let bytes = StreamedObjectBytes(stream: stream, client: client!)
                        let reader = try DecompressingReader(
                            source: CompressedSource(bytes, path: record.path), format: format)
                        current = (n, reader, options.data ? reader : nil)
                    } else {
                        current = (n, stream, options.data ? stream : nil)
                    }
                } catch {
                    let detail =
                        (error as? RemoteError)?.isShardChanged == true
                        ? "the object was replaced since ingest (its ETag is no longer \(record.etag ?? "the one recorded")); run ingest again; its members were not checked"
                        : "\(error); its members were not checked"
                    problem(VerificationProblem(kind: .shard, shardPath: record.path, detail: detail))
                    current = (n, nil, nil)
                }
                return
            }
            let path = Paths.resolveStoredShardPath(record.path, indexDirectory: indexDirectory)
            let file: ReadOnlyFile
            do { file = try ReadOnlyFile(path: path) } catch {
                let detail =
                    error.errno == ENOENT
                    ? "the file is missing; its members were not checked" : "\(error); its members were not checked"
                problem(VerificationProblem(kind: .shard, shardPath: record.path, detail: detail))
                current = (n, nil, nil)
                return
            }
            if file.status.size != record.size {
                problem(
                    VerificationProblem(
                        kind: .shard, shardPath: record.path,
                        detail: "its size is \(file.status.size) bytes, \(record.size) at ingest; run ingest again",
                        expected: "\(record.size)", found: "\(file.status.size)"))
            } else if file.status.modificationTimeNanoseconds != record.modificationTimeNanoseconds {
                problem(
                    VerificationProblem(
                        kind: .shard, shardPath: record.path,
                        detail: "its modification time differs from the one recorded at ingest; run ingest again",
                        expected: "\(record.modificationTimeNanoseconds)",
                        found: "\(file.status.modificationTimeNanoseconds)"))
            }
            // A compressed shard is read through one front-to-back decompression, for its headers
            // and its data alike (members come in storage order).
            if record.isCompressed {
                guard let format = CompressionFormat(name: record.compression), format != .none else {
                    problem(
                        VerificationProblem(
                            kind: .shard, shardPath: record.path,
                            detail:
                                "the index records it as '\(MessageText.escaped(record.compression))'-compressed, which this build cannot read; its members were not checked"
                        ))
                    current = (n, nil, nil)
                    return
                }
                do {
                    let stream = try DecompressingReader(file: file, format: format)
                    current = (n, stream, options.data ? stream : nil)
                } catch {
                    problem(
                        VerificationProblem(
                            kind: .shard, shardPath: record.path, detail: "\(error); its members were not checked"))
                    current = (n, nil, nil)
                }
                return
            }
            current = (
                n, SequentialReader(file: file, bufferSize: SequentialReader.headerWindowSize),
                options.data ? SequentialReader(file: file) : nil
            )
        }

        let headerBlock = UnsafeMutableRawBufferPointer.allocate(byteCount: 512, alignment: 512)
        defer { headerBlock.deallocate() }
        var lastProgress = 0.0
        try index.forEachMemberInStorageOrder(inSplit: options.split) { m in
            report.members += 1
            if report.members & 0xFF == 0 {
                if options.isCancelled() { throw VerificationError.cancelled(members: report.members - 1) }
                if let progress = options.progress {
                    let now = elapsed()
                    if now - lastProgress >= 0.1 {
                        lastProgress = now
                        progress(
                            VerificationProgress(
                                membersDone: report.members, membersTotal: total, bytesRead: bytesRead(), seconds: now))
                    }
                }
            }
            let l = m.location
            guard let n = shardByID[l.shardID] else {
                problem(
                    VerificationProblem(
                        kind: .row, shardPath: "#\(l.shardID)", offset: l.dataOffset, key: m.key, ext: m.ext,
                        detail: "the row names shard id \(l.shardID), which the index does not list"))
                return true
            }
            let record = shards[n]
            func rowProblem(_ detail: String) {
                problem(
                    VerificationProblem(
                        kind: .row, shardPath: record.path, offset: l.dataOffset, key: m.key, ext: m.ext, detail: detail
                    ))
            }
            if current?.n != n { open(n) }
            guard let key = m.key else {
                rowProblem("the row names sample id \(m.sampleID), which the index does not list")
                return true
            }
            if let detail = rowDefect(l, shardSize: record.tarSize) {
                rowProblem(detail)
                return true
            }
            guard let file = current?.file else { return true }
            let headerOffset = l.dataOffset - 512
            let extBytes = Array(m.ext.utf8)
            func check(_ block: UnsafeRawBufferPointer) -> MemberHeaderCheck.Mismatch? {
                key.bytes.withUnsafeBytes { k in
                    extBytes.withUnsafeBytes { e in
                        MemberHeaderCheck.check(
                            block, length: l.length, key: k, ext: e, extended: l.headerOffset < headerOffset)
                    }
                }
            }
            func shortFile(_ error: IOError) {
                problem(
                    VerificationProblem(
                        kind: .header, shardPath: record.path, offset: headerOffset, key: key, ext: m.ext,
                        detail: "cannot read the member: \(error.detail ?? error.description)"))
            }
            let mismatch: MemberHeaderCheck.Mismatch?
            let source: any TarStream = current?.reader ?? file
            let got: Int
            do { got = try source.read(into: headerBlock, at: headerOffset) } catch {
                shortFile(error as? IOError ?? IOError("read", path: record.path, errno: 0, detail: "\(error)"))
                return true
            }
            if current?.reader == nil, !record.isCompressed { headerBytesRead += Int64(got) }
            guard got == 512 else {
                shortFile(
                    IOError(
                        "read", path: record.path, errno: 0,
                        detail: "the shard ends at byte \(headerOffset + Int64(got)), before the member's header"))
                return true
            }
            mismatch = check(UnsafeRawBufferPointer(headerBlock))
            if let mismatch {
                let (expected, found) = Self.values(of: mismatch)
                problem(
                    VerificationProblem(
                        kind: .header, shardPath: record.path, offset: headerOffset, key: key, ext: m.ext,
                        detail: "\(mismatch)", expected: expected, found: found))
                return true
            }
            guard let reader = current?.reader else { return true }
            guard let stored = m.crc32c else {
                problem(
                    VerificationProblem(
                        kind: .row, shardPath: record.path, offset: l.dataOffset, key: key, ext: m.ext,
                        detail: "no checksum recorded for this member, though its shard has checksums"))
                return true
            }
            var crc = CRC32C()
            var sincePoll = 0
            do {
                try reader.forEachPiece(offset: l.dataOffset, count: l.length) { piece in
                    sincePoll += piece.count
                    if sincePoll >= 4 << 20 {
                        sincePoll = 0
                        if options.isCancelled() { throw VerificationError.cancelled(members: report.members - 1) }
                    }
                    crc.update(piece)
                }
            } catch let error where error is IOError || error is DecompressionError {
                let reason = (error as? IOError).map { $0.detail ?? $0.description } ?? "\(error)"
                problem(
                    VerificationProblem(
                        kind: .data, shardPath: record.path, offset: l.dataOffset, key: key, ext: m.ext,
                        detail: "cannot read the member: \(reason)"))
                return true
            }
            guard let recorded = UInt32(exactly: stored) else {
                problem(
                    VerificationProblem(
                        kind: .row, shardPath: record.path, offset: l.dataOffset, key: key, ext: m.ext,
                        detail: "the recorded checksum \(stored) is not a 32-bit value"))
                return true
            }
            if crc.value != recorded {
                problem(
                    VerificationProblem(
                        kind: .data, shardPath: record.path, offset: l.dataOffset, key: key, ext: m.ext,
                        detail:
                            "the \(l.length) data bytes have CRC-32C \(Self.hex(crc.value)), \(Self.hex(recorded)) recorded at ingest; the shard changed since ingest",
                        expected: Self.hex(recorded), found: Self.hex(crc.value)))
            }
            return true
        }
        finishShard()
        // Selected shards without member rows: presence, size and modification time.
        for n in shards.indices where selected[n] && !opened[n] {
            open(n)
            finishShard()
        }
        report.bytesRead = bytesRead()
        report.seconds = elapsed()
        options.progress?(
            VerificationProgress(
                membersDone: report.members, membersTotal: total, bytesRead: report.bytesRead, seconds: report.seconds))
        return report
    }

    /// What is wrong with a member row in itself, or nil when it can be right: the check every
    /// loader of rows runs (`MemberLocation.defect(shardSize:)`).
    static func rowDefect(_ l: MemberLocation, shardSize: Int64) -> String? {
        l.defect(shardSize: shardSize)?.description
    }

    /// The expected (index) and found (header) values a mismatch compares, as text.
    static func values(of mismatch: MemberHeaderCheck.Mismatch) -> (expected: String?, found: String?) {
        switch mismatch {
        case .checksum(let stored, let computed): ("\(computed)", stored.map(String.init) ?? "not a number")
        case .type(let typeflag): ("regular file", MessageText.quoted([typeflag]))
        case .size(let header, let indexed): ("\(indexed)", header.map(String.init) ?? "not a number")
        case .name(let header, let expected): (MessageText.quoted(expected), MessageText.quoted(header))
        }
    }

    /// `0x` and eight lower-case hex digits.
    static func hex(_ v: UInt32) -> String {
        let digits = String(v, radix: 16)
        return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
    }
}
