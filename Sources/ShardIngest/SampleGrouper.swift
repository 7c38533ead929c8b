import ShardCore
import ShardIndex

/// Groups scanned members into samples by key across the whole dataset (adjacent or not), applies
/// the duplicate policy, and writes samples and members through the ``IndexWriter``.
///
/// A member joins the most recent sample with its key. When that sample already has the member's
/// extension, the policy decides: `error` stops, `first` drops the new one, `last` replaces the old
/// one, `keep` starts a new sample with the same key.
struct SampleGrouper {
    /// The sample members are being added to: members of one sample are usually adjacent, so the
    /// next member most often joins it without a lookup.
    private struct Current {
        let id: Int64
        let key: SampleKey
        let hash: UInt64
        /// Where the grouper remembers this sample's key.
        let slot: Slot
        /// (extension id, location): small integers instead of strings keep this hot loop free
        /// of reference counting.
        var members: [(ext: Int32, location: MemberLocation)]
    }

    /// Where a key's most recent sample is remembered.
    private enum Slot {
        /// Nowhere yet, and its hash is free.
        case empty
        /// In ``byHash`` (the hash's slot holds this key's sample).
        case hash
        /// Nowhere yet, but its hash's slot holds another key's sample.
        case taken
        /// In ``byKey``.
        case key
    }

    private let writer: IndexWriter
    private let policy: DuplicatePolicy
    private let indexWasEmpty: Bool
    private var nextID: Int64
    private let shardPaths: [Int64: String]
    /// The most recent sample of each key this ingest touched, by a 64-bit hash of the key: 16
    /// bytes an entry (under 45 a sample with the table's free slots), however long keys are (a
    /// dictionary of keys and member lists took about 300 bytes a sample, gigabytes for a hundred
    /// million). A key seen again away from its sample, and from ``recent`` (rare: WebDataset
    /// writers keep a sample's members together), reads the sample's key and members back from
    /// the index, which also tells a hash collision from the same key.
    private var byHash: [UInt64: Int64] = [:]
    /// The keys whose hash's slot in ``byHash`` holds another key (collisions, nearly always none).
    private var byKey: [SampleKey: Int64] = [:]
    /// The last ``recentLimit`` samples this ingest added members to, by id, with their keys and
    /// members: a key seen again within that many samples of its sample (a shard that holds all
    /// its images, then all its labels) is grouped without reading the index back, which took
    /// 1.8x as long on such a copy of S.
    private var recent: [Int64: (key: SampleKey, members: [(ext: Int32, location: MemberLocation)])] = [:]
    /// ``recent``'s ids in the order they came in (a ring, oldest at ``recentNext`` once full).
    private var recentOrder: [Int64] = []
    private var recentNext = 0
    /// How many samples ``recent`` holds: ``defaultRecentLimit``, or fewer in tests.
    private let recentLimit: Int
    /// At about 250 bytes a sample, 16 MB at most.
    static let defaultRecentLimit = 1 << 16
    /// Every extension seen, by id; ids are global to the ingest.
    private var extensionNames: [String] = []
    private var extensionIDs: [String: Int32] = [:]

    private mutating func extensionID(_ ext: String) -> Int32 {
        if let id = extensionIDs[ext] { return id }
        let id = Int32(extensionNames.count)
        extensionNames.append(ext)
        extensionIDs[ext] = id
        return id
    }

    private(set) var created = 0
    private(set) var dropped = 0
    private(set) var replaced = 0
    /// Members moved to another location by a duplicate policy (a renumbering is needed).
    private(set) var relocated = 0
    private(set) var keptExtra = 0
    private(set) var seenAgain = 0
    private(set) var seenAgainExamples:
        [(key: SampleKey, path: String, offset: Int64, firstPath: String, firstOffset: Int64)] = []
    /// Distinct samples this ingest added members to.
    var samplesTouched: Int { byHash.count + byKey.count }

