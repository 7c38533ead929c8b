import Testing

@testable import ShardCore

@Suite("Samplers: epoch orders, distributed shares, batches")
struct SamplerTests {
    static func items(_ order: EpochOrder) -> [Int] { (0..<order.count).map { order[$0] } }
    static func items(_ share: RankShare) -> [Int] { (0..<share.count).map { share[$0] } }

    // The golden sequences come from tools/sampler-golden.py, a separate Python implementation of
    // the documented algorithm: a change to either that alters an order fails here.

    @Test("shuffle: golden orders by (seed, epoch), the same on every machine")
    func goldenShuffles() throws {
        #expect(
            Self.items(try EpochOrder(count: 10, order: .shuffle, seed: 0, epoch: 0)) == [1, 2, 5, 7, 0, 8, 4, 3, 9, 6])
        #expect(
            Self.items(try EpochOrder(count: 10, order: .shuffle, seed: 0, epoch: 1)) == [3, 8, 0, 6, 2, 9, 7, 1, 4, 5])
        #expect(
            Self.items(try EpochOrder(count: 10, order: .shuffle, seed: 7, epoch: 0)) == [6, 1, 8, 3, 0, 2, 9, 4, 5, 7])
        let big = Self.items(try EpochOrder(count: 1000, order: .shuffle, seed: 42, epoch: 3))
        #expect(Array(big.prefix(12)) == [874, 939, 311, 312, 574, 542, 928, 705, 987, 470, 724, 791])
        #expect(Array(big.suffix(3)) == [41, 759, 701])
        #expect(big.sorted() == Array(0..<1000))
    }

    @Test("locality shuffle: golden order; each window of blocks stays together")
    func goldenLocality() throws {
        let order = try EpochOrder(count: 20, order: .localityShuffle(blockSize: 4, windowBlocks: 2), seed: 7, epoch: 1)
        let items = Self.items(order)
        #expect(items == [7, 18, 16, 5, 4, 17, 6, 19, 2, 8, 11, 3, 10, 0, 1, 9, 15, 14, 12, 13])
        // Windows of 2 blocks of 4: each run of 8 positions holds exactly two whole blocks.
        for start in stride(from: 0, to: 20, by: 8) {
            let blocks = Set(items[start..<min(start + 8, 20)].map { $0 / 4 })
            #expect(blocks.count == min(2, (20 - start + 3) / 4))
        }
    }

    @Test("sequential is the identity; shuffles are permutations for every size, and differ by epoch")
    func permutations() throws {
        #expect(Self.items(try EpochOrder(count: 5, order: .sequential, seed: 9, epoch: 4)) == [0, 1, 2, 3, 4])
        for count in [0, 1, 2, 3, 17, 256, 1001] {
            for order in [
                SampleOrder.shuffle, .localityShuffle(blockSize: 5, windowBlocks: 3),
                .localityShuffle(blockSize: 1, windowBlocks: 1), .localityShuffle(blockSize: 2000, windowBlocks: 1),
            ] {
                let items = Self.items(try EpochOrder(count: count, order: order, seed: 3, epoch: 2))
                #expect(items.sorted() == Array(0..<count), "\(order) over \(count)")
            }
        }
        let a = Self.items(try EpochOrder(count: 100, order: .shuffle, seed: 1, epoch: 0))
        let b = Self.items(try EpochOrder(count: 100, order: .shuffle, seed: 1, epoch: 1))
        let c = Self.items(try EpochOrder(count: 100, order: .shuffle, seed: 2, epoch: 0))
        #expect(a != b && a != c && b != c)
        #expect(a == Self.items(try EpochOrder(count: 100, order: .shuffle, seed: 1, epoch: 0)))
    }

    @Test("bad arguments are refused with what to pass")
    func badArguments() throws {
        #expect(throws: SamplerError("the item count is -1; it cannot be negative")) {
            try EpochOrder(count: -1, order: .shuffle, seed: 0, epoch: 0)
        }
        #expect(throws: SamplerError("epoch is -2; epochs count from 0")) {
            try EpochOrder(count: 3, order: .shuffle, seed: 0, epoch: -2)
        }
        #expect(throws: SamplerError("the locality shuffle's block size is 0; pass 1 or more items")) {
            try EpochOrder(count: 3, order: .localityShuffle(blockSize: 0, windowBlocks: 1), seed: 0, epoch: 0)
        }
        #expect(throws: SamplerError("the locality shuffle's window is 0 blocks; pass 1 or more")) {
            try EpochOrder(count: 3, order: .localityShuffle(blockSize: 2, windowBlocks: 0), seed: 0, epoch: 0)
        }
        let epoch = try EpochOrder(count: 10, order: .shuffle, seed: 0, epoch: 0)
        #expect(throws: SamplerError("world size is 0; pass 1 or more ranks")) {
            try RankShare(epoch, rank: 0, worldSize: 0, tail: .pad)
        }
        #expect(throws: SamplerError("rank is 4; with a world size of 4 it must be 0 to 3")) {
            try RankShare(epoch, rank: 4, worldSize: 4, tail: .pad)
        }
        #expect(
            throws: SamplerError(
                "the epoch is consumed up to 11 of 10 samples; a saved state must come from the same selection")
        ) { try RankShare(epoch, rank: 0, worldSize: 1, start: 11, tail: .pad) }
        let share = try RankShare(epoch, rank: 0, worldSize: 1, tail: .pad)
        #expect(throws: SamplerError("batch size is 0; pass 1 to \(Int.max / 2)")) {
            try Batches(share, batchSize: 0, dropLast: false)
        }
    }

    @Test("distributed: ranks are disjoint, equal, and together the epoch (pad repeats from the start, drop skips)")
    func distributed() throws {
        let epoch = try EpochOrder(count: 10, order: .shuffle, seed: 7, epoch: 0)
        let all = Self.items(epoch)  // [6, 1, 8, 3, 0, 2, 9, 4, 5, 7]
        let padded = try (0..<4).map { Self.items(try RankShare(epoch, rank: $0, worldSize: 4, tail: .pad)) }
        #expect(padded == [[6, 0, 5], [1, 2, 7], [8, 9, 6], [3, 4, 1]])
        let dropped = try (0..<4).map { Self.items(try RankShare(epoch, rank: $0, worldSize: 4, tail: .drop)) }
        #expect(dropped == [[6, 0], [1, 2], [8, 9], [3, 4]])
        for worldSize in 1...12 {
            for tail in [DistributedTail.pad, .drop] {
                let shares = try (0..<worldSize).map {
                    Self.items(try RankShare(epoch, rank: $0, worldSize: worldSize, tail: tail))
                }
                #expect(Set(shares.map(\.count)).count == 1, "equal shares: \(worldSize) \(tail)")
                let union = shares.flatMap { $0 }
                if tail == .drop {
                    #expect(union.count == 10 / worldSize * worldSize)
                    #expect(Set(union).count == union.count, "disjoint")
                } else {
                    #expect(Set(union) == Set(all), "the union is the epoch")
                    #expect(union.count == (10 + worldSize - 1) / worldSize * worldSize)
                }
            }
        }
        let empty = try EpochOrder(count: 0, order: .shuffle, seed: 0, epoch: 0)
        #expect(try RankShare(empty, rank: 1, worldSize: 2, tail: .pad).count == 0)
    }

    @Test("resume: the epoch continues from the consumed position, with the same or another world size")
    func resume() throws {
        let epoch = try EpochOrder(count: 103, order: .shuffle, seed: 5, epoch: 2)
        let all = Self.items(epoch)
        // 4 ranks take 10 items each, then the run stops and comes back with 3 ranks, then 1.
        let first = try (0..<4).map { try RankShare(epoch, rank: $0, worldSize: 4, tail: .drop) }
        let taken = first.flatMap { share in (0..<10).map { share[$0] } }
        let consumed = first[0].consumed(afterTaking: 10)
        #expect(consumed == 40)
        #expect(Set(taken) == Set(all[0..<40]))
        let second = try (0..<3).map { try RankShare(epoch, rank: $0, worldSize: 3, start: consumed, tail: .drop) }
        let taken2 = second.flatMap { share in (0..<5).map { share[$0] } }
        let consumed2 = second[2].consumed(afterTaking: 5)
        #expect(consumed2 == 55)
        #expect(Set(taken2) == Set(all[40..<55]))
        let last = try RankShare(epoch, rank: 0, worldSize: 1, start: consumed2, tail: .drop)
        let rest = Self.items(last)
        #expect(rest == Array(all[55...]))
        // No sample repeated, none skipped.
        #expect((taken + taken2 + rest).sorted() == Array(0..<103))
        #expect(last.consumed(afterTaking: last.count) == 103)
    }

    @Test("batches: sizes, drop_last, order of the share")
    func batches() throws {
        let epoch = try EpochOrder(count: 10, order: .sequential, seed: 0, epoch: 0)
        let share = try RankShare(epoch, rank: 0, worldSize: 1, tail: .pad)
        let keep = try Batches(share, batchSize: 4, dropLast: false)
        #expect(keep.count == 3)
        #expect((0..<keep.count).map { keep.items($0) } == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]])
        let drop = try Batches(share, batchSize: 4, dropLast: true)
        #expect(drop.count == 2)
        #expect(drop.range(1) == 4..<8)
        #expect(try Batches(share, batchSize: 20, dropLast: true).count == 0)
        #expect(try Batches(share, batchSize: 20, dropLast: false).count == 1)
    }
}
