import Testing

@testable import ShardCore

/// A sample for the collator: members as (ext, bytes), copied to memory it owns.
final class FakeSample: CollatableSample {
    let position: Int
    private let members: [(String, [UInt8])]
    /// The key's bytes, then each member's, each at a stable address.
    private let buffers: [UnsafeMutableRawBufferPointer]
    private let lengths: [Int]

    init(_ position: Int, _ key: String, _ members: [(String, [UInt8])]) {
        self.position = position
        self.members = members
        let all = [Array(key.utf8)] + members.map(\.1)
        lengths = all.map(\.count)
        buffers = all.map { bytes in
            let b = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 1)
            b.copyBytes(from: bytes)
            return b
        }
    }

    deinit { for b in buffers { b.deallocate() } }

    private func buffer(_ i: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffers[i])[0..<lengths[i]])
    }

    var keyBytes: UnsafeRawBufferPointer { buffer(0) }
    var count: Int { members.count }
    func ext(_ i: Int) -> String { members[i].0 }
    func bytes(_ i: Int) -> UnsafeRawBufferPointer { buffer(i + 1) }
}

@Suite("Batch collation: stacked npy, int64 labels, bytes with offsets")
struct BatchCollationTests {
    static func f4(_ values: [Float], shape: String = "(2,)", bigEndian: Bool = false) -> [UInt8] {
        var data: [UInt8] = []
        for v in values {
            let bytes = (0..<4).map { UInt8(truncatingIfNeeded: v.bitPattern >> (8 * $0)) }
            data += bigEndian ? bytes.reversed() : bytes
        }
        return npyMember(header: npyDict(bigEndian ? ">f4" : "<f4", shape: shape), data: data)
    }

    @Test("npy of one dtype and shape stack (big-endian normalised); cls become Int64; keys and positions")
    func native() throws {
        let samples = [
            FakeSample(4, "a", [("npy", Self.f4([1, 2])), ("cls", Array(" 3\n".utf8)), ("txt", Array("x".utf8))]),
            FakeSample(9, "bb", [("npy", Self.f4([3, 4], bigEndian: true)), ("cls", Array("-12".utf8))]),
        ]
        let batch = BatchCollator.collate(samples, mode: .native)
        #expect(batch.count == 2)
        #expect(batch.position(0) == 4 && batch.position(1) == 9)
        #expect(batch.key(1) == SampleKey("bb"))
        #expect(batch.columns.map(\.ext) == ["npy", "cls", "txt"])
        let npy = try #require(batch.column("npy"))
        #expect(npy.layout == .stacked(dtype: try NPYDType(descr: "<f4"), shape: [2, 2]))
        #expect(Array(npy.data.typed(Float.self)) == [1, 2, 3, 4])
        let cls = try #require(batch.column("cls"))
        #expect(cls.layout == .labels)
        #expect(cls.label(0) == 3 && cls.label(1) == -12)
        let txt = try #require(batch.column("txt"))
        #expect(txt.layout == .bytes)
        #expect(txt.member(0).map(Array.init) == Array("x".utf8))
        #expect(txt.member(1) == nil)
        #expect(Array(txt.offsets.typed(Int64.self)) == [0, 1, 1])
        #expect(Array(txt.present.bytes) == [1, 0])
        #expect(Int(bitPattern: npy.data.bytes.baseAddress!) % 64 == 0)
    }

    @Test("what cannot stack or parse stays bytes: shapes differ, a member missing, not an integer, bytes mode")
    func fallbacks() throws {
        let shapes = [
            FakeSample(0, "a", [("seg.npy", Self.f4([1, 2])), ("cls", Array("1".utf8))]),
            FakeSample(1, "b", [("seg.npy", Self.f4([1, 2, 3], shape: "(3,)")), ("cls", Array("1.5".utf8))]),
        ]
        let batch = BatchCollator.collate(shapes, mode: .native)
        #expect(batch.column("seg.npy")?.layout == .bytes)
        #expect(batch.column("seg.npy")?.member(1).map(Array.init) == Self.f4([1, 2, 3], shape: "(3,)"))
        #expect(batch.column("cls")?.layout == .bytes)
        let missing = [
            FakeSample(0, "a", [("npy", Self.f4([1, 2])), ("cls", Array("1".utf8))]),
            FakeSample(1, "b", [("jpg", [1])]),
        ]
        let partial = BatchCollator.collate(missing, mode: .native)
        #expect(partial.column("npy")?.layout == .bytes)
        #expect(partial.column("cls")?.layout == .bytes)
        #expect(partial.column("cls")?.member(1) == nil)
        let raw = BatchCollator.collate(shapes.prefix(1).map { $0 }, mode: .bytes)
        #expect(raw.columns.allSatisfy { $0.layout == .bytes })
        #expect(raw.column("seg.npy")?.member(0).map(Array.init) == Self.f4([1, 2]))
        let empty = BatchCollator.collate([FakeSample](), mode: .native)
        #expect(empty.count == 0 && empty.columns.isEmpty)
        #expect(Array(empty.keyOffsets.typed(Int64.self)) == [0])
    }

    @Test("integer labels: spaces and signs, and the limits of Int64")
    func integers() {
        func parse(_ text: String) -> Int64? {
            Array(text.utf8).withUnsafeBytes { BatchCollator.parseInteger($0) }
        }
        #expect(parse("7") == 7)
        #expect(parse(" +7 \n") == 7)
        #expect(parse("-9223372036854775808") == Int64.min)
        #expect(parse("9223372036854775807") == Int64.max)
        #expect(parse("9223372036854775808") == nil)
        #expect(parse("99999999999999999999999") == nil)
        for bad in ["", " ", "-", "1 2", "0x10", "1.0", "٣"] { #expect(parse(bad) == nil, "\(bad)") }
    }
}
