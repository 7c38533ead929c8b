#if canImport(Glibc)
    import Glibc
#endif

/// How a batch's members are collated.
///
/// - `native`: `.npy` members (extension `npy` or ending in `.npy`) of one dtype and shape in
///   every sample are stacked into one C-order, little-endian array (batch, ...); `.cls` members
///   (`cls` or ending in `.cls`) that are all integers become one `Int64` per sample; every other
///   extension, and any of those two that does not qualify in this batch, stays bytes.
/// - `bytes`: every extension stays the members' raw bytes.
public enum CollateMode: String, Sendable, Equatable, CaseIterable {
    case native
    case bytes
}

/// Memory that outlives the code that filled it: 64-byte aligned (so numpy and torch may view it
/// as any dtype), freed with the object. Holders of its pointer keep the object alive.
public final class AlignedBytes: @unchecked Sendable {
    /// The bytes; `count` may be 0 (the pointer is then still valid and unique).
    public let bytes: UnsafeMutableRawBufferPointer

    /// `count` bytes, uninitialized.
    public init(count: Int) {
        let base = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 64)
        bytes = UnsafeMutableRawBufferPointer(start: base, count: count)
    }

    /// `values` copied into new aligned memory.
    public convenience init<T>(copying values: [T]) {
        self.init(count: values.count * MemoryLayout<T>.stride)
        values.withUnsafeBytes { source in
            if let s = source.baseAddress { bytes.baseAddress!.copyMemory(from: s, byteCount: source.count) }
        }
    }

    deinit { bytes.baseAddress?.deallocate() }

    /// The bytes as `count / stride` values of `T`.
    public func typed<T>(_: T.Type) -> UnsafeBufferPointer<T> {
        UnsafeBufferPointer(
            start: UnsafeRawPointer(bytes.baseAddress!).assumingMemoryBound(to: T.self),
            count: bytes.count / MemoryLayout<T>.stride)
    }
}

/// One extension of a collated batch.
public struct CollatedColumn: Sendable {
    /// How `data` is laid out.
    public enum Layout: Sendable, Equatable, CustomStringConvertible {
        /// One array of `dtype` (little-endian) and `shape` (the batch first), C order.
        case stacked(dtype: NPYDType, shape: [Int])
        /// One `Int64` per sample (native byte order, as every Int64 array here).
        case labels
        /// The members back to back; sample i's is `offsets[i] ..< offsets[i + 1]`, and `present[i]`
        /// says whether it had one (a missing member has an empty range).
        case bytes

        public var description: String {
            switch self {
            case .stacked(let dtype, let shape): return "\(dtype.name) \(NPYHeader.shapeText(shape))"
            case .labels: return "int64 labels"
            case .bytes: return "bytes"
            }
        }
    }

    /// The extension, without the dot (`jpg`, `seg.npy`).
    public let ext: String
    public let layout: Layout
    /// The data: the stacked array, the labels, or the members' bytes.
    public let data: AlignedBytes
    /// For `.bytes`: `count + 1` offsets into `data` (Int64). Empty otherwise.
    public let offsets: AlignedBytes
    /// For `.bytes`: one byte per sample, 1 when it has the member. Empty otherwise.
    public let present: AlignedBytes

    /// Sample `i`'s member bytes in a `.bytes` column (nil when it has none).
    public func member(_ i: Int) -> UnsafeRawBufferPointer? {
        guard layout == .bytes, present.bytes[i] != 0 else { return nil }
        let o = offsets.typed(Int64.self)
        return UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(data.bytes)[Int(o[i])..<Int(o[i + 1])])
    }

    /// Sample `i`'s label in a `.labels` column.
    public func label(_ i: Int) -> Int64 { data.typed(Int64.self)[i] }
}

/// A batch collated into contiguous arrays: positions, keys, and one column per extension.
public struct CollatedBatch: Sendable {
    /// The number of samples.
    public let count: Int
    /// Each sample's position in its dataset (Int64).
    public let positions: AlignedBytes
    /// The keys back to back; key i is `keyOffsets[i] ..< keyOffsets[i + 1]` (Int64 offsets).
    public let keyBytes: AlignedBytes
    public let keyOffsets: AlignedBytes
    /// One column per extension, in the order the extensions first appear in the batch.
    public let columns: [CollatedColumn]

