/// The order in which an epoch visits the items of a selection.
///
/// - `sequential`: `0, 1, 2, ...`.
/// - `shuffle`: a full permutation of the selection, new each epoch (Fisher-Yates driven by
///   ``SplitMix64`` seeded from (seed, epoch); see ``EpochOrder``).
/// - `localityShuffle`: for storage where random reads cost more than nearby ones. The items are
///   cut into blocks of `blockSize` consecutive items; the blocks are shuffled; then the items of
///   each window of `windowBlocks` consecutive blocks (in that shuffled block order) are shuffled
///   among themselves. An epoch then reads from at most `windowBlocks` blocks at a time (as wids'
///   ChunkedSampler or FFCV's quasi-random order do).
public enum SampleOrder: Sendable, Equatable, CustomStringConvertible {
    case sequential
    case shuffle
    case localityShuffle(blockSize: Int, windowBlocks: Int)

    public var description: String {
        switch self {
        case .sequential: return "sequential"
        case .shuffle: return "shuffle"
        case .localityShuffle(let blockSize, let windowBlocks):
            let windows = windowBlocks == 1 ? "1 block" : "\(windowBlocks) blocks"
            return "locality shuffle (blocks of \(blockSize), windows of \(windows))"
        }
    }
}

/// A sampler argument that cannot be used; the message says which and what to pass.
public struct SamplerError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// One epoch's order over `count` items: position `g` of the epoch (0 ..< count) is item
/// `order[g]`. The same (count, order, seed, epoch) gives the same order on every machine, every
/// run and every Swift version, whatever the number of threads or processes that read it.
///
/// The shuffles draw from `SplitMix64(seed: SplitMix64(seed: seed ^ (epoch × 0xD1B54A32D192ED03)).next())`
/// (``EpochOrder/generator(seed:epoch:)``). `shuffle` is `Array(0 ..< count).seededShuffle` with
/// it: Fisher-Yates from the top, `j = next(below: i + 1)` (Lemire's method).
///
/// ```swift
/// let order = try EpochOrder(count: 1_000, order: .shuffle, seed: 42, epoch: 3)
/// let first = order[0]   // the item the epoch visits first
/// ```
///
/// - Complexity: building is O(count) time and 4 bytes an item (8 past 2^32 items) for the
///   shuffles, O(1) for `sequential`; `order[g]` is O(1).
public struct EpochOrder: Sendable {
    /// How many items the epoch visits.
    public let count: Int
    public let order: SampleOrder
    public let seed: UInt64
    public let epoch: Int

    private enum Storage: Sendable {
        case identity
        case narrow([UInt32])
        case wide([Int])
    }

    private let storage: Storage

    /// The order of epoch `epoch` over `count` items.
    ///
    /// - Throws: ``SamplerError`` when `count` or `epoch` is negative, or a locality shuffle's
    ///   block size or window is below 1.
    public init(count: Int, order: SampleOrder, seed: UInt64, epoch: Int) throws(SamplerError) {
        guard count >= 0 else { throw SamplerError("the item count is \(count); it cannot be negative") }
        guard epoch >= 0 else { throw SamplerError("epoch is \(epoch); epochs count from 0") }
        self.count = count
        self.order = order
        self.seed = seed
        self.epoch = epoch
        switch order {
        case .sequential:
            storage = .identity
            return
        case .shuffle:
            break
        case .localityShuffle(let blockSize, let windowBlocks):
            guard blockSize >= 1 else {
                throw SamplerError("the locality shuffle's block size is \(blockSize); pass 1 or more items")
            }
            guard windowBlocks >= 1 else {
                throw SamplerError("the locality shuffle's window is \(windowBlocks) blocks; pass 1 or more")
            }
        }
        if UInt64(count) <= UInt64(UInt32.max) + 1 {
            storage = .narrow(EpochOrder.permuted(count, as: UInt32.self, order, seed: seed, epoch: epoch))
        } else {
            storage = .wide(EpochOrder.permuted(count, as: Int.self, order, seed: seed, epoch: epoch))
        }
    }

