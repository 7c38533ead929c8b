import CShardStoreABI
import ShardLoader

#if canImport(Glibc)
    import Glibc
#endif

/// What a `shardstore_lease *` points to: the ``SampleLease``s that keep one or more samples'
/// bytes alive, and one `malloc` block with their `shardstore_member` arrays followed by the
/// members' NUL-terminated extensions.
///
/// A lease released in another process than the one that took it (a child after `fork()`)
/// frees its block but leaks its Swift objects: they may hold the last reference to the parent's
/// dataset, whose SQLite connections must not be closed in the child.
final class LeaseHandle {
    private let pid: pid_t
    private let first: SampleLease
    private let others: [SampleLease]
    private let block: UnsafeMutableRawPointer

    private init(first: SampleLease, others: [SampleLease], block: UnsafeMutableRawPointer) {
        pid = getpid()
        self.first = first
        self.others = others
        self.block = block
    }

    deinit { free(block) }

    /// A lease on `first` and `others`, describing sample `i` of them in `samples[i]`.
    ///
    /// - Throws: ``DatasetError`` (`.outOfMemory`) when the block cannot be allocated.
    /// - Complexity: O(members + extension bytes).
    static func make(
        first: SampleLease, others: [SampleLease], into samples: UnsafeMutablePointer<shardstore_sample>
    ) throws -> LeaseHandle {
        var members = first.count
        var text = textBytes(first)
        for lease in others {
            members += lease.count
            text += textBytes(lease)
        }
        let memberBytes = members * MemoryLayout<shardstore_member>.stride
        guard let block = malloc(max(memberBytes + text, 1)) else {
            throw DatasetError(
                .outOfMemory, "no memory for the lease's member list (\(memberBytes + text) bytes); release some leases"
            )
        }
        let table = block.bindMemory(to: shardstore_member.self, capacity: members)
        var member = 0
        var textAt = block + memberBytes
        func describe(_ lease: SampleLease, _ sample: UnsafeMutablePointer<shardstore_sample>) {
            let key = lease.keyBytes
            sample.pointee = shardstore_sample(
                key: key.baseAddress?.assumingMemoryBound(to: UInt8.self), key_length: key.count,
                position: Int64(lease.position), index: Int64(lease.index), members: table + member,
                member_count: lease.count)
            for i in 0..<lease.count {
                var ext = lease.ext(i)
                let length = ext.withUTF8 { utf8 in
                    if let start = utf8.baseAddress { textAt.copyMemory(from: start, byteCount: utf8.count) }
                    textAt.storeBytes(of: 0, toByteOffset: utf8.count, as: UInt8.self)
                    return utf8.count
                }
                let bytes = lease.bytes(i)
                (table + member).initialize(
                    to: shardstore_member(
                        ext: UnsafePointer(textAt.assumingMemoryBound(to: CChar.self)), ext_length: length,
                        data: bytes.isEmpty ? nil : bytes.baseAddress, length: UInt64(bytes.count)))
                textAt += length + 1
                member += 1
            }
        }
        describe(first, samples)
        for (i, lease) in others.enumerated() { describe(lease, samples + 1 + i) }
        return LeaseHandle(first: first, others: others, block: block)
    }

    /// Releases the lease behind `pointer` (from ``make(first:others:into:)``, passed retained).
    static func release(_ pointer: OpaquePointer) {
        let lease = Unmanaged<LeaseHandle>.fromOpaque(UnsafeRawPointer(pointer))
        if lease.takeUnretainedValue().pid == getpid() {
            lease.release()
        } else {
            // Taken before a fork: free the block, keep the Swift objects (see the type's comment).
            free(lease.takeUnretainedValue().block)
        }
    }

    /// The bytes of `lease`'s extensions, each with its NUL.
    private static func textBytes(_ lease: SampleLease) -> Int {
        var total = 0
        for i in 0..<lease.count { total += lease.ext(i).utf8.count + 1 }
        return total
    }
}
