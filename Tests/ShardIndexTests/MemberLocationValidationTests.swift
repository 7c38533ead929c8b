import ShardIndex
import Testing

@Suite("MemberLocation.defect: index rows checked before any read")
struct MemberLocationValidationTests {
    func defect(_ header: Int64, _ data: Int64, _ length: Int64, shardSize: Int64?) -> String? {
        MemberLocation(shardID: 1, headerOffset: header, dataOffset: data, length: length)
            .defect(shardSize: shardSize)?.description
    }

    @Test("rows ingest writes pass, with and without pax or long-name blocks, empty members, up to the shard's end")
    func valid() {
        #expect(defect(0, 512, 100, shardSize: 1024) == nil)
        #expect(defect(0, 1536, 0, shardSize: 1536) == nil)
        #expect(defect(1024, 1536, 512, shardSize: 2048) == nil)
    }

    @Test("each defect names the column and the value")
    func defects() {
        #expect(defect(0, 512, 5, shardSize: nil) == "shard_id 1 names a shard the index does not list")
        #expect(defect(0, 513, 5, shardSize: 4096) == "data_offset 513 is not a positive multiple of 512")
        #expect(defect(0, 0, 5, shardSize: 4096) == "data_offset 0 is not a positive multiple of 512")
        #expect(defect(-512, 1024, 5, shardSize: 4096) == "header_offset -512 is negative or not a multiple of 512")
        #expect(defect(100, 1024, 5, shardSize: 4096) == "header_offset 100 is negative or not a multiple of 512")
        #expect(
            defect(1024, 1024, 5, shardSize: 4096)
                == "header_offset 1024 is not at least one block before data_offset 1024")
        #expect(defect(0, 512, -5, shardSize: 4096) == "length -5 is negative")
        #expect(
            defect(0, 512, 4000, shardSize: 4096)
                == "length 4000 from data_offset 512 ends past the shard's 4096 bytes recorded at ingest")
    }

    @Test("extreme values are defects, never an overflow trap (found by the index-row fuzz harness)")
    func extremes() {
        // A damaged, negative shard size: `shardSize - dataOffset` used to overflow and trap.
        #expect(
            defect(0, 512, 5, shardSize: Int64.min)
                == "length 5 from data_offset 512 ends past the shard's \(Int64.min) bytes recorded at ingest")
        let last = Int64.max & ~511
        #expect(
            defect(0, last, Int64.max, shardSize: Int64.max)
                == "length \(Int64.max) from data_offset \(last) ends past the shard's \(Int64.max) bytes recorded at ingest"
        )
        #expect(
            defect(Int64.min, 512, 0, shardSize: 4096)
                == "header_offset \(Int64.min) is negative or not a multiple of 512")
    }
}