    /// The generator the shuffles of epoch `epoch` draw from.
    public static func generator(seed: UInt64, epoch: Int) -> SplitMix64 {
        var mixer = SplitMix64(seed: seed ^ (UInt64(truncatingIfNeeded: epoch) &* 0xD1B5_4A32_D192_ED03))
        return SplitMix64(seed: mixer.next())
    }

    /// The item visited at position `g` of the epoch.
    ///
    /// - Precondition: `0 <= g < count`.
    public subscript(g: Int) -> Int {
        precondition(g >= 0 && g < count, "epoch position \(g) out of range 0..<\(count)")
        switch storage {
        case .identity: return g
        case .narrow(let items): return Int(items[g])
        case .wide(let items): return items[g]
        }
    }

    /// `0 ..< count` in the epoch's order, as `T`s.
    private static func permuted<T: FixedWidthInteger>(
        _ count: Int, as _: T.Type, _ order: SampleOrder, seed: UInt64, epoch: Int
    ) -> [T] {
        var items = [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            for i in 0..<count { buffer[i] = T(truncatingIfNeeded: i) }
            initialized = count
        }
        var rng = generator(seed: seed, epoch: epoch)
        switch order {
        case .sequential: break
        case .shuffle: shuffle(&items, using: &rng)
        case .localityShuffle(let blockSize, let windowBlocks):
            localityShuffle(&items, blockSize: blockSize, windowBlocks: windowBlocks, using: &rng)
        }
        return items
    }

    /// Fisher-Yates from the top: for i = n-1 down to 1, swap items i and `rng.next(below: i + 1)`.
    static func shuffle<T>(_ items: inout [T], using rng: inout SplitMix64) {
        let n = items.count
        guard n > 1 else { return }
        for i in stride(from: n - 1, to: 0, by: -1) {
            let j = Int(rng.next(below: UInt64(i + 1)))
            if i != j { items.swapAt(i, j) }
        }
    }

    /// Shuffles the block order, then the items of each window of `windowBlocks` blocks (taken in
    /// that order), window by window, with the same generator.
    static func localityShuffle<T>(
        _ items: inout [T], blockSize: Int, windowBlocks: Int, using rng: inout SplitMix64
    ) {
        let n = items.count
        guard n > 1 else { return }
        let blocks = (n - 1) / blockSize + 1
        var blockOrder = Array(0..<blocks)
        shuffle(&blockOrder, using: &rng)
        var result: [T] = []
        result.reserveCapacity(n)
        var window: [T] = []
        var start = 0
        while start < blocks {
            let end = min(start + windowBlocks, blocks)
            window.removeAll(keepingCapacity: true)
            for b in blockOrder[start..<end] {
                let lower = b * blockSize
                window.append(contentsOf: items[lower..<min(lower + blockSize, n)])
            }
            shuffle(&window, using: &rng)
            result.append(contentsOf: window)
            start = end
        }
        items = result
    }
}

/// What a distributed share does with an epoch that does not divide evenly among the ranks.
public enum DistributedTail: String, Sendable, Equatable {
    /// Every rank gets `ceil(left / worldSize)` items: the last round is completed with items from
    /// the epoch's start (as PyTorch's `DistributedSampler` does), so a few repeat.
    case pad
    /// Every rank gets `floor(left / worldSize)` items: the last `left % worldSize` are skipped.
    case drop
}

/// One rank's share of an epoch, from global position `start` on: rank `r` of `W` visits the
/// epoch positions `start + r`, `start + r + W`, `start + r + 2W`, ... Ranks step together: after
/// each rank has taken `k` items, the epoch is consumed up to `start + k × W` whatever the world
/// size, so a run resumed with another world size continues the same permutation from there. The
/// shares of all ranks are disjoint and, with `.drop`, their union is `start ..< start + W × count`;
/// with `.pad` it is the rest of the epoch, plus up to `W - 1` positions taken again from its start.
///
/// ```swift
/// let epoch = try EpochOrder(count: 10, order: .shuffle, seed: 7, epoch: 0)
/// let share = try RankShare(epoch, rank: 1, worldSize: 4, tail: .pad)   // 3 items
/// let items = (0..<share.count).map { share[$0] }
/// ```
///
/// - Complexity: O(1) to make and per item.
public struct RankShare: Sendable {
    public let epoch: EpochOrder
    public let rank: Int
    public let worldSize: Int
    /// The global epoch position this share starts after (samples consumed by all ranks before).
    public let start: Int
    public let tail: DistributedTail
    /// How many items this rank visits.
    public let count: Int

