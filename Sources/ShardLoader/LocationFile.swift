import ShardCore
import ShardIO
import ShardIndex
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The location file: every sample's key and member locations, written beside the index
/// (`ds/index.sqlite` → `ds/index.sqlite-locations`), so that a dataset can resolve a position with
/// two small reads of this file instead of holding a location table in memory. It is what keeps
/// the `pread` strategy's memory flat however large the dataset is.
///
/// The file is a cache derived from the index, never the source of truth. `shardstore ingest`
/// writes it after each change, and a dataset that finds it missing or out of date writes it again
/// at open (or, when the index's folder is read-only, does without it). It is only used when it
/// matches the index: the same content id (a random id each ingest that changes samples or members
/// stores in the metadata entry `shardstore.content_id`), the same sample count and the same shard
/// ids.
///
/// Layout (format version 2), little-endian:
/// - a 128-byte header: magic `SHRDLOC1`, format version, header size, the content id (32 ASCII
///   bytes), the sample, member, shard and extension counts, the slot size, where the slots, the
///   overflow records and the tail start, the file size, the tail's CRC-32C and, in its last 4
///   bytes, the CRC-32C of the 124 bytes before;
/// - one fixed-size slot per sample, in global index order, so that sample `i`'s slot is one read
///   at `slotsStart + i * slotSize`. A record (see ``LocationSlot`` for every byte) is a CRC-32C,
///   the member count and the key's length, then per member (in archive order) the data offset
///   with the extended-header flag in its low bit, the length, the shard number (its position
///   among the shards ordered by id) and the extension number, then the key's bytes. A record
///   that fits its slot is stored there; a longer one goes to the overflow area, and its slot
///   holds a pointer to it. Every slot and every overflow record carries its own CRC-32C, which
///   covers the sample's index too. The slot size is chosen so that 99% of the records of up to
///   4096 samples spread evenly over the index fit (every sample of a smaller index);
/// - the overflow records, back to back;
/// - the tail: the shard ids (Int64 each), then per extension its total bytes (UInt64), the name's
///   length (UInt32) and the name.
///
/// **Nothing in it is trusted unchecked.** At open, the header's and the tail's checksums and
/// every figure are checked; a file that fails (damaged, of format version 1, or out of date) is
/// written again. On every read, the slot (and overflow record) is checked by ``LocationSlot``:
/// its checksum, then every value against the index's figures (shard count and sizes, extension
/// count). A slot that fails is never used: that sample is read from the index instead, and the
/// file is unlinked (only when its path still names the file this dataset opened), so that the
/// next open writes a fresh one; this dataset keeps using its open file, slot by slot, each one
/// checked. No error reaches the caller for a damaged file.
///
/// ```swift
/// let written = try LocationFile.write(index: "ds/index.sqlite")
/// print(written.path, written.bytes)
/// ```
public final class LocationFile: Sendable {
    /// The file beside the index at `index`: the index's path with `-locations` appended.
    public static func path(forIndex index: String) -> String { index + "-locations" }

    /// The file's path.
    public let path: String
    /// The number of samples (the whole dataset).
    public let sampleCount: Int
    /// The number of members.
    public let memberCount: Int
    /// The extension names, by number.
    public let extensionNames: [String]
    /// The total member bytes of each extension, by number.
    public let extensionBytes: [Int64]
    /// The file's size.
    public var byteCount: Int64 { file.byteCount }

    private let file: ReadOnlyFile
    /// The opened file's device and inode: it is unlinked only while its path still names it.
    private let identity: (device: UInt64, inode: UInt64)?
    private let bounds: LocationSlot.Bounds
    private var slotSize: Int { bounds.slotSize }
    private let slotsStart: Int64
    /// Set once a damaged slot was found and the file was unlinked (see ``discard()``).
    private let discarded = Atomic<Bool>(false)