    /// The key hash ``byHash`` is keyed by: ``hash(_:)``, or (in tests) one that collides.
    private let hash: (SampleKey) -> UInt64

    init(
        writer: IndexWriter, policy: DuplicatePolicy, indexWasEmpty: Bool, nextID: Int64, shardPaths: [Int64: String],
        hash: @escaping (SampleKey) -> UInt64 = SampleGrouper.hash, recentLimit: Int = SampleGrouper.defaultRecentLimit
    ) {
        self.hash = hash
        self.recentLimit = max(0, recentLimit)
        self.writer = writer
        self.policy = policy
        self.indexWasEmpty = indexWasEmpty
        self.nextID = nextID
        self.shardPaths = shardPaths
    }

    /// Adds one shard's members, in archive order.
    ///
    /// - Returns: the number of member rows added (copies left out, and copies that replaced an
    ///   earlier one, do not add a row).
    mutating func add(_ scan: ShardScan, shardID: Int64) throws -> Int {
        let members = scan.members
        var local: [Int32] = []
        for name in scan.extensions { local.append(extensionID(name)) }
        var written = 0
        var current: Current?
        let checksums = scan.crc32c
        // Room for this shard's samples up front (usually a few members each), so that the
        // dictionary rehashes at most once per shard. (Its capacity grows by powers of two: asking
        // for a little more each shard costs no more rehashes than doubling.)
        byHash.reserveCapacity(byHash.count + members.count / 2)
        for (n, m) in members.enumerated() {
            let crc32c: UInt32? = checksums.isEmpty ? nil : checksums[n]
            let location = MemberLocation(
                shardID: shardID, headerOffset: m.headerOffset, dataOffset: m.dataOffset, length: m.length)
            let extID = local[Int(m.ext)]
            let ext = extensionNames[Int(extID)]
            let hash: UInt64
            var slot: Slot
            if let c = current, c.key == m.key {
                hash = c.hash
                slot = c.slot
            } else {
                if let c = current { keepRecent(c) }
                hash = self.hash(m.key)
                (current, slot) = try existingSample(m.key, hash: hash)
                if let first = current.flatMap({ Self.earliest($0.members) }) {
                    seenAgain += 1
                    if seenAgainExamples.count < 5 {
                        seenAgainExamples.append(
                            (
                                m.key, path(shardID), m.headerOffset, path(first.shardID), first.headerOffset
                            ))
                    }
                }
            }
            if let c = current, let i = c.members.firstIndex(where: { $0.ext == extID }) {
                let old = c.members[i].location
                switch policy {
                case .error:
                    throw IngestError.duplicateMember(
                        key: m.key, ext: ext, first: (path(old.shardID), old.headerOffset),
                        again: (path(shardID), m.headerOffset))
                case .first, .last:
                    // "First" and "last" in dataset order (shard, offset), not scan order: a
                    // re-indexed earlier shard must give what a fresh ingest gives.
                    let isLater = (shardID, m.headerOffset) > (old.shardID, old.headerOffset)
                    if policy == .first { dropped += 1 } else { replaced += 1 }
                    if isLater == (policy == .last) {
                        try writer.replaceMember(sampleID: c.id, ext: ext, location: location, crc32c: crc32c)
                        current!.members[i].location = location
                        relocated += 1
                    }
                    continue
                case .keep:
                    keptExtra += 1
                    keepRecent(c)
                    current = nil
                }
            }
            if current == nil {
                let id = nextID
                try writer.insertSample(id: id, key: m.key, shardID: shardID, firstOffset: m.headerOffset)
                nextID += 1
                created += 1
                slot = remember(m.key, hash: hash, id: id, slot: slot)
                current = Current(id: id, key: m.key, hash: hash, slot: slot, members: [])
            }
            try writer.insertMember(sampleID: current!.id, ext: ext, location: location, crc32c: crc32c)
            current!.members.append((extID, location))
            written += 1
        }
        if let c = current { keepRecent(c) }
        return written
    }

