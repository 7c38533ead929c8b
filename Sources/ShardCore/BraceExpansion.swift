/// Shell-style brace expansion for shard patterns, done by ShardStore itself so that a quoted
/// pattern works the same in every shell.
///
/// - `{a,b,c}`: alternatives (nested braces allowed);
/// - `{000000..000099}`: an integer range, zero-padded to the wider endpoint when either endpoint
///   has a leading zero (as bash does); descending ranges and a step (`{0..10..2}`) work;
/// - a brace group that is neither (`{x}`, an unmatched `{`) stays literal.
///
/// ```swift
/// try BraceExpansion.expand("train-{000..002}.tar")
/// // ["train-000.tar", "train-001.tar", "train-002.tar"]
/// ```
public enum BraceExpansion {
    /// The largest number of words one pattern may expand to.
    public static let maximumWords = 10_000_000

    /// A pattern that cannot be expanded.
    public struct Error: Swift.Error, Sendable, Equatable, CustomStringConvertible {
        public var pattern: String
        public var reason: String
        public var description: String { "cannot expand '\(pattern)': \(reason)" }
    }

    /// Expands every brace group of `pattern`, left to right.
    ///
    /// - Throws: ``Error`` when a range would produce more than ``maximumWords`` words.
    /// - Complexity: O(output size).
    public static func expand(_ pattern: String) throws(Error) -> [String] {
        var count = 0
        return try expand(Array(pattern.unicodeScalars), pattern: pattern, count: &count).map {
            var s = String.UnicodeScalarView()
            s.append(contentsOf: $0)
            return String(s)
        }
    }

    private typealias Scalars = [Unicode.Scalar]

    private enum Group {
        case alternatives([Scalars])
        case range([Scalars])
    }

    private static func expand(_ s: Scalars, pattern: String, count: inout Int) throws(Error) -> [Scalars] {
        guard let (open, close, group) = firstGroup(in: s) else { return [s] }
        let prefix = Array(s[..<open])
        let suffixes = try expand(Array(s[(close + 1)...]), pattern: pattern, count: &count)
        var out: [Scalars] = []
        let middles: [Scalars]
        switch group {
        case .range(let words): middles = words
        case .alternatives(let alternatives):
            var m: [Scalars] = []
            for a in alternatives { m += try expand(a, pattern: pattern, count: &count) }
            middles = m
        }
        for middle in middles {
            for suffix in suffixes {
                count += 1
                if count > maximumWords {
                    throw Error(pattern: pattern, reason: "it expands to more than \(maximumWords) names")
                }
                out.append(prefix + middle + suffix)
            }
        }
        return out
    }

    /// Finds the first brace group that expands: its `{` index, matching `}` index and contents.
    private static func firstGroup(in s: Scalars) -> (Int, Int, Group)? {
        var i = 0
        while i < s.count {
            if s[i] == "\\" {
                i += 2
                continue
            }
            if s[i] == "{", let close = matchingClose(s, from: i) {
                let inner = Array(s[(i + 1)..<close])
                if let words = range(inner) { return (i, close, .range(words)) }
                let parts = splitTopLevelCommas(inner)
                if parts.count > 1 { return (i, close, .alternatives(parts)) }
            }
            i += 1
        }
        return nil
    }

    private static func matchingClose(_ s: Scalars, from open: Int) -> Int? {
        var depth = 0
        var i = open
        while i < s.count {
            switch s[i] {
            case "\\": i += 1
            case "{": depth += 1
            case "}":
                depth -= 1
                if depth == 0 { return i }
            default: break
            }
            i += 1
        }
        return nil
    }

    private static func splitTopLevelCommas(_ s: Scalars) -> [Scalars] {
        var parts: [Scalars] = []
        var current: Scalars = []
        var depth = 0
        var i = 0
        while i < s.count {
            let c = s[i]
            if c == "\\", i + 1 < s.count {
                current.append(c)
                current.append(s[i + 1])
                i += 2
                continue
            }
            if c == "{" { depth += 1 }
            if c == "}" { depth -= 1 }
            if c == ",", depth == 0 {
                parts.append(current)
                current = []
            } else {
                current.append(c)
            }
            i += 1
        }
        parts.append(current)
        return parts
    }

    /// `N..M` or `N..M..STEP` with decimal integers, or nil.
    private static func range(_ inner: Scalars) -> [Scalars]? {
        let text = String(String.UnicodeScalarView(inner))
        let fields = text.split(separator: ".", omittingEmptySubsequences: false)
        // "a..b" splits into ["a", "", "b"]; "a..b..c" into ["a", "", "b", "", "c"].
        guard fields.count == 3 || fields.count == 5, fields[1].isEmpty, fields.count == 3 || fields[3].isEmpty
        else { return nil }
        func integer(_ f: Substring) -> Int? {
            guard !f.isEmpty, f.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == "-" || $0 == "+") }) else {
                return nil
            }
            return Int(f)
        }
        guard let from = integer(fields[0]), let to = integer(fields[2]) else { return nil }
        var step = 1
        if fields.count == 5 {
            guard let s = integer(fields[4]), s != 0 else { return nil }
            step = abs(s)
        }
        func padded(_ f: Substring) -> Bool {
            let digits = f.drop(while: { $0 == "-" || $0 == "+" })
            return digits.count > 1 && digits.first == "0"
        }
        let width = (padded(fields[0]) || padded(fields[2])) ? max(fields[0].count, fields[2].count) : 0
        let count = abs(to - from) / step + 1
        guard count <= maximumWords else { return nil }
        var words: [Scalars] = []
        words.reserveCapacity(count)
        var v = from
        for _ in 0..<count {
            var digits = String(abs(v))
            let sign = v < 0 ? "-" : ""
            let pad = width - sign.count - digits.count
            if pad > 0 { digits = String(repeating: "0", count: pad) + digits }
            words.append(Array((sign + digits).unicodeScalars))
            v += from <= to ? step : -step
        }
        return words
    }
}
