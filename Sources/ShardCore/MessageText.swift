/// Bytes from disk (keys, tar names, paths) made safe for a one-line message: valid UTF-8 text
/// stays as it is, control characters and bytes that are not valid UTF-8 are escaped, so one
/// error is always one line.
///
/// ```swift
/// MessageText.quoted(Array("a\nb".utf8))   // "'a\\nb'"
/// MessageText.escaped([0x66, 0xff])        // "f\\xff"
/// ```
public enum MessageText {
    /// `bytes` with `\` as `\\`, newline, tab and carriage return as `\n`, `\t`, `\r`, other
    /// control characters (and DEL) and invalid UTF-8 bytes as `\xNN`.
    ///
    /// - Complexity: O(bytes).
    public static func escaped(_ bytes: [UInt8]) -> String {
        escaped(bytes, quote: nil)
    }

    /// ``escaped(_:)`` in single quotes, a `'` inside written `\'`.
    public static func quoted(_ bytes: [UInt8]) -> String {
        "'" + escaped(bytes, quote: "'") + "'"
    }

    private static func escaped(_ bytes: [UInt8], quote: Unicode.Scalar?) -> String {
        var out = ""
        forEachUTF8Run(bytes) { run in
            switch run {
            case .text(let text):
                for scalar in text.unicodeScalars {
                    switch scalar {
                    case "\\": out += "\\\\"
                    case "\n": out += "\\n"
                    case "\t": out += "\\t"
                    case "\r": out += "\\r"
                    case _ where scalar == quote: out += "\\" + String(scalar)
                    case _ where scalar.value < 0x20 || scalar.value == 0x7f:
                        out += "\\x" + hex2(UInt8(scalar.value))
                    default: out.unicodeScalars.append(scalar)
                    }
                }
            case .invalid(let byte): out += "\\x" + hex2(byte)
            }
        }
        return out
    }
}
