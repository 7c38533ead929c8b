// TEMPORARY: stands in for ShardLoader's `SampleLease`, `Dataset.lease(at:)` and
// `Dataset.reopenedAfterFork()` until they land on main; the lead deletes this file at merge.
// It copies every sample into a buffer of its own (the real lease keeps the mapping or preload
// alive instead) and reopens the index from scratch after a fork (the real one shares the
// read-only memory).

import ShardLoader

/// TEMPORARY (see the top of this file): a sample's key and member bytes in a buffer it owns.
public final class SampleLease: @unchecked Sendable {
    public let position: Int
    public let index: Int
    private let buffer: UnsafeMutableRawBufferPointer
    private let keyCount: Int
    private let extensions: [String]
    /// Each member's start in `buffer` (after the key), and one past the last.
    private let starts: [Int]

    init(_ view: SampleView) {
        position = view.position
        index = view.index
        keyCount = view.keyBytes.count
        var starts = [keyCount]
        for member in view { starts.append(starts.last! + member.bytes.count) }
        self.starts = starts
        extensions = view.extensions
        buffer = .allocate(byteCount: max(starts.last!, 1), alignment: 16)
        buffer.baseAddress!.copyMemory(
            from: view.keyBytes.baseAddress ?? UnsafeRawPointer(buffer.baseAddress!), byteCount: keyCount)
        for (i, member) in view.enumerated() where !member.bytes.isEmpty {
            (buffer.baseAddress! + starts[i]).copyMemory(from: member.bytes.baseAddress!, byteCount: member.bytes.count)
        }
    }

    deinit { buffer.deallocate() }

    /// The key's bytes, valid while the lease lives.
    public var keyBytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: buffer[0..<keyCount]) }
    /// The number of members, in archive order.
    public var count: Int { extensions.count }
    /// Member `i`'s extension.
    public func ext(_ i: Int) -> String { extensions[i] }
    /// Member `i`'s bytes, valid while the lease lives.
    public func bytes(_ i: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: buffer[starts[i]..<starts[i + 1]])
    }
}

extension Dataset {
    /// TEMPORARY (see the top of this file): the sample at `position`, copied into a lease.
    public func lease(at position: Int) throws -> SampleLease {
        try withSample(at: position) { SampleLease($0) }
    }

    /// TEMPORARY (see the top of this file): a new dataset on the same index, split and
    /// extensions, read with the strategy and lookup this one chose.
    public func reopenedAfterFork() throws -> Dataset {
        let lookup: LookupMode
        switch self.lookup {
        case .table: lookup = .table
        case .file: lookup = .file
        case .statements: lookup = .statements
        }
        return try Dataset(
            index: path, split: split, extensions: extensions, strategy: strategy,
            options: Options(memory: memory, lookup: lookup, verifiesHeaders: verifiesHeaders))
    }
}
