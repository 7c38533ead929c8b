/// Minimal JSON text helpers for the pure core (no Foundation): quoting strings exactly as
/// ShardStore's JSON outputs need them.
public enum JSON {
    /// A JSON string literal for `text`, quotes included.
    ///
    /// ```swift
    /// JSON.quote("a\"b")   // "\"a\\\"b\""
    /// ```
    /// - Complexity: O(n).
    public static func quote(_ text: String) -> String {
        var out = "\""
        appendEscaped(text, to: &out)
        out += "\""
        return out
    }

    /// A JSON string literal for raw bytes: valid UTF-8 runs as text, every other byte as
    /// `\udcNN` (Python's `surrogateescape`, so `os.fsencode(json.loads(s))` gives the bytes back).
    ///
    /// - Complexity: O(n).
    public static func quote(bytes: [UInt8]) -> String {
        var out = "\""
        forEachUTF8Run(bytes) { run in
            switch run {
            case .text(let s): appendEscaped(s, to: &out)
            case .invalid(let b): out += "\\udc" + hex2(b)
            }
        }
        out += "\""
        return out
    }

    private static func appendEscaped(_ text: String, to out: inout String) {
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    out += "\\u00" + hex2(UInt8(scalar.value))
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
    }
}
