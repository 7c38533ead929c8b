/// How a shard's bytes are compressed, told by the file's first bytes (never by its name).
///
/// The raw values are stable: they are stored in the index.
///
/// ```swift
/// let format = prefix.withUnsafeBytes { CompressionFormat.detect($0) }   // .gzip for 1f 8b ...
/// CompressionFormat(name: "zstd")   // .zstd
/// ```
public enum CompressionFormat: UInt8, Sendable, CaseIterable {
    /// A plain tar.
    case none = 0
    /// gzip (RFC 1952), one member or several concatenated.
    case gzip = 1
    /// Zstandard, one frame or several (skippable frames allowed).
    case zstd = 2
    /// xz, one stream or several, each of one block or several.
    case xz = 3
    /// bzip2, one stream or several concatenated.
    case bzip2 = 4

    /// The format's name as the CLI and the index spell it: "none", "gzip", "zstd", "xz", "bzip2".
    public var name: String {
        switch self {
        case .none: "none"
        case .gzip: "gzip"
        case .zstd: "zstd"
        case .xz: "xz"
        case .bzip2: "bzip2"
        }
    }

    /// The format named `name` (as ``name`` spells it), or nil.
    ///
    /// - Complexity: O(1).
    public init?(name: String) {
        guard let format = Self.allCases.first(where: { $0.name == name }) else { return nil }
        self = format
    }

    /// How many bytes of a file's start ``detect(_:)`` looks at.
    public static var detectionBytes: Int { 6 }

    /// The format whose magic bytes start `prefix` (pass the file's first ``detectionBytes``
    /// bytes, fewer when the file is shorter): gzip `1f 8b`, zstd `28 b5 2f fd` or a skippable
    /// frame's `5X 2a 4d 18`, xz `fd 37 7a 58 5a 00`, bzip2 `BZh1`…`BZh9`; anything else ``none``.
    ///
    /// ```swift
    /// let prefix = try file.read(count: min(6, Int(file.byteCount)), at: 0)
    /// let format = prefix.withUnsafeBytes { CompressionFormat.detect($0) }
    /// ```
    /// - Complexity: O(1).
    public static func detect(_ prefix: UnsafeRawBufferPointer) -> CompressionFormat {
        func starts(with magic: [UInt8]) -> Bool {
            prefix.count >= magic.count && zip(prefix, magic).allSatisfy { $0 == $1 }
        }
        if starts(with: [0x1f, 0x8b]) { return .gzip }
        if starts(with: [0x28, 0xb5, 0x2f, 0xfd]) { return .zstd }
        if prefix.count >= 4, prefix[0] & 0xf0 == 0x50, prefix[1] == 0x2a, prefix[2] == 0x4d, prefix[3] == 0x18 {
            return .zstd
        }
        if starts(with: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) { return .xz }
        if prefix.count >= 4, starts(with: [0x42, 0x5a, 0x68]), (0x31...0x39).contains(prefix[3]) { return .bzip2 }
        return .none
    }
}
