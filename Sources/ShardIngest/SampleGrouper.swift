import ShardCore
import ShardIndex

/// Groups scanned members into samples by key across the whole dataset (adjacent or not), applies
/// the duplicate policy, and writes samples and members through the ``IndexWriter``.
///
/// A member joins the most recent sample with its key. When that sample already has the member's
/// extension, the policy decides: `error` stops, `first` drops the new one, `last` replaces the old
/// one, `keep` starts a new sample with the same key.
struct SampleGrouper {
    private final class SampleState {
        let id: Int64
        /// (extension id, location): small integers instead of strings keep this hot loop free of
        /// reference counting.
        var members: [(ext: Int32, location: MemberLocation)]
        init(id: Int64, members: [(ext: Int32, location: MemberLocation)]) {
            self.id = id
            self.members = members
            self.members.reserveCapacity(4)
        }
        func index(of ext: Int32) -> Int? { members.firstIndex { $0.ext == ext } }
    }

    private let writer: IndexWriter
    private let policy: DuplicatePolicy
    private let indexWasEmpty: Bool
    private var nextID: Int64
    private let shardPaths: [Int64: String]
    private var samples: [SampleKey: SampleState] = [:]
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
    var samplesTouched: Int { samples.count }

    init(writer: IndexWriter, policy: DuplicatePolicy, indexWasEmpty: Bool, nextID: Int64, shardPaths: [Int64: String])
    {
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
        var previousKey: SampleKey?
        var previous: SampleState?
        let checksums = scan.crc32c
        for (n, m) in members.enumerated() {
            let crc32c: UInt32? = checksums.isEmpty ? nil : checksums[n]
            let location = MemberLocation(
                shardID: shardID, headerOffset: m.headerOffset, dataOffset: m.dataOffset, length: m.length)
            let extID = local[Int(m.ext)]
            let ext = extensionNames[Int(extID)]
            let adjacent = previous != nil && previousKey == m.key
            // Members of one sample are usually adjacent: reuse the previous state without hashing.
            var state = adjacent ? previous : try existingSample(m.key)
            if !adjacent, let s = state, let first = s.members.first {
                seenAgain += 1
                if seenAgainExamples.count < 5 {
                    seenAgainExamples.append(
                        (
                            m.key, path(shardID), m.headerOffset, path(first.location.shardID),
                            first.location.headerOffset
                        ))
                }
            }
            if !adjacent {
                previousKey = m.key
                previous = state
            }
            if let s = state, let i = s.index(of: extID) {
                let old = s.members[i].location
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
                        try writer.replaceMember(sampleID: s.id, ext: ext, location: location, crc32c: crc32c)
                        s.members[i].location = location
                        relocated += 1
                    }
                    continue
                case .keep:
                    keptExtra += 1
                    state = nil
                }
            }
            let target: SampleState
            if let s = state {
                target = s
            } else {
                target = SampleState(id: nextID, members: [])
                try writer.insertSample(id: nextID, key: m.key, shardID: shardID, firstOffset: m.headerOffset)
                nextID += 1
                created += 1
                samples[m.key] = target
            }
            previous = target
            try writer.insertMember(sampleID: target.id, ext: ext, location: location, crc32c: crc32c)
            target.members.append((extID, location))
            written += 1
        }
        return written
    }

    /// The most recent sample with `key`: from this ingest, else from the index.
    private mutating func existingSample(_ key: SampleKey) throws -> SampleState? {
        if let s = samples[key] { return s }
        guard !indexWasEmpty, let found = try writer.latestSample(forKey: key) else { return nil }
        var members: [(ext: Int32, location: MemberLocation)] = []
        for m in found.members { members.append((extensionID(m.ext), m.location)) }
        let s = SampleState(id: found.id, members: members)
        samples[key] = s
        return s
    }

    private func path(_ shardID: Int64) -> String { shardPaths[shardID] ?? "shard #\(shardID)" }
}
