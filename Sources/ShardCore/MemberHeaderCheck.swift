/// Checks a member's own tar header (the 512-byte block right before its data) against what the
/// index recorded for it: the block's checksum, its type (a regular file), its size field and its
/// name. Every read runs it on the block it reads with the member, so a shard rewritten, swapped
/// or moved since ingest, or an index row pointing at the wrong place, is refused instead of
/// returning wrong bytes.
///
/// The name rule follows what a header block can hold:
/// - when the member had no pax or GNU long-name header (its header is its first block), the name
///   the block holds (`prefix/name` for ustar) is the whole name, so it must split into the
///   indexed key and extension under the webdataset rule;
/// - when it had one, and the full name is 100 bytes or longer or holds bytes outside ASCII,
///   producers shorten the block's name as they like (Python's `tarfile` keeps the first 100
///   bytes and writes `?` for characters outside ASCII, GNU tar keeps the first 100 bytes,
///   libarchive keeps the start of the folders and the end of the file name, Go's `archive/tar`
///   leaves out bytes outside ASCII), so the block's name must be the full name with bytes left
///   out: a subsequence of `key.ext` compared without ASCII case, where a `?` may stand for one
///   character; a shorter ASCII name (a pax header that only carries `mtime`, as webdataset's
///   writer makes) must still be whole. The size field may then hold 0 (the size is in the pax
///   record), or anything when the size does not fit its 11 octal digits.
///
/// Not handled: a pax *global* header that sets `path` or `size` for the members after it (no
/// known producer writes one); such members are refused.
///
/// ```swift
/// if let mismatch = MemberHeaderCheck.check(block, length: 1234, key: key, ext: ext, extended: false) {
///     throw MyError(mismatch.description)
/// }
/// ```
///
/// - Complexity: O(512) for the checksum, plus O(name length); no allocation when the name
///   matches as stored (lower-case extension).
public enum MemberHeaderCheck {
    /// What differs between a header block and the index.
    public enum Mismatch: Equatable, Sendable, CustomStringConvertible {
        /// The block's checksum field does not match its bytes (nil: not a number): the bytes are
        /// not a tar header.
        case checksum(stored: Int64?, computed: Int64)
        /// The block is a header of another kind of entry (a typeflag that is not a regular file).
        case type(typeflag: UInt8)
        /// The size field differs from the indexed length (nil: not a number).
        case size(header: Int64?, indexed: Int64)
        /// The name in the block does not belong to the indexed key and extension.
        case name(header: [UInt8], expected: [UInt8])

        public var description: String {
            switch self {
            case .checksum(let stored, let computed):
                return
                    "no valid tar header precedes the member (checksum field \(stored.map(String.init) ?? "not a number"), computed \(computed))"
            case .type(let typeflag):
                return "the header there is not a regular file's (typeflag \(Self.quoted([typeflag])))"
            case .size(let header, let indexed):
                return
                    "the header there gives size \(header.map(String.init) ?? "not a number"), the index \(indexed)"
            case .name(let header, let expected):
                return "the header there names \(Self.quoted(header)), the index expects \(Self.quoted(expected))"
            }
        }

        /// Bytes as a quoted, one-line string (see ``MessageText/quoted(_:)``).
        static func quoted(_ bytes: [UInt8]) -> String { MessageText.quoted(bytes) }
    }

    /// The size of a header block.
    public static var blockSize: Int { TarHeader.blockSize }

    /// The largest size the 12-byte field holds in octal (11 digits).
    static let maximumOctalSize: Int64 = 0o77777777777

