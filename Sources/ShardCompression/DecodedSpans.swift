import ShardIO
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Decoded bytes of seekable compressed shards, kept for reads that come back to them.
///
/// A random read through a seek point decodes from that point to the bytes it needs; a later
/// read behind where that stopped would decode again from the point. Reads in a locality-aware
/// order (the loader's `--locality-shuffle`: the samples of a few neighbouring spans in random
/// order) do that again and again. The ``SeekableReader``s given one of these keep, for each seek
/// span they decode, the bytes from its seek point up to where decoding stopped. A read inside
/// those bytes is a copy; a read past them continues the decoder that stopped there, appending to
/// them. The least recently used spans go first beyond ``capacity`` bytes; the buffers of spans
/// that went are kept for the next ones up to an eighth of that more.
///
/// Shared by the readers of a dataset's shards. Safe to share between threads.
///
/// ```swift
/// let spans = DecodedSpans(capacity: 64 << 20)
/// let reader = SeekableReader(source: source, info: info, spans: spans)
/// ```
public final class DecodedSpans: @unchecked Sendable {
    /// The most bytes kept (whole spans' buffers), before the least recently used are dropped.
    public let capacity: Int
    /// Spans longer than this are not kept (a few would fill ``capacity``): an eighth of it.
    public var largestSpan: Int { capacity / 8 }

    /// The default capacity: 64 MiB, about 60 gzip seek spans of 1 MiB.
    public static let defaultCapacity = 64 << 20

    private let monitor = Monitor()
    private var entries: [Key: Entry] = [:]
    private var held = 0
    private var clock: UInt64 = 0

    /// A span of one reader: the reader's number (never reused, unlike an object's address) and
    /// the seek point's index.
    struct Key: Hashable {
        let reader: UInt64
        let point: Int
    }

    /// One span's buffer (at least the span's length), of which `filled` bytes from its seek
    /// point are decoded. Bytes below `filled` never change; only the holder of the decoder that
    /// stopped at `filled` writes past it, then publishes the new length. The buffer goes back to
    /// `buffers` with the entry.
    final class Entry: @unchecked Sendable {
        let bytes: UnsafeMutableRawBufferPointer
        private let buffers: Buffers
        /// Guarded by the owner's monitor.
        fileprivate var filled = 0
        fileprivate var used: UInt64 = 0
        /// Whether a reader is decoding past `filled` (one at a time writes past it).
        fileprivate var extending = false

        /// A buffer of at least `length` bytes from `buffers`; nil when no memory can be mapped.
        init?(length: Int, from buffers: Buffers) {
            guard let bytes = buffers.take(length) else { return nil }
            self.bytes = bytes
            self.buffers = buffers
        }

        deinit { buffers.giveBack(bytes) }
    }

    /// Span buffers: mappings of their own (`mmap`), sizes rounded up to 256 KiB, a few kept for
    /// reuse when their entries go (so that their pages stay mapped in), up to `spareLimit`
    /// bytes, the rest unmapped (`malloc` would keep what buffers of a MiB free, and the process
    /// would grow past the capacity).
    final class Buffers: @unchecked Sendable {
        private let monitor = Monitor()
        private var spare: [UnsafeMutableRawBufferPointer] = []
        private var spareBytes = 0
        static let granule = 256 << 10
        /// The most bytes of spare buffers kept.
        let spareLimit: Int

        init(spareLimit: Int) { self.spareLimit = spareLimit }

        /// A buffer of at least `length` bytes: a spare one, or a new mapping; nil when none can be made.
        func take(_ length: Int) -> UnsafeMutableRawBufferPointer? {
            let size = (max(length, 1) + Self.granule - 1) / Self.granule * Self.granule
            let reused: UnsafeMutableRawBufferPointer? = monitor.withLock {
                guard let i = spare.firstIndex(where: { $0.count >= size && $0.count < size + 4 * Self.granule })
                else { return nil }
                spareBytes -= spare[i].count
                return spare.remove(at: i)
            }
            if let reused { return reused }
            guard let base = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
                base != MAP_FAILED
            else { return nil }
            return UnsafeMutableRawBufferPointer(start: base, count: size)
        }

        /// Keeps `buffer` for reuse, or unmaps it when enough are kept.
        func giveBack(_ buffer: UnsafeMutableRawBufferPointer) {
            let kept: Bool = monitor.withLock {
                guard spareBytes + buffer.count <= spareLimit else { return false }
                spare.append(buffer)
                spareBytes += buffer.count
                return true
            }
            if !kept { munmap(buffer.baseAddress, buffer.count) }
        }

        deinit { for buffer in spare { munmap(buffer.baseAddress, buffer.count) } }
    }

    /// The buffers of this cache's entries, with spare ones up to an eighth of ``capacity``.
    let buffers: Buffers

    /// The capacity for a process with `available` bytes of memory (nil: unknown): an eighth of
    /// them, at most ``defaultCapacity``.
    public static func capacity(available: Int64?) -> Int {
        guard let available else { return defaultCapacity }
        return Int(min(Int64(defaultCapacity), max(available / 8, 1 << 20)))
    }

    /// Keeps up to `capacity` bytes of decoded spans (at least 1 MiB).
    public init(capacity: Int = DecodedSpans.defaultCapacity) {
        self.capacity = max(capacity, 1 << 20)
        buffers = Buffers(spareLimit: self.capacity / 8)
    }

    /// The span `key`'s entry and how many of its bytes are decoded, marked as just used; nil
    /// when it is not kept.
    func lookup(_ key: Key) -> (entry: Entry, filled: Int)? {
        monitor.withLock {
            guard let entry = entries[key] else { return nil }
            clock &+= 1
            entry.used = clock
            return (entry, entry.filled)
        }
    }

    /// Lets the caller decode past `entry`'s bytes in place, unless another reader is doing so:
    /// returns how many bytes it holds (which stays so until the caller publishes), or nil.
    /// ``publish(_:filled:as:)`` or ``endExtending(_:)`` ends it.
    func beginExtending(_ entry: Entry) -> Int? {
        monitor.withLock {
            guard !entry.extending else { return nil }
            entry.extending = true
            return entry.filled
        }
    }

    /// Ends ``beginExtending(_:)`` without new bytes (the decoding failed, or did not start).
    func endExtending(_ entry: Entry) {
        monitor.withLock { entry.extending = false }
    }

    /// Records that `entry`, the span `key`'s (new, or extended in place), now holds `filled`
    /// decoded bytes; keeps it (replacing another entry of the span) and drops the least recently
    /// used spans beyond ``capacity``.
    func publish(_ entry: Entry, filled: Int, as key: Key) {
        monitor.withLock {
            entry.filled = max(entry.filled, filled)
            entry.extending = false
            clock &+= 1
            entry.used = clock
            if let old = entries[key], old !== entry { held -= old.bytes.count }
            if entries[key] !== entry {
                entries[key] = entry
                held += entry.bytes.count
            }
            while held > capacity, entries.count > 1 {
                guard let oldest = entries.min(by: { $0.value.used < $1.value.used }), oldest.value !== entry else {
                    break
                }
                entries[oldest.key] = nil
                held -= oldest.value.bytes.count
            }
        }
    }

    /// Bytes held now (for tests and reports).
    public var bytesHeld: Int { monitor.withLock { held } }

    /// A number for a new reader, never given before.
    static func readerNumber() -> UInt64 { nextReader.add(1, ordering: .relaxed).oldValue }

    private static let nextReader = Atomic<UInt64>(0)
}