    static let magic = Array("SHRDLOC1".utf8)
    static let version: UInt32 = 2
    static let headerSize = 128
    static let contentIDSize = 32
    /// Where the header holds the tail's checksum and its own.
    static let tailChecksumOffset = 120
    static let headerChecksumOffset = 124
    /// Records longer than this always go to the overflow area.
    static let maxSlotSize = 4096
    /// How many samples' record sizes choose the slot size (see ``write(reader:to:isCancelled:)``).
    static let slotProbes = 4096

    /// Why the file cannot be used (it is then rebuilt, or the dataset does without it).
    public struct Unusable: Error, Sendable, CustomStringConvertible {
        public var reason: String
        public var description: String { reason }
    }

    private init(
        path: String, file: ReadOnlyFile, sampleCount: Int, memberCount: Int, extensionNames: [String],
        extensionBytes: [Int64], slotsStart: Int64, bounds: LocationSlot.Bounds
    ) {
        self.path = path
        self.file = file
        self.sampleCount = sampleCount
        self.memberCount = memberCount
        self.extensionNames = extensionNames
        self.extensionBytes = extensionBytes
        self.slotsStart = slotsStart
        self.bounds = bounds
        var st = stat()
        identity = fstat(file.descriptor, &st) == 0 ? (UInt64(st.st_dev), UInt64(st.st_ino)) : nil
    }

    // MARK: Opening

    /// The content id the index open as `database` records (nil for an index written before
    /// location files existed). See `IndexFile.contentIDKey`.
    ///
    /// - Throws: `SQLiteError`.
    public static func contentID(of database: Database) throws -> String? {
        try IndexReader(database: database).contentID()
    }

    /// Opens the location file of the index `reader` reads (at `indexPath`), writing it first
    /// when it is missing or does not match the index.
    ///
    /// - Throws: ``Unusable`` saying why there is no usable file (an index from before location
    ///   files, a folder that cannot be written, ...).
    static func openOrWrite(indexPath: String, reader: IndexReader, shards: [ShardRecord]) throws(Unusable)
        -> LocationFile
    {
        let id: String?
        let samples: Int
        do {
            id = try reader.contentID()
            samples = try reader.sampleRowCount()
        } catch {
            throw Unusable(reason: "cannot read the index: \(error)")
        }
        guard let id else {
            throw Unusable(
                reason:
                    "the index was written before location files existed; run `shardstore ingest` on it again (unchanged shards are not re-read) to add one"
            )
        }
        let path = Self.path(forIndex: indexPath)
        if let file = try? open(path, contentID: id, samples: samples, shards: shards) {
            return file
        }
        do {
            try write(reader: reader, to: path, isCancelled: { false })
        } catch {
            throw Unusable(reason: "cannot write the location file: \(error)")
        }
        do {
            return try open(path, contentID: id, samples: samples, shards: shards)
        } catch {
            throw Unusable(
                reason:
                    "the location file just written does not match the index (\(error.reason)); was the index changed meanwhile?"
            )
        }
    }