    /// Keeps `sample` (its members as they are now) among the recent samples.
    private mutating func keepRecent(_ sample: Current) {
        guard recentLimit > 0, recent.updateValue((sample.key, sample.members), forKey: sample.id) == nil else {
            return
        }
        if recentOrder.count < recentLimit {
            recentOrder.append(sample.id)
        } else {
            recent.removeValue(forKey: recentOrder[recentNext])
            recentOrder[recentNext] = sample.id
            recentNext = (recentNext + 1) % recentLimit
        }
    }

    /// Sample `id`'s key and members: from the recent samples, else read back from the index.
    private mutating func sample(_ id: Int64) throws -> (
        key: SampleKey, members: [(ext: Int32, location: MemberLocation)]
    ) {
        if let kept = recent[id] { return kept }
        guard let found = try writer.sample(id: id) else {
            throw IndexError.invalidArgument(
                "sample \(id), which this ingest grouped members into, is missing from the index; nothing was changed, run the ingest again"
            )
        }
        return (found.key, found.members.map { (extensionID($0.ext), $0.location) })
    }

    /// The most recent sample with `key` (from this ingest, else from the index) and where its
    /// key is remembered; or nil, and where a new sample with `key` is to be remembered.
    private mutating func existingSample(_ key: SampleKey, hash: UInt64) throws -> (Current?, Slot) {
        var slot = Slot.empty
        if !byKey.isEmpty, let id = byKey[key] {
            return (Current(id: id, key: key, hash: hash, slot: .key, members: try sample(id).members), .key)
        }
        if let id = byHash[hash] {
            let found = try sample(id)
            if found.key == key {
                return (Current(id: id, key: key, hash: hash, slot: .hash, members: found.members), .hash)
            }
            slot = .taken
        }
        guard !indexWasEmpty, let found = try writer.latestSample(forKey: key) else { return (nil, slot) }
        slot = remember(key, hash: hash, id: found.id, slot: slot)
        let members = found.members.map { (extensionID($0.ext), $0.location) }
        return (Current(id: found.id, key: key, hash: hash, slot: slot, members: members), slot)
    }

    /// The member first in dataset order (shard, offset).
    private static func earliest(_ members: [(ext: Int32, location: MemberLocation)]) -> MemberLocation? {
        members.lazy.map(\.location).min { ($0.shardID, $0.headerOffset) < ($1.shardID, $1.headerOffset) }
    }

    /// Records `id` as the most recent sample with `key`; returns where.
    private mutating func remember(_ key: SampleKey, hash: UInt64, id: Int64, slot: Slot) -> Slot {
        switch slot {
        case .empty, .hash:
            byHash[hash] = id
            return .hash
        case .taken, .key:
            byKey[key] = id
            return .key
        }
    }

    /// A 64-bit hash of the key's bytes (FNV-1a's basis, eight bytes at a time through a
    /// multiply-xorshift mix): stable, and even enough that collisions, which ``byKey`` settles,
    /// stay rare.
    static func hash(_ key: SampleKey) -> UInt64 {
        key.bytes.withUnsafeBytes { raw -> UInt64 in
            var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ UInt64(raw.count)
            var i = 0
            while i + 8 <= raw.count {
                h = Self.mix(h ^ raw.loadUnaligned(fromByteOffset: i, as: UInt64.self))
                i += 8
            }
            var tail: UInt64 = 0
            var shift: UInt64 = 0
            while i < raw.count {
                tail |= UInt64(raw[i]) << shift
                shift += 8
                i += 1
            }
            return Self.mix(h ^ tail ^ 0x9e37_79b9_7f4a_7c15)
        }
    }

    /// SplitMix64's finalizer.
    private static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9e37_79b9_7f4a_7c15
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    private func path(_ shardID: Int64) -> String { shardPaths[shardID] ?? "shard #\(shardID)" }
}
