import CShardStoreABI
import ShardLoader

#if canImport(Glibc)
    import Glibc
#endif

/// What a `shardstore_lease *` points to: for each sample it covers, the object that keeps its
/// members' bytes alive (the preload's arenas, a mapping, or a read buffer; from
/// ``Dataset/withKeptSample(at:_:)``) and one `malloc` block describing it: its
/// `shardstore_member` array, then its key bytes, then its members' NUL-terminated extensions.
/// No ``SampleLease`` in between: a `shardstore_get` allocates this object and one block.
///
/// A lease from `shardstore_get_into` has a keeper and no block: the caller holds the description.
///
/// A lease released in another process than the one that took it (a child after `fork()`)
/// frees its blocks but leaks its Swift objects: they may hold the last reference to the
/// parent's dataset, whose SQLite connections must not be closed in the child.
final class LeaseHandle {
    /// One sample's keeper and block (nil: the description is the caller's).
    typealias Part = (keeper: AnyObject?, block: UnsafeMutableRawPointer?)

    private let pid: pid_t
    private let first: Part
    /// The batch's other samples.
    private let others: [Part]

    private init(first: Part, others: [Part]) {
        pid = shardstore_process_id()
        self.first = first
        self.others = others
    }

    deinit {
        free(first.block)
        for part in others { free(part.block) }
    }

    /// A lease on one part, or on a batch's parts (`parts[0]` first).
    ///
    /// - Precondition: `parts` is not empty.
    static func make(_ parts: [Part]) -> LeaseHandle {
        LeaseHandle(first: parts[0], others: Array(parts.dropFirst()))
    }

    /// A lease on one part.
    static func make(_ part: Part) -> LeaseHandle { LeaseHandle(first: part, others: []) }

    /// Whether the lease behind `pointer` (a ``make(_:)`` result) keeps exactly `keeper` and no
    /// block: what `shardstore_get_into` reuses instead of making a lease.
    static func keepsOnly(_ pointer: OpaquePointer, _ keeper: AnyObject) -> Bool {
        let handle = Unmanaged<LeaseHandle>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
        return handle.first.block == nil && handle.others.isEmpty && handle.first.keeper === keeper
    }

    /// Describes `view` in `sample` from a new block (its members, key and extensions) and
    /// returns that block with `keeper`, which keeps the members' bytes valid.
    ///
    /// - Throws: ``DatasetError`` (`.outOfMemory`) when the block cannot be allocated.
    /// - Complexity: O(members + key and extension bytes).
    static func describe(
        _ view: SampleView, keeper: AnyObject?, into sample: UnsafeMutablePointer<shardstore_sample>
    ) throws -> Part {
        let count = view.count
        let memberBytes = count * MemoryLayout<shardstore_member>.stride
        let size = memberBytes + textBytes(view)
        guard let block = malloc(max(size, 1)) else {
            throw DatasetError(
                .outOfMemory, "no memory for the lease's member list (\(size) bytes); release some leases")
        }
        fill(
            view, members: block.bindMemory(to: shardstore_member.self, capacity: count), text: block + memberBytes,
            into: sample)
        return (keeper, block)
    }

    /// Describes `view` in `sample` in the caller's memory (`shardstore_get_into`): its members
    /// in `members[0 ..< memberCapacity]`, its key and extensions in `text[0 ..< textCapacity]`.
    ///
    /// A NULL array with a capacity of 0 is room for nothing.
    ///
    /// - Throws: ``DatasetError`` (`.invalidArgument`) for a NULL array with a capacity;
    ///   (`.bufferTooSmall`) when either is too small, with `sample.member_count` and
    ///   `sample.key_length` set to what the sample has.
    /// - Complexity: O(members + key and extension bytes).
    static func describe(
        _ view: SampleView, members: UnsafeMutablePointer<shardstore_member>?, memberCapacity: Int,
        text: UnsafeMutableRawPointer?, textCapacity: Int, into sample: UnsafeMutablePointer<shardstore_sample>
    ) throws {
        if members == nil, memberCapacity != 0 {
            throw DatasetError(.invalidArgument, "members is NULL but member_capacity is \(memberCapacity)")
        }
        if text == nil, textCapacity != 0 {
            throw DatasetError(.invalidArgument, "text is NULL but text_capacity is \(textCapacity)")
        }
        let needed = textBytes(view)
        guard view.count <= memberCapacity, needed <= textCapacity, let text else {
            sample.pointee = shardstore_sample(
                key: nil, key_length: view.keyBytes.count, position: Int64(view.position), index: Int64(view.index),
                members: nil, member_count: view.count)
            throw DatasetError(
                .bufferTooSmall,
                "sample \(view.position) has \(view.count) members and needs \(needed) bytes of text (key and "
                    + "extensions); the caller passed room for \(memberCapacity) members and \(textCapacity) bytes")
        }
        fill(view, members: members, text: text, into: sample)
    }

    /// The bytes of `view`'s key and NUL-terminated extensions.
    private static func textBytes(_ view: SampleView) -> Int {
        var size = view.keyBytes.count
        for i in 0..<view.count { size += view[i].ext.utf8.count + 1 }
        return size
    }

    /// Writes `view`'s members to `members` and its key and extensions to `text` (room checked
    /// by the caller; `members` is nil only for a sample without members), and the sample to
    /// `sample`.
    private static func fill(
        _ view: SampleView, members table: UnsafeMutablePointer<shardstore_member>?, text: UnsafeMutableRawPointer,
        into sample: UnsafeMutablePointer<shardstore_sample>
    ) {
        let count = view.count
        let key = view.keyBytes
        var at = text
        if let start = key.baseAddress { at.copyMemory(from: start, byteCount: key.count) }
        sample.pointee = shardstore_sample(
            key: UnsafePointer(at.assumingMemoryBound(to: UInt8.self)), key_length: key.count,
            position: Int64(view.position), index: Int64(view.index), members: table, member_count: count)
        at += key.count
        for i in 0..<count {
            let member = view[i]
            var ext = member.ext
            let length = ext.withUTF8 { utf8 in
                if let start = utf8.baseAddress { at.copyMemory(from: start, byteCount: utf8.count) }
                at.storeBytes(of: 0, toByteOffset: utf8.count, as: UInt8.self)
                return utf8.count
            }
            (table! + i).initialize(
                to: shardstore_member(
                    ext: UnsafePointer(at.assumingMemoryBound(to: CChar.self)), ext_length: length,
                    data: member.bytes.isEmpty ? nil : member.bytes.baseAddress, length: UInt64(member.bytes.count)))
            at += length + 1
        }
    }

    /// Releases the lease behind `pointer` (a ``make(_:)`` result, passed retained).
    static func release(_ pointer: OpaquePointer) {
        let lease = Unmanaged<LeaseHandle>.fromOpaque(UnsafeRawPointer(pointer))
        let handle = lease.takeUnretainedValue()
        if handle.pid == shardstore_process_id() {
            lease.release()
        } else {
            // Taken before a fork: free the blocks, keep the Swift objects (see the type's comment).
            free(handle.first.block)
            for part in handle.others { free(part.block) }
        }
    }
}
