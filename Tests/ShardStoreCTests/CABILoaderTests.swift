import CShardStoreABI
import ShardStore
import ShardStoreC
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// One column of a batch read through the C ABI, copied out.
struct ReadColumn: Equatable {
    var ext: String
    var layout: UInt32
    var dtype: String?
    var shape: [Int64]
    /// `.bytes`: each sample's member (nil: none); `.labels`: the values as text; `.stacked`: empty.
    var members: [[UInt8]?]
    var labels: [Int64]
}

/// A batch read through the C ABI, copied out of its lease.
struct ReadBatch {
    var number: Int64
    var positions: [Int64]
    var keys: [[UInt8]]
    var columns: [ReadColumn]

    init(_ b: shardstore_batch) {
        let n = Int(b.count)
        number = b.number
        positions = Array(UnsafeBufferPointer(start: b.positions, count: n))
        let offsets = Array(UnsafeBufferPointer(start: b.key_offsets, count: n + 1))
        keys = (0..<n).map { i in
            Array(
                UnsafeBufferPointer(start: b.key_bytes, count: Int(offsets[n]))[Int(offsets[i])..<Int(offsets[i + 1])])
        }
        columns = (0..<b.column_count).map { c in
            let col = b.columns[c]
            let ext = String(decoding: UnsafeRawBufferPointer(start: col.ext, count: col.ext_length), as: UTF8.self)
            let shape = Array(UnsafeBufferPointer(start: col.shape, count: col.ndim))
            let data = UnsafeRawBufferPointer(start: col.data, count: Int(col.data_length))
            var members: [[UInt8]?] = []
            var labels: [Int64] = []
            if col.layout == SHARDSTORE_LAYOUT_BYTES.rawValue {
                let o = UnsafeBufferPointer(start: col.offsets, count: n + 1)
                members = (0..<n).map { i in col.present[i] == 0 ? nil : Array(data[Int(o[i])..<Int(o[i + 1])]) }
            } else if col.layout == SHARDSTORE_LAYOUT_LABELS.rawValue {
                labels = (0..<n).map { data.load(fromByteOffset: $0 * 8, as: Int64.self) }
            }
            return ReadColumn(
                ext: ext, layout: col.layout, dtype: col.dtype.map { String(cString: $0) }, shape: shape,
                members: members, labels: labels)
        }
    }
}

@Suite struct CABILoaderTests {
    let fixture: CABIFixture
    init() throws { fixture = try CABIFixture() }

    /// Opens a loader with `configure` applied to the defaults.
    func loader(
        _ dataset: OpaquePointer?, _ configure: (inout shardstore_loader_options) -> Void
    ) -> (OpaquePointer?, Outcome) {
        var options = shardstore_loader_options()
        shardstore_loader_options_init(&options)
        configure(&options)
        var loader: OpaquePointer?
        let result = outcome { shardstore_loader_open(dataset, &options, &loader, $0) }
        return (loader, result)
    }

    /// Every batch of the epoch, copied.
    func epoch(_ loader: OpaquePointer?) throws -> [ReadBatch] {
        var out: [ReadBatch] = []
        while true {
            var batch = shardstore_batch()
            var lease: OpaquePointer?
            let result = outcome { shardstore_loader_next(loader, &batch, &lease, $0) }
            try #require(result == .ok, "\(result)")
            guard let lease else {
                #expect(batch.count == 0)
                return out
            }
            out.append(ReadBatch(batch))
            shardstore_lease_release(lease)
        }
    }

    @Test func optionsInitGivesTheDefaults() {
        var options = shardstore_loader_options()
        memset(&options, 0xab, MemoryLayout<shardstore_loader_options>.size)
        shardstore_loader_options_init(&options)
        #expect(options.struct_size == 80)
        #expect(options.order == SHARDSTORE_ORDER_SEQUENTIAL.rawValue && options.batch_size == 1)
        #expect(options.seed == 0 && options.drop_last == 0 && options.threads == 0 && options.prefetch == 0)
        #expect(options.rank == 0 && options.world_size == 1)
        #expect(options.tail == SHARDSTORE_TAIL_PAD.rawValue && options.collate == SHARDSTORE_COLLATE_NATIVE.rawValue)
    }

    @Test func sequentialBatchesCarryEveryMemberByteExact() throws {
        let (dataset, opened) = open(fixture.index, OpenOptions(strategy: "pread"))
        #expect(opened == .ok)
        defer { shardstore_close(dataset) }
        let (loader, made) = loader(dataset) {
            $0.batch_size = 4
            $0.collate = SHARDSTORE_COLLATE_BYTES.rawValue
        }
        #expect(made == .ok)
        defer { shardstore_loader_close(loader) }
        var count: Int64 = -1
        #expect(outcome { shardstore_loader_count(loader, &count, $0) } == .ok)
        #expect(count == 3)
        let batches = try epoch(loader)
        #expect(batches.map(\.number) == [0, 1, 2])
        #expect(batches.flatMap(\.positions) == Array(0..<11))
        #expect(batches.flatMap(\.keys) == fixture.samples.map(\.key))
        for batch in batches {
            for (i, position) in batch.positions.enumerated() {
                let expected = fixture.samples[Int(position)]
                for column in batch.columns {
                    #expect(column.layout == SHARDSTORE_LAYOUT_BYTES.rawValue && column.dtype == nil)
                    #expect(
                        column.members[i] == expected.members.first { $0.ext == column.ext }?.bytes,
                        "\(position) \(column.ext)")
                }
                for member in expected.members { #expect(batch.columns.contains { $0.ext == member.ext }) }
            }
        }
        var state = shardstore_loader_state()
        #expect(outcome { shardstore_loader_state_get(loader, &state, $0) } == .ok)
        #expect(state.epoch == 0 && state.consumed == 11 && state.world_size == 1)
    }

