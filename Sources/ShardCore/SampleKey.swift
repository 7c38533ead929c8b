/// The key of a sample: the raw bytes of a member name up to the first `.` of its basename
/// (see ``WebDatasetName``).
///
/// Keys are bytes, not strings: tar names carry no encoding, so two spellings of the same text
/// (NFC and NFD) are two keys, and a name that is not valid UTF-8 is kept byte-exact.
///
/// Display forms (documented in the README):
/// - ``description``: the text when the key is valid UTF-8; otherwise every byte that is not part
///   of valid UTF-8 is shown as `\xNN`. Meant for people (messages, tables).
/// - ``jsonLiteral``: a JSON string in which every byte that is not part of valid UTF-8 is written
///   as the escape `\udcNN` (Python's `surrogateescape`), so the exact bytes come back with
///   `os.fsencode(json.loads(line)["key"])`. Reversible.
///
/// ```swift
/// let key = SampleKey("000123")
/// key.bytes            // [0x30, 0x30, 0x30, 0x31, 0x32, 0x33]
/// key.jsonLiteral      // "\"000123\""
/// ```
public struct SampleKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The key's bytes.
    public var bytes: [UInt8]

    /// A key from its raw bytes.
    public init<Bytes: Sequence>(bytes: Bytes) where Bytes.Element == UInt8 { self.bytes = Array(bytes) }

    /// A key from text (its UTF-8 bytes).
    public init(_ text: String) { self.bytes = Array(text.utf8) }

    /// The key as text, or nil when its bytes are not valid UTF-8.
    public var string: String? { validUTF8String(bytes) }

    /// Whether the key's bytes are valid UTF-8.
    public var isValidUTF8: Bool { string != nil }

    public var description: String {
        if let s = string { return s }
        var out = ""
        forEachUTF8Run(bytes) { run in
            switch run {
            case .text(let s): out += s
            case .invalid(let b): out += "\\x" + hex2(b)
            }
        }
        return out
    }

    /// The key as a JSON string literal, quotes included; invalid UTF-8 bytes become `\udcNN`.
    public var jsonLiteral: String { JSON.quote(bytes: bytes) }

    public static func == (a: SampleKey, b: SampleKey) -> Bool {
        guard a.bytes.count == b.bytes.count else { return false }
        return a.bytes.withUnsafeBytes { pa in
            b.bytes.withUnsafeBytes { pb in
                // Word-at-a-time comparison; keys are short and compared once per member.
                wordwiseEqual(pa, pb, count: pa.count)
            }
        }
    }

    /// Hashes the bytes in one call (the synthesized version feeds the hasher byte by byte).
    public func hash(into hasher: inout Hasher) {
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
    }

    public static func < (a: SampleKey, b: SampleKey) -> Bool {
        a.bytes.lexicographicallyPrecedes(b.bytes)
    }
}

/// Decodes `bytes` as UTF-8, or returns nil when they are not valid UTF-8.
///
/// - Complexity: O(n).
public func validUTF8String<C: Collection>(_ bytes: C) -> String? where C.Element == UInt8 {
    var it = bytes.makeIterator()
    var decoder = UTF8()
    var scalars = String.UnicodeScalarView()
    while true {
        switch decoder.decode(&it) {
        case .scalarValue(let s): scalars.append(s)
        case .emptyInput: return String(scalars)
        case .error: return nil
        }
    }
}

enum UTF8Run {
    case text(String)
    case invalid(UInt8)
}

/// Walks `bytes` as runs of valid UTF-8 text and single invalid bytes (one byte of an invalid
/// sequence at a time, as Python's `surrogateescape` does).
func forEachUTF8Run(_ bytes: [UInt8], _ body: (UTF8Run) -> Void) {
    var i = 0
    var text = String.UnicodeScalarView()
    func flush() {
        if !text.isEmpty {
            body(.text(String(text)))
            text = String.UnicodeScalarView()
        }
    }
    while i < bytes.count {
        if let (scalar, length) = decodeScalar(bytes, at: i) {
            text.append(scalar)
            i += length
        } else {
            flush()
            body(.invalid(bytes[i]))
            i += 1
        }
    }
    flush()
}

/// Decodes one well-formed UTF-8 scalar at `i` (no overlongs, no surrogates, at most U+10FFFF).
private func decodeScalar(_ b: [UInt8], at i: Int) -> (Unicode.Scalar, Int)? {
    let b0 = b[i]
    if b0 < 0x80 { return (Unicode.Scalar(b0), 1) }
    func cont(_ k: Int) -> UInt32? {
        guard i + k < b.count, b[i + k] & 0xC0 == 0x80 else { return nil }
        return UInt32(b[i + k] & 0x3F)
    }
    var value: UInt32
    var length: Int
    switch b0 {
    case 0xC2...0xDF:
        guard let c1 = cont(1) else { return nil }
        value = (UInt32(b0 & 0x1F) << 6) | c1
        length = 2
    case 0xE0...0xEF:
        guard let c1 = cont(1), let c2 = cont(2) else { return nil }
        value = (UInt32(b0 & 0x0F) << 12) | (c1 << 6) | c2
        guard value >= 0x800, !(0xD800...0xDFFF).contains(value) else { return nil }
        length = 3
    case 0xF0...0xF4:
        guard let c1 = cont(1), let c2 = cont(2), let c3 = cont(3) else { return nil }
        value = (UInt32(b0 & 0x07) << 18) | (c1 << 12) | (c2 << 6) | c3
        guard value >= 0x10000, value <= 0x10FFFF else { return nil }
        length = 4
    default:
        return nil
    }
    guard let scalar = Unicode.Scalar(value) else { return nil }
    return (scalar, length)
}

func hex2(_ b: UInt8) -> String {
    let digits: [Character] = Array("0123456789abcdef")
    return String([digits[Int(b >> 4)], digits[Int(b & 0xF)]])
}