    /// The position of sample `i`.
    public func position(_ i: Int) -> Int { Int(positions.typed(Int64.self)[i]) }

    /// The key of sample `i`.
    public func key(_ i: Int) -> SampleKey {
        let o = keyOffsets.typed(Int64.self)
        return SampleKey(
            bytes: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(keyBytes.bytes)[Int(o[i])..<Int(o[i + 1])]))
    }

    /// The column of extension `ext`, if any sample has it.
    public func column(_ ext: String) -> CollatedColumn? { columns.first { $0.ext == ext } }
}

/// A sample as the collator reads it: its position, key, and members in archive order.
public protocol CollatableSample {
    var position: Int { get }
    var keyBytes: UnsafeRawBufferPointer { get }
    /// The number of members.
    var count: Int { get }
    func ext(_ i: Int) -> String
    func bytes(_ i: Int) -> UnsafeRawBufferPointer
}

/// Collates samples into a ``CollatedBatch``.
///
/// ```swift
/// let batch = BatchCollator.collate(leases, mode: .native)
/// batch.column("npy")?.layout   // .stacked(dtype: float32, shape: [256, 3, 4])
/// ```
public enum BatchCollator {
    /// The batch of `samples`, collated by `mode`. Each member's bytes are copied once.
    ///
    /// - Complexity: O(samples × members + bytes).
    public static func collate<S: CollatableSample>(_ samples: [S], mode: CollateMode) -> CollatedBatch {
        let n = samples.count
        // Extensions in first-seen order, and for each sample the member index of each (-1: none).
        var order: [String] = []
        var slot: [String: Int] = [:]
        var memberOf: [[Int]] = []  // [extension][sample]
        for (s, sample) in samples.enumerated() {
            for m in 0..<sample.count {
                let ext = sample.ext(m)
                let e: Int
                if let found = slot[ext] {
                    e = found
                } else {
                    e = order.count
                    slot[ext] = e
                    order.append(ext)
                    memberOf.append([Int](repeating: -1, count: n))
                }
                if memberOf[e][s] < 0 { memberOf[e][s] = m }
            }
        }
        var columns: [CollatedColumn] = []
        columns.reserveCapacity(order.count)
        for (e, ext) in order.enumerated() {
            let members = memberOf[e]
            if mode == .native, members.allSatisfy({ $0 >= 0 }) {
                if Self.isKind(ext, "npy"), let column = stacked(ext, samples, members) {
                    columns.append(column)
                    continue
                }
                if Self.isKind(ext, "cls"), let column = labels(ext, samples, members) {
                    columns.append(column)
                    continue
                }
            }
            columns.append(bytes(ext, samples, members))
        }
        var keyTotal = 0
        for sample in samples { keyTotal += sample.keyBytes.count }
        let keyBytes = AlignedBytes(count: keyTotal)
        let keyOffsets = AlignedBytes(count: (n + 1) * 8)
        let positions = AlignedBytes(count: n * 8)
        var at = 0
        for (s, sample) in samples.enumerated() {
            keyOffsets.bytes.storeBytes(of: Int64(at), toByteOffset: s * 8, as: Int64.self)
            if let source = sample.keyBytes.baseAddress, sample.keyBytes.count > 0 {
                (keyBytes.bytes.baseAddress! + at).copyMemory(from: source, byteCount: sample.keyBytes.count)
            }
            at += sample.keyBytes.count
            positions.bytes.storeBytes(of: Int64(sample.position), toByteOffset: s * 8, as: Int64.self)
        }
        keyOffsets.bytes.storeBytes(of: Int64(at), toByteOffset: n * 8, as: Int64.self)
        return CollatedBatch(
            count: n, positions: positions, keyBytes: keyBytes, keyOffsets: keyOffsets, columns: columns)
    }

    /// Whether `ext` is `kind` (`npy`) or ends in `.kind` (`seg.npy`), in any case.
    static func isKind(_ ext: String, _ kind: String) -> Bool {
        let lower = ext.lowercased()
        return lower == kind || lower.hasSuffix("." + kind)
    }

    private static let empty = AlignedBytes(count: 0)

