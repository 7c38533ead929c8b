import ShardCore

/// A sample with its own copy of its members' bytes: safe to keep, send and store.
///
/// ```swift
/// let sample = try dataset[0]
/// sample.key          // "000000"
/// sample["jpg"]       // the JPEG's bytes
/// sample.extensions   // ["cls", "jpg", "json"], in archive order
/// ```
public struct Sample: Sendable, Equatable {
    /// The key.
    public var key: SampleKey
    /// The dense global index in the index (equal to ``position`` without a split).
    public var index: Int
    /// The position in the dataset it was read from (a split position when the dataset is a split).
    public var position: Int
    /// The extensions of the members read, in archive order.
    public var extensions: [String]
    /// Each member's bytes by extension.
    public var members: [String: [UInt8]]

    public init(key: SampleKey, index: Int, position: Int, extensions: [String], members: [String: [UInt8]]) {
        self.key = key
        self.index = index
        self.position = position
        self.extensions = extensions
        self.members = members
    }

    /// The bytes of the member with extension `ext` (without the dot), or nil.
    public subscript(ext: String) -> [UInt8]? { members[ext] }
}

/// A sample whose members' bytes are views into the dataset's storage (a mapping, the preloaded
/// RAM, or a read buffer), without copying.
///
/// **Lifetime:** a view, its ``keyBytes`` and every member's `bytes` are valid only inside the
/// closure that received them (``Dataset/withSample(at:_:)``, ``Dataset/forEachSample(_:)``); do
/// not store them or let them escape. Copy what you keep: ``copy()``, `Array(member.bytes)`.
///
/// ```swift
/// let length = try dataset.withSample(at: 7) { view in
///     view["jpg"]?.count ?? 0
/// }
/// ```
public struct SampleView: RandomAccessCollection {
    /// One member: its extension and a view of its bytes.
    public struct Member {
        /// The extension, without the dot (`jpg`, `seg.png`).
        public let ext: String
        /// The member's bytes; valid only inside the closure the view was passed to.
        public let bytes: UnsafeRawBufferPointer
    }

    /// The position in the dataset (a split position when the dataset is a split).
    public let position: Int
    /// The dense global index in the index.
    public let index: Int
    /// The key's exact bytes.
    public let keyBytes: UnsafeRawBufferPointer
    let rows: UnsafeBufferPointer<PackedMember>
    let pointers: UnsafeBufferPointer<UnsafeRawPointer?>
    let lengths: UnsafeBufferPointer<Int>
    let names: [String]

    /// The key.
    public var key: SampleKey { SampleKey(bytes: Array(keyBytes)) }

    public var startIndex: Int { 0 }
    public var endIndex: Int { rows.count }

    /// Member `i`, in archive order.
    public subscript(i: Int) -> Member {
        Member(ext: names[rows[i].ext], bytes: UnsafeRawBufferPointer(start: pointers[i], count: lengths[i]))
    }

    /// The bytes of the member with extension `ext` (without the dot), or nil.
    ///
    /// - Complexity: O(members).
    public subscript(ext: String) -> UnsafeRawBufferPointer? {
        for i in 0..<rows.count where names[rows[i].ext] == ext {
            return UnsafeRawBufferPointer(start: pointers[i], count: lengths[i])
        }
        return nil
    }

    /// The extensions, in archive order.
    public var extensions: [String] { rows.map { names[$0.ext] } }

    /// The total bytes of the members.
    public var byteCount: Int { lengths.reduce(0, +) }

    /// A ``Sample`` with its own copy of the bytes.
    ///
    /// - Complexity: O(bytes).
    public func copy() -> Sample {
        var members: [String: [UInt8]] = [:]
        for m in self { members[m.ext] = Array(m.bytes) }
        return Sample(key: key, index: index, position: position, extensions: extensions, members: members)
    }
}
