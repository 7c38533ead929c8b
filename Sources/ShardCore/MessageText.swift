/// Text made safe to put into a one-line message: keys, member names, split names and paths come
/// from tar files and command lines, and may hold line breaks or terminal escape sequences.
///
/// Every error and note that shows a key or a name goes through ``escaped(_:)-(String)`` (or the
/// ``SampleKey`` and byte overloads), so one message is always one line:
/// - C0 control characters and DEL become `\xNN` (two lower-case hex digits: a newline is `\x0a`),
///   as bytes that are not valid UTF-8 already are (see ``SampleKey/description``);
/// - C1 control characters and the Unicode line and paragraph separators become `\u{NNNN}`;
/// - everything else is kept as it is, backslashes included, so escaping twice changes nothing.
///
/// ```swift
/// MessageText.escaped("a\nb")                 // "a\\x0ab"
/// MessageText.escaped(SampleKey("k\u{1B}[2J")) // "k\\x1b[2J"
/// ```
public enum MessageText {
    /// `text` with every control character and line separator escaped.
    ///
    /// - Complexity: O(n) in the text's length; text without such characters is returned as is.
    public static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            guard needsEscape(scalar) else {
                out.append(scalar)
                continue
            }
            out.append(contentsOf: escape(scalar).unicodeScalars)
        }
        return String(out)
    }

    /// The key's display form (``SampleKey/description``: `\xNN` for bytes that are not valid
    /// UTF-8) with control characters escaped.
    ///
    /// - Complexity: O(n) in the key's length.
    public static func escaped(_ key: SampleKey) -> String {
        escaped(key.description)
    }

    /// A name given as raw bytes (a tar member name), shown as a key is.
    ///
    /// - Complexity: O(n) in the name's length.
    public static func escaped<C: Collection>(bytes: C) -> String where C.Element == UInt8 {
        escaped(SampleKey(bytes: bytes).description)
    }

    /// `bytes` (a key, a tar name, an extension) as they are shown in messages: ``escaped(bytes:)``.
    ///
    /// - Complexity: O(n) in the bytes.
    public static func escaped(_ bytes: [UInt8]) -> String {
        escaped(bytes: bytes)
    }

    /// `bytes` in single quotes, escaped as ``escaped(bytes:)`` does, with a `'` or `\` inside
    /// written `\'` and `\\`, so the quoted text reads back unambiguously:
    /// `MessageText.quoted(Array("it's\n".utf8))` is `'it\'s\x0a'`.
    ///
    /// - Complexity: O(n) in the bytes.
    public static func quoted<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> String {
        var out = "'"
        forEachUTF8Run(Array(bytes)) { run in
            switch run {
            case .invalid(let byte): out += "\\x" + hex2(byte)
            case .text(let text):
                for scalar in text.unicodeScalars {
                    if scalar == "'" || scalar == "\\" {
                        out += "\\"
                        out.unicodeScalars.append(scalar)
                    } else if needsEscape(scalar) {
                        out += escape(scalar)
                    } else {
                        out.unicodeScalars.append(scalar)
                    }
                }
            }
        }
        return out + "'"
    }

    /// `text` in single quotes: ``quoted(_:)-(Bytes)`` of its UTF-8.
    public static func quoted(_ text: String) -> String { quoted(Array(text.utf8)) }

    /// The escape for a scalar that ``needsEscape(_:)``: `\xNN` below 0x80, else `\u{NNNN}`.
    static func escape(_ scalar: Unicode.Scalar) -> String {
        if scalar.value < 0x80 { return "\\x" + hex2(UInt8(scalar.value)) }
        let digits = String(scalar.value, radix: 16)
        return "\\u{" + String(repeating: "0", count: max(0, 4 - digits.count)) + digits + "}"
    }

    /// Whether `scalar` would break a line or drive a terminal: C0, DEL, C1, U+2028 and U+2029.
    @inline(__always)
    static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        return v < 0x20 || (0x7F...0x9F).contains(v) || v == 0x2028 || v == 0x2029
    }
}
