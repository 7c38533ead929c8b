import ShardCore

/// A sample whose members' bytes stay valid as long as the lease lives: views into the preload,
/// a shard's mapping, or a buffer the lease owns, without copying. What the C ABI hands out
/// (`shardstore_get`), and what Python's memoryviews keep alive.
///
/// Unlike a ``SampleView``, which is valid only inside its closure, a lease may be kept, sent to
/// another thread, and outlive the ``Dataset`` it came from.
///
/// ```swift
/// let lease = try dataset.lease(at: 42)
/// for i in 0..<lease.count { hash(lease.bytes(i)) }   // lease.ext(i) == "jpg", ...
/// ```
public final class SampleLease: @unchecked Sendable {
    /// The position in the dataset (a split position when the dataset is a split).
    public let position: Int
    /// The dense global index in the index.
    public let index: Int
    /// The key's bytes, owned.
    private let key: UnsafeMutableRawBufferPointer
    private let names: [String]
    private let pointers: [UnsafeRawPointer?]
    private let lengths: [Int]
    /// What keeps the bytes valid: the preload's arenas, a mapping, or a read buffer.
    private let keeper: AnyObject?

    init(_ view: SampleView, keeper: AnyObject?) {
        position = view.position
        index = view.index
        key = .allocate(byteCount: max(view.keyBytes.count, 1), alignment: 1)
        key.copyMemory(from: view.keyBytes)
        keyCount = view.keyBytes.count
        names = view.rows.map { view.names[$0.ext] }
        pointers = Array(view.pointers)
        lengths = Array(view.lengths)
        self.keeper = keeper
    }

    private let keyCount: Int

    deinit { key.deallocate() }

    /// The key's exact bytes; valid while the lease lives.
    public var keyBytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: key[0..<keyCount]) }

    /// The key.
    public var sampleKey: SampleKey { SampleKey(bytes: keyBytes) }

    /// The number of members, in archive order.
    public var count: Int { lengths.count }

    /// The extension of member `i`, without the dot (`jpg`, `seg.png`).
    ///
    /// - Precondition: `0 <= i < count`.
    public func ext(_ i: Int) -> String { names[i] }

    /// The bytes of member `i`; valid while the lease lives. Read-only.
    ///
    /// - Precondition: `0 <= i < count`.
    public func bytes(_ i: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: pointers[i], count: lengths[i])
    }
}

extension Dataset {
    /// The sample at `position` as a lease: its members' bytes stay valid as long as the lease
    /// lives, even after the dataset is released. Each member's own tar header is checked first
    /// (unless ``verifiesHeaders`` is off).
    ///
    /// ```swift
    /// let lease = try dataset.lease(at: 7)
    /// let jpeg = lease.bytes(0)   // no copy with `memory` and `mmap`; `pread` reads into the lease
    /// ```
    ///
    /// - Throws: as ``sample(at:)``.
    /// - Complexity: O(members) plus, with `pread`, one read.
    public func lease(at position: Int) throws -> SampleLease {
        try lease(at: position, window: nil)
    }

    /// ``lease(at:)`` through `window` (samples fetched ahead with the others of a batch).
    func lease(at position: Int, window: ReadWindow?) throws -> SampleLease {
        var lease: SampleLease?
        try visitKeptSample(at: position, window: window) { view, keeper in lease = SampleLease(view, keeper: keeper) }
        return lease!
    }

    /// Calls `body` with a view of the sample at `position` and the object that keeps its members'
    /// bytes valid: hold `keeper` and the view's member bytes stay valid after `body` returns, even
    /// after the dataset is released (nil: the sample has no members). The key bytes and the view
    /// itself are valid only inside `body`. What ``lease(at:)`` is built on, for callers that copy
    /// the description into a layout of their own (the C ABI's leases) without a ``SampleLease``.
    ///
    /// ```swift
    /// let (length, keeper) = try dataset.withKeptSample(at: 3) { view, keeper in (view[0].bytes.count, keeper) }
    /// ```
    ///
    /// - Throws: as ``sample(at:)``, or what `body` throws.
    /// - Complexity: O(members) plus, with `pread`, one read.
    @inlinable
    public func withKeptSample<R>(at position: Int, _ body: (SampleView, _ keeper: AnyObject?) throws -> R) throws
        -> R
    {
        var result: R?
        try visitSample(at: position) { view, keeper in result = try body(view, keeper) }
        return result!
    }
}
