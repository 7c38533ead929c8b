import Foundation
import ShardStore
import ShardTestSupport
import Testing

/// Batches of remote samples fetched together (`Dataset.withSamples(at:requestsInFlight:_:)`, the
/// loader's batches), against the http test server, which counts the requests for each shard.
@Suite(.serialized) struct RemoteBatchTests {
    @Test func aBatchSendsOneRequestPerSampleAllTogetherAndReadsTheLocalBytes() throws {
        let served = try ServedShards()
        let expected = try served.expected()
        let dataset = try served.remote(cache: nil)
        let order = [11, 0, 5, 5, 7, 1, 10, 2, 3, 9, 4, 6, 8]
        let before = try served.requests()
        var seen: [Sample] = []
        try dataset.withSamples(at: order, requestsInFlight: 4) { seen.append($0.copy()) }
        #expect(seen.map(\.key) == order.map { expected[$0].key })
        #expect(seen.map(\.members) == order.map { expected[$0].members })
        // One request per distinct sample (sample 5 twice in the batch: fetched once).
        let sent = zip(try served.requests(), before).map { $0 - $1 }
        #expect(sent.reduce(0, +) == Set(order).count, "requests per shard: \(sent)")
        #expect(sent == [4, 4, 4])

        // One at a time: one request per read, the same bytes.
        var one: [Sample] = []
        try dataset.withSamples(at: order, requestsInFlight: 1) { one.append($0.copy()) }
        #expect(one.map(\.members) == seen.map(\.members))
    }

    @Test func theLoadersBatchesOverHTTPEqualTheLocalOnesAndOutliveTheirFetch() throws {
        let served = try ServedShards()
        let local = try Dataset(index: served.localIndex)
        let remote = try served.remote(cache: nil)
        var options = LoaderOptions(batchSize: 5)
        options.order = .shuffle
        options.seed = 3
        options.collate = .bytes
        func epoch(_ dataset: Dataset) throws -> [CollatedBatch] {
            let loader = try Loader(dataset, options: options)
            var batches: [CollatedBatch] = []
            while let batch = try loader.next() { batches.append(batch) }
            return batches
        }
        // Held after the loader and its fetches are gone: the leases keep the bytes.
        let batches = try epoch(remote)
        let expected = try epoch(local)
        #expect(batches.count == expected.count && batches.count == 3)
        for (got, want) in zip(batches, expected) {
            #expect((0..<got.count).map(got.position) == (0..<want.count).map(want.position))
            #expect(got.columns.map(\.ext) == want.columns.map(\.ext))
            for (a, b) in zip(got.columns, want.columns) {
                #expect(
                    (0..<got.count).map { a.member($0).map(Array.init) }
                        == (0..<want.count).map { b.member($0).map(Array.init) })
            }
        }
    }

    @Test func aReplacedObjectInABatchIsRefusedAsChanged() throws {
        let served = try ServedShards()
        let expected = try served.expected()
        let dataset = try served.remote(cache: nil)
        // shard-1 (samples 4 to 7) replaced by other bytes of the same size.
        var bytes = try served.shardBytes("shard-1.tar")
        bytes[600] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: served.files + "/shard-1.tar"))
        var seen: [Sample] = []
        #expect(throws: ShardChangedError.self) {
            try dataset.withSamples(at: [0, 1, 4, 2], requestsInFlight: 8) { seen.append($0.copy()) }
        }
        // The samples before it came out with their bytes; none of shard-1's did.
        #expect(seen.map(\.members) == [expected[0].members, expected[1].members])
    }
}