    /// The members stacked, when every one is an NPY array of the same dtype and shape.
    private static func stacked<S: CollatableSample>(_ ext: String, _ samples: [S], _ members: [Int]) -> CollatedColumn?
    {
        var headers: [NPYHeader] = []
        headers.reserveCapacity(samples.count)
        for (s, sample) in samples.enumerated() {
            guard let header = try? NPYHeader(parsing: sample.bytes(members[s])) else { return nil }
            if let first = headers.first,
                first.dtype.littleEndian != header.dtype.littleEndian || first.shape != header.shape
            {
                return nil
            }
            headers.append(header)
        }
        guard let first = headers.first else { return nil }
        let each = first.dataByteCount
        let (total, overflow) = each.multipliedReportingOverflow(by: samples.count)
        guard !overflow else { return nil }
        let data = AlignedBytes(count: total)
        for (s, sample) in samples.enumerated() {
            headers[s].copyElements(of: sample.bytes(members[s]), to: data.bytes.baseAddress! + s * each)
        }
        return CollatedColumn(
            ext: ext, layout: .stacked(dtype: first.dtype.littleEndian, shape: [samples.count] + first.shape),
            data: data, offsets: empty, present: empty)
    }

    /// One Int64 per sample, when every member is a decimal integer (ASCII, spaces around allowed).
    private static func labels<S: CollatableSample>(_ ext: String, _ samples: [S], _ members: [Int]) -> CollatedColumn?
    {
        let data = AlignedBytes(count: samples.count * 8)
        for (s, sample) in samples.enumerated() {
            guard let value = parseInteger(sample.bytes(members[s])) else { return nil }
            data.bytes.storeBytes(of: value, toByteOffset: s * 8, as: Int64.self)
        }
        return CollatedColumn(ext: ext, layout: .labels, data: data, offsets: empty, present: empty)
    }

    /// `[ \t\r\n]* [+-]? [0-9]+ [ \t\r\n]*` as an Int64, or nil.
    static func parseInteger(_ bytes: UnsafeRawBufferPointer) -> Int64? {
        var i = 0
        let n = bytes.count
        func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }
        while i < n, isSpace(bytes[i]) { i += 1 }
        var negative = false
        if i < n, bytes[i] == UInt8(ascii: "-") || bytes[i] == UInt8(ascii: "+") {
            negative = bytes[i] == UInt8(ascii: "-")
            i += 1
        }
        let digitsStart = i
        var magnitude: UInt64 = 0
        while i < n, bytes[i] >= 0x30, bytes[i] <= 0x39 {
            let (times, o1) = magnitude.multipliedReportingOverflow(by: 10)
            let (plus, o2) = times.addingReportingOverflow(UInt64(bytes[i] - 0x30))
            guard !o1, !o2 else { return nil }
            magnitude = plus
            i += 1
        }
        guard i > digitsStart else { return nil }
        while i < n, isSpace(bytes[i]) { i += 1 }
        guard i == n else { return nil }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { return nil }
            return magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { return nil }
        return Int64(magnitude)
    }

    /// The members back to back, with offsets and presence.
    private static func bytes<S: CollatableSample>(_ ext: String, _ samples: [S], _ members: [Int]) -> CollatedColumn {
        var total = 0
        for (s, sample) in samples.enumerated() where members[s] >= 0 { total += sample.bytes(members[s]).count }
        let data = AlignedBytes(count: total)
        let offsets = AlignedBytes(count: (samples.count + 1) * 8)
        let present = AlignedBytes(count: samples.count)
        var at = 0
        for (s, sample) in samples.enumerated() {
            offsets.bytes.storeBytes(of: Int64(at), toByteOffset: s * 8, as: Int64.self)
            if members[s] >= 0 {
                let member = sample.bytes(members[s])
                if let source = member.baseAddress, member.count > 0 {
                    (data.bytes.baseAddress! + at).copyMemory(from: source, byteCount: member.count)
                }
                at += member.count
                present.bytes[s] = 1
            } else {
                present.bytes[s] = 0
            }
        }
        offsets.bytes.storeBytes(of: Int64(at), toByteOffset: samples.count * 8, as: Int64.self)
        return CollatedColumn(ext: ext, layout: .bytes, data: data, offsets: offsets, present: present)
    }
}
