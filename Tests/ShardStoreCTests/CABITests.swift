import CShardStoreABI
import Dispatch
import Foundation
import ShardStore
import ShardStoreC
import ShardTestSupport
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The C ABI's behaviour, called as C calls it: bytes, counts, lookups, errors with their codes and
/// messages, batches, leases, facts.
@Suite struct CABITests {
    let fixture: CABIFixture

    init() throws { fixture = try CABIFixture() }

    @Test func versions() {
        #expect(shardstore_abi_version() == UInt32(SHARDSTORE_ABI_VERSION))
        #expect(String(cString: shardstore_version()) == ShardStoreVersion.string)
        // Static: the same pointer every time.
        #expect(shardstore_version() == shardstore_version())
    }

    @Test func optionsInitGivesTheDefaults() {
        var options = shardstore_open_options()
        memset(&options, 0xab, MemoryLayout<shardstore_open_options>.size)
        shardstore_open_options_init(&options)
        #expect(options.struct_size == 72)
        #expect(options.verify_headers == 1)
        #expect(options.split == nil && options.extensions == nil && options.extension_count == 0)
        #expect(options.strategy == nil && options.lookup == nil && options.memory_limit == nil)
        #expect(options.cache_dir == nil && options.cache_limit == nil)
        shardstore_open_options_init(nil)
    }