    /// Checks `block` (at least 512 bytes: the member's own header) against the indexed `length`,
    /// `key` and lower-cased `ext`; `extended` says whether the member had pax or GNU long-name
    /// blocks before its own header (its header offset is before `dataOffset - 512`).
    ///
    /// - Returns: nil when the block is the member's header, else the first difference found.
    /// - Complexity: O(512 + name length).
    public static func check(
        _ block: UnsafeRawBufferPointer, length: Int64, key: UnsafeRawBufferPointer, ext: UnsafeRawBufferPointer,
        extended: Bool
    ) -> Mismatch? {
        precondition(block.count >= TarHeader.blockSize)
        let stored = TarHeader.number(in: block, TarHeader.Field.checksum)
        // The common case first: the unsigned sum, without the signed one's high-bit count.
        if case .value(let value) = stored, value == unsignedChecksum(block) {
        } else {
            let sum = TarHeader.checksum(of: block)
            guard case .value(let value) = stored, value == sum.unsigned || value == sum.signed, !sum.isZeroBlock
            else {
                if case .value(let value) = stored { return .checksum(stored: value, computed: sum.unsigned) }
                return .checksum(stored: nil, computed: sum.unsigned)
            }
        }
        let typeflag = block[TarHeader.Field.typeflag]
        guard typeflag == UInt8(ascii: "0") || typeflag == 0 || typeflag == UInt8(ascii: "7") else {
            return .type(typeflag: typeflag)
        }
        let size: Int64?
        if case .value(let v) = TarHeader.number(in: block, TarHeader.Field.size) { size = v } else { size = nil }
        // After a pax header the size may be in its `size` record: producers then write 0 in the
        // field (Python) or, for sizes the 11 octal digits cannot hold, what they like.
        if size != length, !(extended && (size == 0 || length > maximumOctalSize)) {
            return .size(header: size, indexed: length)
        }
        // The common case without measuring the fields: no prefix, and the name field holds
        // exactly `key.ext` (NUL-terminated unless it fills the field).
        let full = key.count + 1 + ext.count
        let nameField = TarHeader.Field.name.count
        if full <= nameField, full == nameField || block[full] == 0,
            block[TarHeader.Field.prefix.lowerBound] == 0 || !TarHeader.format(of: block).hasPrefixField,
            block[key.count] == UInt8(ascii: "."), wordwiseEqual(block, key, count: key.count),
            wordwiseEqual(UnsafeRawBufferPointer(rebasing: block[(key.count + 1)...]), ext, count: ext.count)
        {
            return nil
        }
        return withHeaderName(block) { name in
            if Self.matches(name, key: key, ext: ext, extended: extended) { return nil }
            var expected = [UInt8](key)
            expected.append(UInt8(ascii: "."))
            expected.append(contentsOf: ext)
            return .name(header: [UInt8](name), expected: expected)
        }
    }

    /// The POSIX checksum of `block`: its bytes summed as unsigned values, the checksum field
    /// counted as 8 spaces. A zero block sums to 256, which its zero checksum field never equals.
    ///
    /// Two words at a time in 16-bit lanes (32 rounds x 2 words x 2 bytes x 255 fits in 16 bits),
    /// with no popcount: about 4x faster than ``TarHeader/checksum(of:)``, which also computes
    /// the signed sum.
    @inline(__always)
    static func unsignedChecksum(_ block: UnsafeRawBufferPointer) -> Int64 {
        // Eight words a round in 16-bit lanes: 8 rounds x 2 bytes x 255, then 8 words summed,
        // stay under 2^16 in every lane.
        let low = SIMD8<UInt64>(repeating: 0x00FF_00FF_00FF_00FF)
        var lanes = SIMD8<UInt64>()
        var i = 0
        while i < TarHeader.blockSize {
            let w = block.loadUnaligned(fromByteOffset: i, as: SIMD8<UInt64>.self)
            lanes &+= (w & low) &+ ((w &>> 8) & low)
            i &+= 64
        }
        let field = block.loadUnaligned(fromByteOffset: TarHeader.Field.checksum.lowerBound, as: UInt64.self)
        func fold(_ x: UInt64) -> Int64 {
            Int64((x & 0xFFFF) + ((x >> 16) & 0xFFFF) + ((x >> 32) & 0xFFFF) + (x >> 48))
        }
        return fold(lanes.wrappedSum()) - fold((field & low[0]) &+ ((field >> 8) & low[0])) + 8 * 0x20
    }

