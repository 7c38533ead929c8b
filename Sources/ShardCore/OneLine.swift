/// Bytes from a tar, an index or the command line (keys, extensions, paths) as quoted text that
/// always stays on one line, so one problem is one line of output.
///
/// Valid UTF-8 stays as it is except control characters (C0, DEL, C1, U+2028 and U+2029), which
/// become `\n`, `\t`, `\r` or `\u{XXXX}`; bytes that are not part of valid UTF-8 become `\xNN`;
/// `'` and `\` are escaped.
///
/// ```swift
/// OneLine.quoted(Array("a\nb".utf8))  // "'a\\nb'"
/// OneLine.quoted([0x61, 0xFF])         // "'a\\xff'"
/// ```
///
/// - Complexity: O(n).
public enum OneLine {
    /// `bytes` quoted with `'`, escaped as the type describes.
    public static func quoted<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> String {
        "'" + escaped(Array(bytes)) + "'"
    }

    /// `text` quoted with `'`, escaped as the type describes.
    public static func quoted(_ text: String) -> String { quoted(Array(text.utf8)) }

    /// `bytes` escaped as the type describes, without quotes.
    public static func escaped(_ bytes: [UInt8]) -> String {
        var out = ""
        forEachUTF8Run(bytes) { run in
            switch run {
            case .invalid(let b): out += "\\x" + hex2(b)
            case .text(let s):
                for scalar in s.unicodeScalars {
                    switch scalar.value {
                    case 0x5C: out += "\\\\"
                    case 0x27: out += "\\'"
                    case 0x0A: out += "\\n"
                    case 0x09: out += "\\t"
                    case 0x0D: out += "\\r"
                    case 0..<0x20, 0x7F..<0xA0, 0x2028, 0x2029:
                        out += "\\u{" + String(scalar.value, radix: 16) + "}"
                    default: out.unicodeScalars.append(scalar)
                    }
                }
            }
        }
        return out
    }
}