    @Test(arguments: [
        ("memory", "auto"), ("mmap", "auto"), ("pread", "auto"), ("mmap", "file"), ("pread", "statements"),
        ("mmap", "table"),
    ])
    func everySampleReadsBackByteExact(strategy: String, lookup: String) throws {
        for split in [nil, "val", "train"] {
            let options = OpenOptions(strategy: strategy, lookup: lookup, split: split)
            let (dataset, result) = open(fixture.index, options)
            #expect(result == .ok)
            defer { shardstore_close(dataset) }
            let expected = fixture.expected(split: split)
            #expect(shardstore_count(dataset) == Int64(expected.count))
            for (p, e) in expected.enumerated() {
                let read = try get(dataset, Int64(p)).get()
                #expect(
                    read
                        == ReadSample(
                            key: e.key, position: Int64(p), index: Int64(fixture.globalIndex(of: e.key)),
                            members: e.members), "\(strategy)/\(lookup) split \(split ?? "-") position \(p)")
            }
        }
    }

    @Test func infoDescribesTheDataset() throws {
        let options = OpenOptions(strategy: "mmap", lookup: "table", split: "val")
        let (dataset, result) = open(fixture.index, options)
        #expect(result == .ok)
        defer { shardstore_close(dataset) }
        var info = shardstore_dataset_info()
        info.struct_size = UInt32(MemoryLayout<shardstore_dataset_info>.size)
        #expect(outcome { shardstore_info(dataset, &info, $0) } == .ok)
        let swift = try Dataset(index: fixture.index, split: "val", strategy: .mmap, options: .init(lookup: .table))
        #expect(info.count == 4)
        #expect(String(cString: info.strategy) == "mmap")
        #expect(String(cString: info.lookup) == "table")
        #expect(String(cString: info.reason) == swift.choice.reason)
        #expect(info.selection_bytes == swift.selectionBytes)
        #expect(
            info.selection_bytes
                == Int64(fixture.expected(split: "val").flatMap(\.members).map(\.bytes.count).reduce(0, +)))
        #expect(String(cString: info.split) == "val")
        #expect(String(cString: info.index_path) == fixture.index)

        let (whole, _) = open(fixture.index, OpenOptions(strategy: "pread", lookup: "statements"))
        defer { shardstore_close(whole) }
        #expect(outcome { shardstore_info(whole, &info, $0) } == .ok)
        #expect(info.split == nil)
        #expect(String(cString: info.strategy) == "pread")
        #expect(String(cString: info.lookup) == "statements")

        info.struct_size = 8
        #expect(
            outcome { shardstore_info(whole, &info, $0) }
                == Outcome(
                    status: SHARDSTORE_INVALID_ARGUMENT,
                    message:
                        "info->struct_size is 8, less than the 64 bytes of shardstore_dataset_info in ABI version \(SHARDSTORE_ABI_VERSION); set it to sizeof(shardstore_dataset_info)"
                ))
    }

    @Test func extensionsLimitTheMembers() throws {
        let (dataset, result) = open(fixture.index, OpenOptions(strategy: "pread", extensions: [".JPG", "seg.png"]))
        #expect(result == .ok)
        defer { shardstore_close(dataset) }
        let expected = fixture.expected(split: nil, extensions: ["jpg", "seg.png"])
        for (p, e) in expected.enumerated() {
            #expect(try get(dataset, Int64(p)).get().members == e.members)
        }
        #expect(
            open(fixture.index, OpenOptions(extensions: ["png"])).1
                == Outcome(
                    status: SHARDSTORE_UNKNOWN_EXTENSION,
                    message: "no member has extension '.png' (extensions: .cls, .jpg, .json, .seg.png)"))
    }

    @Test func positionsByKey() {
        let (dataset, _) = open(fixture.index)
        defer { shardstore_close(dataset) }
        for (i, s) in fixture.samples.enumerated() {
            var position: Int64 = -1
            #expect(outcome { shardstore_position(dataset, s.key, s.key.count, &position, $0) } == .ok)
            #expect(position == Int64(i))
        }
        var position: Int64 = 77
        #expect(
            outcome { shardstore_position(dataset, Array("k99".utf8), 3, &position, $0) }
                == Outcome(
                    status: SHARDSTORE_UNKNOWN_KEY,
                    message: "no sample has key 'k99'; `shardstore ls INDEX` lists the keys"
                ))
        // A prefix of a key is not the key.
        #expect(
            outcome { shardstore_position(dataset, Array("k1".utf8), 1, &position, $0) }.status
                == SHARDSTORE_UNKNOWN_KEY)
        #expect(position == 77)

        let (val, _) = open(fixture.index, OpenOptions(split: "val"))
        defer { shardstore_close(val) }
        #expect(outcome { shardstore_position(val, Array("k4".utf8), 2, &position, $0) } == .ok)
        #expect(position == 1)
        #expect(
            outcome { shardstore_position(val, Array("k0".utf8), 2, &position, $0) }
                == Outcome(
                    status: SHARDSTORE_UNKNOWN_KEY,
                    message:
                        "sample 'k0' is not in split 'val'; open the dataset without a split to read it"
                ))
    }

    @Test func positionsOutOfRange() {
        let (dataset, _) = open(fixture.index, OpenOptions(split: "val"))
        defer { shardstore_close(dataset) }
        for position: Int64 in [-1, 4, Int64.max, Int64.min] {
            #expect(
                get(dataset, position)
                    == .failure(
                        OutcomeError(
                            outcome: Outcome(
                                status: SHARDSTORE_OUT_OF_RANGE,
                                message:
                                    "index \(position) is out of range: split 'val' has 4 samples (valid: 0 to 3)"))))
        }
    }

    @Test func openFailures() throws {
        let missing = fixture.directory.path + "/missing.sqlite"
        #expect(
            open(missing).1
                == Outcome(
                    status: SHARDSTORE_INDEX_NOT_FOUND,
                    message: "index '\(missing)' does not exist; create it with `shardstore ingest \(missing) SHARD...`"
                ))
        #expect(open(fixture.directory.path).1.status == SHARDSTORE_NOT_AN_INDEX)
        let notSQLite = fixture.directory.path + "/not.sqlite"
        _ = FileManager.default.createFile(atPath: notSQLite, contents: Data(repeating: 7, count: 4096))
        #expect(open(notSQLite).1.status == SHARDSTORE_NOT_AN_INDEX)
        #expect(
            open(fixture.index, OpenOptions(split: "test")).1
                == Outcome(status: SHARDSTORE_UNKNOWN_SPLIT, message: "no split named 'test' (splits: train, val)"))
        #expect(
            open(fixture.index, OpenOptions(strategy: "fast")).1
                == Outcome(
                    status: SHARDSTORE_INVALID_ARGUMENT,
                    message: "unknown strategy 'fast' in options->strategy; use auto, memory, mmap or pread"))
        #expect(
            open(fixture.index, OpenOptions(lookup: "index")).1
                == Outcome(
                    status: SHARDSTORE_INVALID_ARGUMENT,
                    message: "unknown lookup 'index' in options->lookup; use auto, table, file or statements"))
        #expect(
            open(fixture.index, OpenOptions(memoryLimit: "2X")).1
                == Outcome(
                    status: SHARDSTORE_INVALID_ARGUMENT,
                    message:
                        "options->memory_limit='2X' is not a memory size: unknown unit 'X'; use a byte count or a number with K, M, G or T (such as 512M, 2G or 1.5GiB)"
                ))
        #expect(
            open(fixture.index, OpenOptions(strategy: "memory", lookup: "file")).1.status == SHARDSTORE_INVALID_ARGUMENT
        )
        let tooSmall = open(fixture.index, OpenOptions(strategy: "memory", memoryLimit: "1K")).1
        #expect(tooSmall.status == SHARDSTORE_OUT_OF_MEMORY)
        #expect(tooSmall.message?.hasPrefix("the memory strategy would read ") == true)
        let small = OpenOptions()
        small.options.struct_size = 0
        #expect(
            open(fixture.index, small).1
                == Outcome(
                    status: SHARDSTORE_INVALID_ARGUMENT,
                    message:
                        "options->struct_size is 0, less than the 56 bytes of shardstore_open_options in ABI version 1 (72 in version \(SHARDSTORE_ABI_VERSION)); fill the options with shardstore_open_options_init() first"
                ))
        #expect(
            open(fixture.index, OpenOptions(cacheDirectory: "/nonexistent/cache")).1
                == Outcome(
                    status: SHARDSTORE_INVALID_ARGUMENT,
                    message:
                        "the cache folder '/nonexistent/cache' does not exist or is not a folder; create it first (mkdir -p)"
                ))
        #expect(
            open(fixture.index, OpenOptions(cacheDirectory: "/tmp", cacheLimit: "2X")).1
                == Outcome(
                    status: SHARDSTORE_INVALID_ARGUMENT,
                    message:
                        "options->cache_limit='2X' is not a memory size: unknown unit 'X'; use a byte count or a number with K, M, G or T (such as 512M, 2G or 1.5GiB)"
                ))
        // A caller built against ABI version 1: its struct ends before cache_dir, which is not read.
        let version1 = OpenOptions(cacheDirectory: "/nonexistent/cache", cacheLimit: "2X")
        version1.options.struct_size = 56
        let (old, opened) = open(fixture.index, version1)
        #expect(opened == .ok)
        shardstore_close(old)
        let noList = OpenOptions()
        noList.options.extension_count = 2
        #expect(open(fixture.index, noList).1.status == SHARDSTORE_INVALID_ARGUMENT)
        let emptyList = OpenOptions(extensions: ["jpg"])
        emptyList.options.extension_count = 0
        #expect(open(fixture.index, emptyList).1.status == SHARDSTORE_INVALID_ARGUMENT)
        let invalidUTF8: [CChar] = [0x73, -1, 0]
        let badSplit = OpenOptions()
        let status = invalidUTF8.withUnsafeBufferPointer { split in
            badSplit.options.split = split.baseAddress
            return open(fixture.index, badSplit).1
        }
        #expect(
            status
                == Outcome(
                    status: SHARDSTORE_INVALID_ARGUMENT, message: "options->split is not valid UTF-8; pass UTF-8 text"))
        // A memory limit the auto strategy honours.
        let (limited, result) = open(fixture.index, OpenOptions(memoryLimit: "1M"))
        #expect(result == .ok)
        defer { shardstore_close(limited) }
        var info = shardstore_dataset_info()
        info.struct_size = UInt32(MemoryLayout<shardstore_dataset_info>.size)
        #expect(outcome { shardstore_info(limited, &info, $0) } == .ok)
        #expect(String(cString: info.reason).contains("options->memory_limit"))
    }

    @Test func nullPointersAreInvalidArguments() {
        let (dataset, _) = open(fixture.index)
        defer { shardstore_close(dataset) }
        var sample = shardstore_sample()
        var lease: OpaquePointer?
        var position: Int64 = 0
        var json: UnsafeMutablePointer<CChar>?
        let null = Outcome(
            status: SHARDSTORE_INVALID_ARGUMENT, message: "dataset is NULL; pass a dataset from shardstore_open")
        #expect(outcome { shardstore_get(nil, 0, &sample, &lease, $0) } == null)
        #expect(outcome { shardstore_position(nil, nil, 0, &position, $0) } == null)
        #expect(outcome { shardstore_splits_json(nil, &json, $0) } == null)
        #expect(outcome { shardstore_metadata_json(nil, &json, $0) } == null)
        #expect(outcome { shardstore_storage_order(nil, &position, 1, $0) } == null)
        #expect(outcome { shardstore_info(nil, nil, $0) } == null)
        #expect(outcome { shardstore_get_batch(nil, &position, 1, &sample, &lease, $0) } == null)
        #expect(shardstore_count(nil) == -1)
        #expect(
            outcome { shardstore_get(dataset, 0, nil, &lease, $0) }
                == Outcome(
                    status: SHARDSTORE_INVALID_ARGUMENT, message: "sample is NULL; pass where to store the result"))
        #expect(
            outcome { shardstore_get(dataset, 0, &sample, nil, $0) }
                == Outcome(
                    status: SHARDSTORE_INVALID_ARGUMENT, message: "lease is NULL; pass where to store the result"))
        #expect(
            outcome { shardstore_open(nil, nil, &lease, $0) }
                == Outcome(
                    status: SHARDSTORE_INVALID_ARGUMENT, message: "index_path is NULL; pass the index file's path"))
        #expect(
            outcome { shardstore_position(dataset, nil, 3, &position, $0) }
                == Outcome(status: SHARDSTORE_INVALID_ARGUMENT, message: "key is NULL but key_length is 3"))
        #expect(outcome { shardstore_position(dataset, nil, 0, nil, $0) }.status == SHARDSTORE_INVALID_ARGUMENT)
        #expect(outcome { shardstore_splits_json(dataset, nil, $0) }.status == SHARDSTORE_INVALID_ARGUMENT)
        #expect(
            outcome { shardstore_get_batch(dataset, nil, 2, &sample, &lease, $0) }.status == SHARDSTORE_INVALID_ARGUMENT
        )
        // Without an error slot, only the status.
        #expect(shardstore_get(dataset, -1, &sample, &lease, nil) == SHARDSTORE_OUT_OF_RANGE)
        // NULL is ignored where the header says so.
        shardstore_close(nil)
        shardstore_lease_release(nil)
        shardstore_string_free(nil)
    }

    @Test func batchesReadEveryPositionUnderOneLease() throws {
        let (dataset, _) = open(fixture.index, OpenOptions(strategy: "pread", split: "train"))
        defer { shardstore_close(dataset) }
        let expected = fixture.expected(split: "train")
        let positions: [Int64] = [6, 0, 3, 3, 6, 1]
        var samples = [shardstore_sample](repeating: shardstore_sample(), count: positions.count)
        var lease: OpaquePointer?
        #expect(outcome { shardstore_get_batch(dataset, positions, positions.count, &samples, &lease, $0) } == .ok)
        let read = samples.map(copy)
        shardstore_lease_release(lease)
        #expect(read.map(\.position) == positions)
        for (r, p) in zip(read, positions) {
            #expect(r.key == expected[Int(p)].key)
            #expect(r.members == expected[Int(p)].members)
            #expect(r.index == Int64(fixture.globalIndex(of: r.key)))
        }

        // A failure names the item and the position, and leases nothing.
        var untouched: OpaquePointer? = OpaquePointer(bitPattern: 0x1234)
        #expect(
            outcome { shardstore_get_batch(dataset, [1, 2, 7], 3, &samples, &untouched, $0) }
                == Outcome(
                    status: SHARDSTORE_OUT_OF_RANGE,
                    message:
                        "batch item 2 (position 7): index 7 is out of range: split 'train' has 7 samples (valid: 0 to 6)"
                ))
        #expect(untouched == OpaquePointer(bitPattern: 0x1234))
        // An empty batch leases nothing.
        #expect(outcome { shardstore_get_batch(dataset, nil, 0, nil, &untouched, $0) } == .ok)
        #expect(untouched == nil)
    }

    @Test(arguments: ["memory", "mmap", "pread"])
    func leasesOutliveTheDataset(strategy: String) throws {
        let (dataset, _) = open(fixture.index, OpenOptions(strategy: strategy))
        var sample = shardstore_sample()
        var lease: OpaquePointer?
        #expect(outcome { shardstore_get(dataset, 6, &sample, &lease, $0) } == .ok)
        var batch = [shardstore_sample](repeating: shardstore_sample(), count: 2)
        var batchLease: OpaquePointer?
        #expect(outcome { shardstore_get_batch(dataset, [9, 10], 2, &batch, &batchLease, $0) } == .ok)
        shardstore_close(dataset)
        #expect(copy(sample).members == fixture.samples[6].members)
        #expect(copy(sample).key == fixture.samples[6].key)
        #expect(batch.map { copy($0).key } == [fixture.samples[9].key, fixture.samples[10].key])
        #expect(copy(batch[1]).members == fixture.samples[10].members)
        shardstore_lease_release(lease)
        shardstore_lease_release(batchLease)
    }

    @Test(arguments: ["memory", "mmap", "pread"])
    func getIntoDescribesInTheCallersArraysAndReusesTheKeeper(strategy: String) throws {
        let (dataset, _) = open(fixture.index, OpenOptions(strategy: strategy))
        var members = [shardstore_member](repeating: shardstore_member(), count: 16)
        var text = [CChar](repeating: 0, count: 512)
        var keeper: OpaquePointer?
        var keepers: [OpaquePointer] = []
        var read: [(ReadSample, [UnsafeRawPointer?])] = []
        for position in 0..<Int64(fixture.samples.count) {
            var sample = shardstore_sample()
            let status = members.withUnsafeMutableBufferPointer { m in
                text.withUnsafeMutableBufferPointer { t in
                    outcome {
                        shardstore_get_into(
                            dataset, position, &sample, m.baseAddress, 16, t.baseAddress, 512, &keeper, $0)
                    }
                }
            }
            #expect(status == .ok)
            if let keeper, keepers.last != keeper { keepers.append(keeper) }
            let got = copy(sample)
            #expect(
                got.key == fixture.samples[Int(position)].key && got.members == fixture.samples[Int(position)].members)
            #expect(got.position == position && sample.members == members.withUnsafeBufferPointer { $0.baseAddress })
            read.append((copy(sample), (0..<sample.member_count).map { members[$0].data }))
        }
        switch strategy {
        case "memory": #expect(keepers.count == 1)  // the preload keeps every sample
        case "pread": #expect(keepers.count == read.filter { !$0.0.members.isEmpty }.count)  // a buffer each
        default: #expect(keepers.count >= 1 && keepers.count < read.count)  // a mapping per shard
        }
        // Every keeper taken still holds its samples' bytes, after the dataset is closed.
        shardstore_close(dataset)
        for (sample, pointers) in read {
            for (member, pointer) in zip(sample.members, pointers) where !member.bytes.isEmpty {
                #expect(Array(UnsafeRawBufferPointer(start: pointer, count: member.bytes.count)) == member.bytes)
            }
        }
        for keeper in keepers { shardstore_lease_release(keeper) }
    }

    @Test func getIntoSaysWhatASampleNeeds() throws {
        let (dataset, _) = open(fixture.index)
        defer { shardstore_close(dataset) }
        let expected = fixture.samples[5]
        let textBytes = expected.key.count + expected.members.reduce(0) { $0 + $1.ext.utf8.count + 1 }
        var members = [shardstore_member](repeating: shardstore_member(), count: 16)
        var text = [CChar](repeating: 0, count: 512)
        var sample = shardstore_sample()
        var keeper: OpaquePointer? = OpaquePointer(bitPattern: 0x1234)
        let tooFew = outcome {
            shardstore_get_into(dataset, 5, &sample, &members, expected.members.count - 1, &text, 512, &keeper, $0)
        }
        #expect(
            tooFew
                == Outcome(
                    status: SHARDSTORE_BUFFER_TOO_SMALL,
                    message: "sample 5 has \(expected.members.count) members and needs \(textBytes) bytes of text "
                        + "(key and extensions); the caller passed room for \(expected.members.count - 1) members "
                        + "and 512 bytes"))
        #expect(sample.member_count == expected.members.count && sample.key_length == expected.key.count)
        #expect(keeper == OpaquePointer(bitPattern: 0x1234))
        let tooShort = outcome {
            shardstore_get_into(dataset, 5, &sample, &members, 16, &text, textBytes - 1, &keeper, $0)
        }
        #expect(tooShort.status == SHARDSTORE_BUFFER_TOO_SMALL)
        #expect(keeper == OpaquePointer(bitPattern: 0x1234))
        // Exactly enough room.
        keeper = nil
        let exact = outcome {
            shardstore_get_into(dataset, 5, &sample, &members, expected.members.count, &text, textBytes, &keeper, $0)
        }
        #expect(exact == .ok)
        #expect(copy(sample).key == expected.key && copy(sample).members == expected.members)
        shardstore_lease_release(keeper)
        #expect(
            outcome { shardstore_get_into(dataset, 5, &sample, nil, 3, &text, 512, &keeper, $0) }
                == Outcome(status: SHARDSTORE_INVALID_ARGUMENT, message: "members is NULL but member_capacity is 3"))
        #expect(
            outcome { shardstore_get_into(dataset, 5, &sample, &members, 16, nil, 7, &keeper, $0) }
                == Outcome(status: SHARDSTORE_INVALID_ARGUMENT, message: "text is NULL but text_capacity is 7"))
        // NULL with no room: room for nothing, which a sample without members needs.
        #expect(
            outcome { shardstore_get_into(dataset, 5, &sample, nil, 0, &text, 512, &keeper, $0) }.status
                == SHARDSTORE_BUFFER_TOO_SMALL)
        let (segments, _) = open(fixture.index, OpenOptions(extensions: ["seg.png"]))
        defer { shardstore_close(segments) }
        keeper = nil
        #expect(outcome { shardstore_get_into(segments, 5, &sample, nil, 0, &text, 512, &keeper, $0) } == .ok)
        #expect(sample.member_count == 0 && sample.members == nil && keeper == nil)
        #expect(copy(sample).key == expected.key)
        #expect(
            outcome { shardstore_get_into(dataset, 5, &sample, &members, 16, &text, 512, nil, $0) }
                == Outcome(
                    status: SHARDSTORE_INVALID_ARGUMENT, message: "keeper is NULL; pass where to store the result"))
        #expect(
            outcome { shardstore_get_into(nil, 5, &sample, &members, 16, &text, 512, &keeper, $0) }
                == Outcome(
                    status: SHARDSTORE_INVALID_ARGUMENT, message: "dataset is NULL; pass a dataset from shardstore_open"
                ))
    }

    @Test func emptyMembersHaveNoPointer() throws {
        let (dataset, _) = open(fixture.index, OpenOptions(strategy: "mmap"))
        defer { shardstore_close(dataset) }
        var sample = shardstore_sample()
        var lease: OpaquePointer?
        #expect(outcome { shardstore_get(dataset, 3, &sample, &lease, $0) } == .ok)
        defer { shardstore_lease_release(lease) }
        #expect(sample.members[0].length == 0)
        #expect(sample.members[0].data == nil)
        // Extensions are NUL-terminated.
        #expect(String(cString: sample.members[0].ext) == "jpg")
        #expect(sample.members[0].ext[3] == 0)
    }

    @Test func storageOrder() throws {
        for split in [nil, "val", "train"] {
            let (dataset, _) = open(fixture.index, OpenOptions(split: split))
            defer { shardstore_close(dataset) }
            let count = Int(shardstore_count(dataset))
            var positions = [Int64](repeating: -1, count: count + 1)
            #expect(outcome { shardstore_storage_order(dataset, &positions, positions.count, $0) } == .ok)
            let swift = try Dataset(index: fixture.index, split: split).storageOrder().map(Int64.init)
            #expect(Array(positions[0..<count]) == swift)
            #expect(positions[0..<count].sorted() == (0..<Int64(count)).map { $0 })
            #expect(positions[count] == -1)
            #expect(
                outcome { shardstore_storage_order(dataset, &positions, count - 1, $0) }
                    == Outcome(
                        status: SHARDSTORE_BUFFER_TOO_SMALL,
                        message:
                            "positions holds \(count - 1) positions but the dataset has \(count) samples; pass an array of shardstore_count() positions"
                    ))
        }
    }

    @Test func splitsAndMetadataAsJSON() throws {
        let (dataset, _) = open(fixture.index, OpenOptions(split: "val"))
        defer { shardstore_close(dataset) }
        var json: UnsafeMutablePointer<CChar>?
        #expect(outcome { shardstore_splits_json(dataset, &json, $0) } == .ok)
        #expect(String(cString: json!) == "[{\"name\": \"train\", \"count\": 7}, {\"name\": \"val\", \"count\": 4}]")
        shardstore_string_free(json)
        #expect(outcome { shardstore_metadata_json(dataset, &json, $0) } == .ok)
        let text = String(cString: json!)
        shardstore_string_free(json)
        let parsed = try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
        #expect(parsed["description"] as? String == "a \"small\" fixture")
        #expect(parsed["classes"] as? [String] == ["a", "b", "c"])
        let stored = try IndexReader(path: fixture.index).metadata()
        #expect(Array(parsed.keys).sorted() == stored.map(\.key))
    }

    @Test func threadsShareADataset() throws {
        let (dataset, _) = open(fixture.index, OpenOptions(strategy: "pread", lookup: "statements"))
        defer { shardstore_close(dataset) }
        let expected = fixture.samples
        let address = Int(bitPattern: dataset)
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { t in
            let shared = OpaquePointer(bitPattern: address)
            for i in 0..<(expected.count * 5) {
                let p = (i * 7 + t * 3) % expected.count
                switch get(shared, Int64(p)) {
                case .success(let read):
                    if read.key != expected[p].key || read.members != expected[p].members {
                        failures.withLock { $0.append("thread \(t) position \(p): other bytes") }
                    }
                case .failure(let error):
                    failures.withLock { $0.append("thread \(t) position \(p): \(error.outcome)") }
                }
            }
        }
        #expect(failures.withLock { $0 } == [])
    }
}