    /// Rank `rank`'s share of `epoch` among `worldSize` ranks, from global position `start`.
    ///
    /// - Throws: ``SamplerError`` when `worldSize` is below 1, `rank` is not in `0 ..< worldSize`,
    ///   or `start` is not in `0 ... epoch.count`.
    public init(_ epoch: EpochOrder, rank: Int, worldSize: Int, start: Int = 0, tail: DistributedTail)
        throws(SamplerError)
    {
        guard worldSize >= 1 else { throw SamplerError("world size is \(worldSize); pass 1 or more ranks") }
        guard rank >= 0, rank < worldSize else {
            throw SamplerError("rank is \(rank); with a world size of \(worldSize) it must be 0 to \(worldSize - 1)")
        }
        guard start >= 0, start <= epoch.count else {
            throw SamplerError(
                "the epoch is consumed up to \(start) of \(epoch.count) samples; a saved state must come from the same selection"
            )
        }
        self.epoch = epoch
        self.rank = rank
        self.worldSize = worldSize
        self.start = start
        self.tail = tail
        let left = epoch.count - start
        switch tail {
        case .drop: count = left / worldSize
        case .pad: count = epoch.count == 0 ? 0 : (left + worldSize - 1) / worldSize
        }
    }

    /// The global epoch position of this rank's `j`th item (past `epoch.count` when padded).
    public func globalPosition(of j: Int) -> Int { start + rank + j * worldSize }

    /// This rank's `j`th item.
    ///
    /// - Precondition: `0 <= j < count`.
    public subscript(j: Int) -> Int {
        precondition(j >= 0 && j < count, "share position \(j) out of range 0..<\(count)")
        let g = globalPosition(of: j)
        return epoch[g < epoch.count ? g : (g - epoch.count) % epoch.count]
    }

    /// The global position reached once every rank has taken `taken` items of its share (at most
    /// `epoch.count`): what a saved state records as consumed.
    public func consumed(afterTaking taken: Int) -> Int {
        min(epoch.count, start + max(0, taken) * worldSize)
    }
}

/// A share cut into batches of `batchSize` items, the last one short or dropped.
///
/// ```swift
/// let batches = try Batches(share, batchSize: 256, dropLast: true)
/// for b in 0..<batches.count { let range = batches.range(b) /* share positions */ }
/// ```
public struct Batches: Sendable {
    public let share: RankShare
    public let batchSize: Int
    public let dropLast: Bool
    /// How many batches.
    public let count: Int

    /// - Throws: ``SamplerError`` when `batchSize` is below 1.
    public init(_ share: RankShare, batchSize: Int, dropLast: Bool) throws(SamplerError) {
        guard batchSize >= 1, batchSize <= Int.max / 2 else {
            throw SamplerError("batch size is \(batchSize); pass 1 to \(Int.max / 2)")
        }
        self.share = share
        self.batchSize = batchSize
        self.dropLast = dropLast
        count = dropLast ? share.count / batchSize : (share.count + batchSize - 1) / batchSize
    }

    /// The share positions of batch `b`.
    ///
    /// - Precondition: `0 <= b < count`.
    public func range(_ b: Int) -> Range<Int> {
        precondition(b >= 0 && b < count, "batch \(b) out of range 0..<\(count)")
        return b * batchSize..<min((b + 1) * batchSize, share.count)
    }

    /// The items of batch `b`, in order.
    public func items(_ b: Int) -> [Int] { range(b).map { share[$0] } }
}