    /// Calls `body` with the name the block holds by itself (`prefix/name` for ustar and star).
    private static func withHeaderName<R>(_ block: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        let format = TarHeader.format(of: block)
        let nameLength = TarHeader.stringLength(in: block, TarHeader.Field.name)
        let prefixRange: Range<Int>? =
            switch format {
            case .ustar: TarHeader.Field.prefix
            case .star: TarHeader.Field.starPrefix
            case .v7, .oldGNU: nil
            }
        let prefixLength = prefixRange.map { TarHeader.stringLength(in: block, $0) } ?? 0
        guard prefixLength > 0, let prefixRange else {
            return body(UnsafeRawBufferPointer(rebasing: block[0..<nameLength]))
        }
        return withUnsafeTemporaryAllocation(byteCount: prefixLength + 1 + nameLength, alignment: 1) { buffer in
            buffer.baseAddress!.copyMemory(from: block.baseAddress! + prefixRange.lowerBound, byteCount: prefixLength)
            buffer[prefixLength] = UInt8(ascii: "/")
            (buffer.baseAddress! + prefixLength + 1).copyMemory(from: block.baseAddress!, byteCount: nameLength)
            return body(UnsafeRawBufferPointer(buffer))
        }
    }

    /// Whether the header's `name` belongs to `key` and `ext` (see the type's rule).
    static func matches(
        _ name: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer, ext: UnsafeRawBufferPointer, extended: Bool
    ) -> Bool {
        // The common case: the name is `key.ext` byte for byte.
        if name.count == key.count + 1 + ext.count, name[key.count] == UInt8(ascii: "."),
            wordwiseEqual(name, key, count: key.count),
            wordwiseEqual(UnsafeRawBufferPointer(rebasing: name[(key.count + 1)...]), ext, count: ext.count)
        {
            return true
        }
        // The name as a whole, under the webdataset rule (an upper-case extension).
        if case .member(let k, let e) = WebDatasetName.classify([UInt8](name)), k.elementsEqual(key),
            e.elementsEqual(ext)
        {
            return true
        }
        // A shortened name only when a producer had to shorten it: a name of 100 bytes or more
        // (the field holds 100), or one with bytes outside ASCII (Python writes `?` for them,
        // Go's archive/tar leaves them out). An ASCII name under 100 bytes is always written whole.
        guard extended, key.count + 1 + ext.count >= 100 || !isASCII(key) || !isASCII(ext) else { return false }
        return isSubsequence(name, ofKey: key, ext: ext)
    }

    private static func isASCII(_ bytes: UnsafeRawBufferPointer) -> Bool {
        for b in bytes where b >= 0x80 { return false }
        return true
    }

    /// Whether `name` is `key.ext` with bytes left out, ASCII case ignored, `?` standing for any
    /// one character (a UTF-8 sequence, or one byte that is not part of one).
    static func isSubsequence(
        _ name: UnsafeRawBufferPointer, ofKey key: UnsafeRawBufferPointer, ext: UnsafeRawBufferPointer
    )
        -> Bool
    {
        let fullCount = key.count + 1 + ext.count
        func full(_ i: Int) -> UInt8 {
            i < key.count ? key[i] : i == key.count ? UInt8(ascii: ".") : ext[i - key.count - 1]
        }
        func folded(_ b: UInt8) -> UInt8 { b &- UInt8(ascii: "A") < 26 ? b | 0x20 : b }
        var j = 0
        for b in name {
            if b == UInt8(ascii: "?") {
                guard j < fullCount else { return false }
                let lead = full(j)
                j += 1
                // One UTF-8 character: its continuation bytes go with it.
                if lead >= 0xC0 {
                    while j < fullCount, full(j) & 0xC0 == 0x80 { j += 1 }
                }
                continue
            }
            let want = folded(b)
            while j < fullCount, folded(full(j)) != want { j += 1 }
            guard j < fullCount else { return false }
            j += 1
        }
        return true
    }
}

extension TarHeader.Format {
    /// Whether headers of this dialect have a prefix field (ustar, star).
    fileprivate var hasPrefixField: Bool { self == .ustar || self == .star }
}