    @Test func nativeCollationGivesLabelsAndShuffleResumes() throws {
        let (dataset, _) = open(fixture.index, OpenOptions(strategy: "mmap"))
        defer { shardstore_close(dataset) }
        let configure: (inout shardstore_loader_options) -> Void = {
            $0.batch_size = 3
            $0.order = SHARDSTORE_ORDER_SHUFFLE.rawValue
            $0.seed = 5
            $0.threads = 2
        }
        let (loader, _) = loader(dataset, configure)
        defer { shardstore_loader_close(loader) }
        #expect(outcome { shardstore_loader_set_epoch(loader, 4, $0) } == .ok)
        let order = try EpochOrder(count: 11, order: .shuffle, seed: 5, epoch: 4)
        let all = try epoch(loader)
        #expect(all.flatMap(\.positions) == (0..<11).map { Int64(order[$0]) })
        let cls = try #require(all[0].columns.first { $0.ext == "cls" })
        #expect(cls.layout == SHARDSTORE_LAYOUT_LABELS.rawValue && cls.dtype == "<i8" && cls.shape == [3])
        #expect(cls.labels == all[0].positions.map { $0 % 3 })

        // Two batches, save, and a new loader continues with the rest.
        #expect(outcome { shardstore_loader_set_epoch(loader, 4, $0) } == .ok)
        var first: [Int64] = []
        for _ in 0..<2 {
            var batch = shardstore_batch()
            var lease: OpaquePointer?
            #expect(outcome { shardstore_loader_next(loader, &batch, &lease, $0) } == .ok)
            first += ReadBatch(batch).positions
            shardstore_lease_release(lease)
        }
        var state = shardstore_loader_state()
        #expect(outcome { shardstore_loader_state_get(loader, &state, $0) } == .ok)
        #expect(state.seed == 5 && state.epoch == 4 && state.consumed == 6)
        let (resumed, _) = self.loader(dataset, configure)
        defer { shardstore_loader_close(resumed) }
        #expect(outcome { shardstore_loader_restore(resumed, &state, $0) } == .ok)
        let rest = try epoch(resumed)
        #expect(rest.map(\.number) == [0, 1])
        #expect(first + rest.flatMap(\.positions) == (0..<11).map { Int64(order[$0]) })

        var report: UnsafeMutablePointer<CChar>?
        #expect(outcome { shardstore_loader_report(loader, &report, $0) } == .ok)
        #expect(String(cString: report!) == "threads 2; prefetch auto, 4 batches")
        shardstore_string_free(report)
    }

    @Test func badArgumentsAreRefusedWithTheirField() {
        let (dataset, _) = open(fixture.index)
        defer { shardstore_close(dataset) }
        #expect(
            loader(dataset) { $0.order = 7 }.1
                == Outcome(
                    status: SHARDSTORE_INVALID_ARGUMENT,
                    message: "order is 7; pass SHARDSTORE_ORDER_SEQUENTIAL, _SHUFFLE or _LOCALITY_SHUFFLE"))
        #expect(
            loader(dataset) { $0.batch_size = 0 }.1
                == Outcome(status: SHARDSTORE_INVALID_ARGUMENT, message: "batch_size is 0; pass 1 to 2147483647"))
        #expect(
            loader(dataset) {
                $0.rank = 3
                $0.world_size = 2
            }.1
                == Outcome(
                    status: SHARDSTORE_INVALID_ARGUMENT, message: "rank is 3; with a world size of 2 it must be 0 to 1")
        )
        #expect(
            loader(dataset) { $0.struct_size = 0 }.1
                == Outcome(
                    status: SHARDSTORE_INVALID_ARGUMENT,
                    message:
                        "loader options struct_size is 0, expected 80; fill the options with shardstore_loader_options_init"
                ))
        var batch = shardstore_batch()
        var lease: OpaquePointer?
        #expect(
            outcome { shardstore_loader_next(nil, &batch, &lease, $0) }
                == Outcome(
                    status: SHARDSTORE_INVALID_ARGUMENT,
                    message: "loader is NULL; pass a loader from shardstore_loader_open"))
        let (loader, _) = loader(dataset) { $0.seed = 1 }
        defer { shardstore_loader_close(loader) }
        var state = shardstore_loader_state(seed: 2, epoch: 0, consumed: 0, world_size: 1)
        #expect(
            outcome { shardstore_loader_restore(loader, &state, $0) }
                == Outcome(
                    status: SHARDSTORE_INVALID_ARGUMENT,
                    message: "the saved state has seed 2 but this loader 1; make the loader with the saved seed"))
        shardstore_loader_close(nil)
    }
}