    /// Opens and checks the file at `path` against the index's figures: the header's checksum,
    /// format version, content id and counts, and the tail's checksum and shard ids.
    ///
    /// - Parameter shards: the index's shards in id order (their ids and sizes at ingest).
    /// - Throws: ``Unusable`` saying what does not match (the file is then written again).
    /// - Complexity: two reads: the header and the tail (8 bytes a shard, plus the extensions).
    static func open(_ path: String, contentID: String, samples: Int, shards: [ShardRecord]) throws(Unusable)
        -> LocationFile
    {
        let file: ReadOnlyFile
        do { file = try ReadOnlyFile(path: path) } catch { throw Unusable(reason: error.description) }
        func read(_ count: Int, at offset: Int64) throws(Unusable) -> [UInt8] {
            guard let bytes = try? file.read(count: count, at: offset) else {
                throw Unusable(reason: "'\(path)' is too short")
            }
            return bytes
        }
        let header = try read(headerSize, at: 0)
        let h = ByteReader(header)
        guard Array(header[0..<8]) == magic else { throw Unusable(reason: "'\(path)' is not a location file") }
        guard h.u32(8) == version, h.u32(12) == UInt32(headerSize) else {
            throw Unusable(reason: "'\(path)' has format version \(h.u32(8)), not \(version)")
        }
        let headerChecksum = header.withUnsafeBytes {
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<headerChecksumOffset]))
        }
        guard headerChecksum == h.u32(headerChecksumOffset) else {
            throw Unusable(reason: "'\(path)' is damaged (header checksum)")
        }
        let storedID = String(decoding: header[16..<(16 + contentIDSize)].prefix { $0 != 0 }, as: UTF8.self)
        guard storedID == contentID else { throw Unusable(reason: "'\(path)' describes another version of the index") }
        let (sampleCount, memberCount, shardCount, extCount) = (h.u64(48), h.u64(56), h.u64(64), h.u64(72))
        let (slotSize, slotsStart, overflowStart) = (h.u64(80), h.u64(88), h.u64(96))
        let (tailStart, fileSize) = (h.u64(104), h.u64(112))
        // Each figure is compared before it is used in arithmetic, so that nothing can overflow.
        guard sampleCount == UInt64(samples), memberCount < UInt64(Int.max), shardCount == UInt64(shards.count),
            extCount < UInt64(PackedMember.maxExtensions), slotSize >= UInt64(LocationSlot.pointerSize),
            slotSize <= UInt64(maxSlotSize), slotSize % 8 == 0, slotsStart == UInt64(headerSize),
            fileSize == UInt64(file.byteCount), overflowStart >= slotsStart, overflowStart <= fileSize,
            (overflowStart - slotsStart) % slotSize == 0, (overflowStart - slotsStart) / slotSize == UInt64(samples),
            tailStart >= overflowStart, fileSize >= tailStart
        else { throw Unusable(reason: "'\(path)' does not match the index's counts") }
        let tailBytes = try read(Int(fileSize - tailStart), at: Int64(tailStart))
        guard tailBytes.withUnsafeBytes({ CRC32C.checksum($0) }) == h.u32(tailChecksumOffset) else {
            throw Unusable(reason: "'\(path)' is damaged (tail checksum)")
        }
        let tail = ByteReader(tailBytes)
        var at = 0
        for shard in shards {
            guard at + 8 <= tail.count, Int64(bitPattern: tail.u64(at)) == shard.id else {
                throw Unusable(reason: "'\(path)' lists other shards than the index")
            }
            at += 8
        }
        var names: [String] = []
        var totals: [Int64] = []
        for _ in 0..<Int(extCount) {
            guard tail.count - at >= 12 else { throw Unusable(reason: "'\(path)' is damaged (extension list)") }
            let total = Int64(bitPattern: tail.u64(at))
            let length = Int(tail.u32(at + 8))
            at += 12
            guard tail.count - at >= length else { throw Unusable(reason: "'\(path)' is damaged (extension list)") }
            names.append(String(decoding: tail.bytes[at..<(at + length)], as: UTF8.self))
            totals.append(total)
            at += length
        }
        guard at == tail.count else { throw Unusable(reason: "'\(path)' is damaged (extension list)") }
        let bounds = LocationSlot.Bounds(
            slotSize: Int(slotSize), shardSizes: shards.map(\.tarSize), extensionCount: Int(extCount),
            overflowStart: Int64(overflowStart), tailStart: Int64(tailStart))
        return LocationFile(
            path: path, file: file, sampleCount: samples, memberCount: Int(memberCount), extensionNames: names,
            extensionBytes: totals, slotsStart: Int64(slotsStart), bounds: bounds)
    }

    // MARK: Reading

    /// Calls `body` with the checked record of the sample with global index `index`: one `pread`
    /// of its slot, and a second one for a record in the overflow area. Returns nil, without
    /// calling `body`, when the slot cannot be trusted (it fails ``LocationSlot``'s checks, or
    /// cannot be read): the caller then reads the sample from the index, and the file was
    /// unlinked so that the next open writes it again (see ``discard()``).
    ///
    /// - Throws: only what `body` throws.
    /// - Complexity: O(slot size) to read and check the slot, O(record size) for an overflow record.
    func withRecord<R>(_ index: Int, _ body: (LocationRecord) throws -> R) throws -> R? {
        // An index out of range comes from the index (a split member), not from this file.
        guard index >= 0, index < sampleCount else { return nil }
        let at = slotsStart + Int64(index) * Int64(slotSize)
        return try withUnsafeTemporaryAllocation(byteCount: slotSize, alignment: 8) { slot -> R? in
            let content: LocationSlot.Content
            do {
                guard try file.readAll(into: slot, at: at) == slotSize else {
                    throw LocationSlot.Damage(reason: "short")
                }
                content = try LocationSlot.decode(UnsafeRawBufferPointer(slot), index: index, bounds: bounds)
            } catch {
                discard()
                return nil
            }
            switch content {
            case .record(let record):
                return try body(record)
            case .overflow(let start, let length):
                // `length` lies within the overflow area, which lies within the file's size.
                let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: length, alignment: 8)
                defer { bytes.deallocate() }
                let record: LocationRecord
                do {
                    guard try file.readAll(into: bytes, at: start) == length else {
                        throw LocationSlot.Damage(reason: "short")
                    }
                    record = try LocationSlot.decodeRecord(UnsafeRawBufferPointer(bytes), index: index, bounds: bounds)
                } catch {
                    discard()
                    return nil
                }
                return try body(record)
            }
        }
    }

    /// Whether a damaged slot was found (the file was then unlinked, when its path still named it).
    var isDiscarded: Bool { discarded.load(ordering: .relaxed) }

    /// Treats the file as a damaged cache: unlinks it, once, if its path still names the file
    /// opened (same device and inode), so that the next open writes a fresh one. A file another
    /// process wrote since is left alone; so is one in a folder that cannot be written (each
    /// damaged slot is then read from the index every time).
    private func discard() {
        guard !discarded.exchange(true, ordering: .relaxed), let identity else { return }
        var st = stat()
        guard lstat(path, &st) == 0, UInt64(st.st_dev) == identity.device, UInt64(st.st_ino) == identity.inode
        else { return }
        unlink(path)
    }

    // MARK: Writing

    /// What ``write(index:isCancelled:)`` wrote.
    public struct Written: Sendable {
        /// The location file's path.
        public var path: String
        /// Its size in bytes.
        public var bytes: Int64
    }

    /// Makes sure the index at `index` has an up-to-date location file beside it: checks the one
    /// there, and writes a new one when it is missing or out of date.
    ///
    /// ```swift
    /// let file = try LocationFile.ensure(index: "ds/index.sqlite")
    /// ```
    ///
    /// - Throws: what ``write(index:isCancelled:)`` throws; ``Unusable`` saying why no file could be
    ///   written.
    /// - Complexity: reading the header and tail when the file is current; otherwise one pass over
    ///   the samples and members tables.
    @discardableResult
    public static func ensure(index: String) throws -> Written {
        let reader = try IndexReader(path: index)
        try reader.useSmallPageCache()
        let file = try openOrWrite(indexPath: index, reader: reader, shards: try reader.shards())
        return Written(path: file.path, bytes: file.byteCount)
    }

    /// Writes the location file of the index at `index` (see ``LocationFile``), replacing any
    /// older one. It is built under a temporary name beside the index and renamed into place, so a
    /// reader sees the old file or the whole new one.
    ///
    /// ```swift
    /// let written = try LocationFile.write(index: "ds/index.sqlite")
    /// ```
    ///
    /// - Throws: `IndexError`, `SchemaError`, `SQLiteError` (reading the index); `IOError` naming
    ///   the file (writing it); ``Unusable`` when the index has no content id (written before
    ///   location files existed; ingest again to add one); `CancellationError`.
    /// - Complexity: one pass over the samples and members tables; memory stays a few MiB.
    @discardableResult
    public static func write(index: String, isCancelled: () -> Bool = { false }) throws -> Written {
        let reader = try IndexReader(path: index)
        try reader.useSmallPageCache()
        let path = Self.path(forIndex: index)
        let bytes = try write(reader: reader, to: path, isCancelled: isCancelled)
        return Written(path: path, bytes: bytes)
    }

    /// Writes the file for the index `reader` reads to `path` (through a temporary name).
    /// Returns its size.
    ///
    /// Up to 4096 point lookups choose the slot size, then one pass over the samples and members
    /// writes the records.
    @discardableResult
    static func write(reader: IndexReader, to path: String, isCancelled: () -> Bool) throws -> Int64 {
        // The file is built in an ``AtomicFile`` (created O_EXCL|O_NOFOLLOW under a random name
        // beside `path`, fsync checked, renamed into place, removed on any failure).
        AtomicFile.removeStalePartials(for: path)
        let file = try AtomicFile(destination: path)
        defer { file.discard() }
        // One read transaction: the content id and every scan see the same version of the index.
        return try reader.readingSnapshot { try write(reader: reader, file: file, isCancelled: isCancelled) }
    }

    /// ``write(reader:to:isCancelled:)`` inside its read transaction, into `file`.
    private static func write(reader: IndexReader, file: AtomicFile, isCancelled: () -> Bool) throws -> Int64 {
        let fd = file.descriptor
        let temporary = file.temporaryPath
        guard let id = try reader.contentID() else {
            throw Unusable(
                reason:
                    "the index was written before location files existed; run `shardstore ingest` on it again to add one"
            )
        }
        let samples = try reader.sampleRowCount()
        let shardIDs = try reader.shardIDs()
        var scan = RecordScan(reader: reader, shardIDs: shardIDs, samples: samples)

        // The slot size, estimated: the record sizes of up to `slotProbes` samples spread evenly
        // over the index (every sample of a smaller one) choose the smallest slot (a multiple of
        // 8) that holds 99% of them. A record that does not fit its slot goes to the overflow
        // area, so a rough estimate costs a second read for a few samples, never a wrong byte;
        // measuring every record took a full pass over the members table, as long as writing.
        var sizes = [Int](repeating: 0, count: maxSlotSize / 8 + 1)
        let probes = min(samples, slotProbes)
        for i in 0..<probes {
            let id = Int64(i) * Int64(samples) / Int64(probes)
            guard let probe = try reader.keyLengthAndMemberCount(ofSample: id) else {
                throw IndexError.invalidArgument(
                    "the index's sample ids are not dense (no sample \(id) of \(samples)); run `shardstore ingest` again into a new index"
                )
            }
            let size = LocationSlot.recordSize(members: probe.members, keyLength: probe.keyLength)
            if size <= maxSlotSize { sizes[(size + 7) / 8] += 1 }
        }
        // When more than 1% of records exceed the largest slot, slots only point to records.
        var slotSize = LocationSlot.pointerSize
        var fitting = 0
        for (bucket, n) in sizes.enumerated() {
            fitting += n
            if fitting * 100 >= probes * 99 {
                slotSize = max(LocationSlot.pointerSize, bucket * 8)
                break
            }
        }

        // Pass 2: the slots in order, longer records to the overflow area, each with its CRC.
        let slotsStart = Int64(headerSize)
        let overflowStart = slotsStart + Int64(slotSize) * Int64(samples)
        var slots = PositionalWriter(descriptor: fd, path: temporary, at: slotsStart, capacity: 1 << 20)
        var overflow = PositionalWriter(descriptor: fd, path: temporary, at: overflowStart, capacity: 256 << 10)
        // Each slot or overflow record is built here, then copied into its writer's buffer.
        var scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: maxSlotSize, alignment: 8)
        defer { scratch.deallocate() }
        try scan.run(isCancelled) { id, record in
            let index = Int(id)
            let key = UnsafeRawBufferPointer(record.key)
            if record.size <= slotSize {
                let slot = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<slotSize])
                LocationSlot.encodeRecord(into: slot, index: index, key: key, members: record.members)
                try slots.append(bytes: UnsafeRawBufferPointer(slot))
            } else {
                if record.size > scratch.count {
                    scratch.deallocate()
                    scratch = .allocate(byteCount: record.size, alignment: 8)
                }
                let bytes = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<record.size])
                LocationSlot.encodeRecord(into: bytes, index: index, key: key, members: record.members)
                let at = overflow.position
                try overflow.append(bytes: UnsafeRawBufferPointer(bytes))
                let slot = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<slotSize])
                LocationSlot.encodePointer(into: slot, index: index, offset: at, length: record.size)
                try slots.append(bytes: UnsafeRawBufferPointer(slot))
            }
        }
        let tailStart = overflow.position
        var tail: [UInt8] = []
        func put<T: FixedWidthInteger>(_ value: T, _ out: inout [UInt8]) {
            withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
        }
        for s in shardIDs { put(UInt64(bitPattern: s), &tail) }
        for n in scan.extensions {
            put(UInt64(bitPattern: n.total), &tail)
            put(UInt32(n.bytes.count), &tail)
            tail += n.bytes
        }
        try tail.withUnsafeBytes { try overflow.append(bytes: $0) }
        let fileSize = overflow.position
        try slots.flush()
        try overflow.flush()

        var header: [UInt8] = magic
        put(version, &header)
        put(UInt32(headerSize), &header)
        var idBytes = Array(id.utf8.prefix(contentIDSize))
        idBytes += [UInt8](repeating: 0, count: contentIDSize - idBytes.count)
        header += idBytes
        for v in [
            UInt64(samples), UInt64(scan.memberCount), UInt64(shardIDs.count), UInt64(scan.extensions.count),
            UInt64(slotSize), UInt64(slotsStart), UInt64(overflowStart), UInt64(tailStart), UInt64(fileSize),
        ] { put(v, &header) }
        put(tail.withUnsafeBytes { CRC32C.checksum($0) }, &header)
        put(header.withUnsafeBytes { CRC32C.checksum($0) }, &header)
        try header.withUnsafeBytes { try file.write($0, at: 0) }
        try file.commit()
        return fileSize
    }
}

/// One sample's record while the location file is written.
private struct Record {
    var key: UnsafeBufferPointer<UInt8>
    var members: [LocationRecord.Member]
    var size: Int { LocationSlot.recordSize(members: members.count, keyLength: key.count) }
}

/// The samples with their members, in global index order: a merge of two sequential scans.
private struct RecordScan {
    let reader: IndexReader
    let samples: Int
    /// Shard number by shard id: an array when the ids are dense enough (ids are ingest order,
    /// so nearly always), a dictionary otherwise.
    private var shardNumberByID: [UInt32] = []
    private var shardNumberMap: [Int64: UInt32] = [:]
    /// The extensions in order of first appearance, with their total bytes.
    private(set) var extensions: [(bytes: [UInt8], total: Int64)] = []
    private(set) var memberCount = 0

    init(reader: IndexReader, shardIDs: [Int64], samples: Int) {
        self.reader = reader
        self.samples = samples
        let maxID = shardIDs.max() ?? -1
        if let minID = shardIDs.min(), minID >= 0, maxID < 4 * Int64(shardIDs.count) + 64 {
            shardNumberByID = [UInt32](repeating: .max, count: Int(maxID) + 1)
            for (n, s) in shardIDs.enumerated() { shardNumberByID[Int(s)] = UInt32(n) }
        } else {
            for (n, s) in shardIDs.enumerated() { shardNumberMap[s] = UInt32(n) }
        }
    }

    /// The number of the shard with id `id`, or nil when the index does not list it.
    private func shardNumber(_ id: Int64) -> UInt32? {
        if shardNumberByID.isEmpty { return shardNumberMap[id] }
        guard id >= 0, id < shardNumberByID.count else { return nil }
        let n = shardNumberByID[Int(id)]
        return n == .max ? nil : n
    }

    /// The number of the extension whose stored bytes are `text`, counting it in when new.
    private mutating func extensionNumber(_ text: UnsafeBufferPointer<UInt8>) -> Int {
        for n in extensions.indices where extensions[n].bytes.count == text.count {
            let same = extensions[n].bytes.withUnsafeBufferPointer { stored in
                text.count == 0 || memcmp(stored.baseAddress!, text.baseAddress!, text.count) == 0
            }
            if same { return n }
        }
        extensions.append((Array(text), 0))
        return extensions.count - 1
    }

    /// Calls `body` with each sample's id and record (members in archive order). Extension
    /// numbers and totals are counted afresh on each run.
    mutating func run(_ isCancelled: () -> Bool, _ body: (Int64, Record) throws -> Void) throws {
        extensions = []
        memberCount = 0
        let keys = try reader.sampleKeys(inSplit: nil)
        let rows = try reader.membersInSampleOrder()
        var hasRow = try rows.next()
        var expected: Int64 = 0
        var record = Record(key: UnsafeBufferPointer(start: nil, count: 0), members: [])
        while try keys.next() {
            let id = keys.sampleID
            guard id == expected else {
                throw IndexError.invalidArgument(
                    "the index's sample ids are not dense (\(id) after \(expected - 1)); run `shardstore ingest` on it again"
                )
            }
            expected += 1
            if id & 0xfff == 0, isCancelled() { throw CancellationError() }
            record.members.removeAll(keepingCapacity: true)
            var rowSample = hasRow ? rows.sampleID : 0
            while hasRow, rowSample <= id {
                if rowSample == id {
                    let ext: Int = rows.withExtensionBytes { text in extensionNumber(text) }
                    let location = rows.location
                    guard let shard = shardNumber(location.shardID) else {
                        throw IndexError.invalidArgument(
                            "the index lists a member in shard #\(location.shardID), which it does not list")
                    }
                    extensions[ext].total &+= location.length
                    record.members.append(
                        Self.member(
                            offset: location.dataOffset, length: location.length, header: location.headerOffset,
                            shard: Int(shard), ext: ext))
                }
                hasRow = try rows.next()
                if hasRow { rowSample = rows.sampleID }
            }
            // Archive order; rows come by extension, so a sample's members are usually out of it.
            record.members.sort { $0.shard != $1.shard ? $0.shard < $1.shard : $0.offset < $1.offset }

            memberCount += record.members.count
            try keys.withKeyBytes { key in
                record.key = key
                try body(id, record)
            }
        }
        guard expected == Int64(samples) else {
            throw IndexError.invalidArgument("the index changed while its location file was written; open it again")
        }
    }

    /// A member as stored. A row whose values no read could use (an offset that is not a multiple
    /// of 512 or below 512, a negative length: a damaged index) is stored with offset 0, which no
    /// reader accepts, so that the sample is read from the index, whose own checks report it.
    static func member(offset: Int64, length: Int64, header: Int64, shard: Int, ext: Int) -> LocationRecord.Member {
        let usable = offset >= 512 && offset & 511 == 0 && offset <= PackedMember.maxOffset && length >= 0
        return LocationRecord.Member(
            offset: usable ? offset : 0, length: length, shard: shard, ext: ext,
            isExtended: usable && header < offset - 512)
    }
}

/// Little-endian reads from a byte array.
private struct ByteReader {
    let bytes: [UInt8]
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    var count: Int { bytes.count }
    func u32(_ at: Int) -> UInt32 {
        bytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
    }
    func u64(_ at: Int) -> UInt64 {
        bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
    }
}
