/// webdataset 1.0's rule for turning a tar member name into a sample key and an extension.
///
/// It reproduces `tariterators.py` exactly, as Python evaluates it on the name decoded with
/// `surrogateescape` (as `tarfile` decodes names):
///
/// 1. A name without `/` that starts and ends with `__` is metadata; so is a name matching
///    `re.match(r"__[^/]*__($|/)", name)`.
/// 2. Otherwise `re.match(r"^((?:.*/|)[^.]+)[.]([^/]*)$", name)` splits it: group 1 is the key
///    (directories included, up to the first `.` of the basename), group 2 the extension, which
///    is lower-cased with Python's `str.lower()`. No match: not a member.
///
/// The regular expressions are not run: their outcome is decided from a few positions in the
/// name (see `keyLength(_:)`), with Python's semantics (`.` does not match `\n`, `$` also matches
/// before a final `\n`, greedy matching with backtracking).
///
/// ```swift
/// WebDatasetName.classify(Array("a/b.c/x.seg.PNG".utf8))
/// // .member(key: Array("a/b.c/x".utf8), ext: Array("seg.png".utf8))
/// WebDatasetName.classify(Array("README".utf8))   // .noMatch
/// WebDatasetName.classify(Array("__meta__".utf8)) // .metadata
/// ```
public enum WebDatasetName {
    /// What a member name is to webdataset.
    public enum Classification: Equatable, Sendable {
        /// A sample member: its key and its lower-cased extension (may be empty, may hold dots).
        case member(key: [UInt8], ext: [UInt8])
        /// A `__…__` name, which webdataset skips as metadata.
        case metadata
        /// A name the key rule does not match (no `.` in the basename, or only a leading one).
        case noMatch
    }

    /// Classifies a member name (raw bytes, as in the tar header).
    ///
    /// Only the name is judged: callers apply it to regular files only, as webdataset does.
    ///
    /// ```swift
    /// WebDatasetName.classify(Array("dir/.hidden.txt".utf8))
    /// // .member(key: Array("dir/".utf8), ext: Array("hidden.txt".utf8))
    /// ```
    ///
    /// - Complexity: O(n) in the name's length.
    public static func classify(_ name: [UInt8]) -> Classification {
        name.withUnsafeBufferPointer { bytes in
            if isMetadata(bytes) { return .metadata }
            guard let dot = keyLength(bytes) else { return .noMatch }
            return .member(
                key: Array(bytes[..<dot]),
                ext: pythonLowercased(UnsafeBufferPointer(rebasing: bytes[(dot + 1)...])))
        }
    }

    private static let slash = UInt8(ascii: "/")
    private static let dot = UInt8(ascii: ".")
    private static let newline = UInt8(ascii: "\n")
    private static let underscore = UInt8(ascii: "_")

    /// webdataset's two metadata tests: no `/`, starts and ends with `__` (overlap allowed, so
    /// `__` and `___` count); or `re.match(r"__[^/]*__($|/)", name)`.
    static func isMetadata(_ s: UnsafeBufferPointer<UInt8>) -> Bool {
        let n = s.count
        guard n >= 2, s[0] == underscore, s[1] == underscore else { return false }
        let firstSlash = s.firstIndex(of: slash) ?? n
        // Rule 1 (its `$` case too: the match then ends the name).
        if firstSlash == n, s[n - 2] == underscore, s[n - 1] == underscore { return true }
        // `[^/]*` cannot pass the first slash, so the closing `__` ends right before it (`/`)...
        if firstSlash >= 4, s[firstSlash - 2] == underscore, s[firstSlash - 1] == underscore {
            return true
        }
        // ...or right before a final newline (`$`).
        return firstSlash == n && n >= 5 && s[n - 1] == newline && s[n - 3] == underscore
            && s[n - 2] == underscore
    }

    /// The index of the `.` between key and extension, or nil when
    /// `^((?:.*/|)[^.]+)[.]([^/]*)$` does not match.
    ///
    /// Whatever alternative the regex settles on, `[.]` must be the first dot after the last
    /// slash (`D`): `[^.]+` runs to the first dot after where it starts, and the extension may not
    /// hold a slash. A start `a` for `[^.]+` works when no dot lies in `a...lastSlash` (so
    /// `a > P`, the last dot before the last slash) and `[^.]+` is not empty there. The starts
    /// on offer are 0 (the empty alternative) and one past each slash that `.*` reaches (slashes
    /// before the first newline).
    static func keyLength(_ s: UnsafeBufferPointer<UInt8>) -> Int? {
        let n = s.count
        var lastSlash = -1
        var firstNewline = n
        for i in 0..<n {
            if s[i] == slash {
                lastSlash = i
            } else if s[i] == newline, firstNewline == n {
                firstNewline = i
            }
        }
        var separator = lastSlash + 1
        while separator < n, s[separator] != dot { separator += 1 }
        guard separator < n else { return nil }

        var lastDotBeforeSlash = lastSlash - 1
        while lastDotBeforeSlash >= 0, s[lastDotBeforeSlash] != dot { lastDotBeforeSlash -= 1 }

        // Start 0 works when no dot lies before the last slash and `[^.]+` is not empty; when it
        // fails that way there is no slash at all, so no other start either.
        if lastDotBeforeSlash < 0 { return lastSlash >= 0 || separator > 0 ? separator : nil }
        // Otherwise a slash after that dot, reached by `.*`; the last slash itself only works
        // when the basename does not start with a dot.
        var slashAfterDot = lastDotBeforeSlash + 1
        while slashAfterDot < n, s[slashAfterDot] != slash { slashAfterDot += 1 }
        guard slashAfterDot < firstNewline else { return nil }
        if slashAfterDot < lastSlash || separator > lastSlash + 1 { return separator }
        return nil
    }

    // MARK: - Python's str.lower()

    /// Python's `str.lower()` on the bytes decoded with `surrogateescape`, encoded back the same
    /// way: valid UTF-8 is lower-cased with Unicode's full mappings and the Final_Sigma rule;
    /// bytes that are not valid UTF-8 pass through unchanged.
    ///
    /// - Complexity: O(n).
    static func pythonLowercased(_ bytes: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        if !bytes.contains(where: { $0 >= 0x80 }) {
            return bytes.map { $0 &- UInt8(ascii: "A") < 26 ? $0 | 0x20 : $0 }
        }
        let units = decodeSurrogateEscape(bytes)
        var result: [UInt8] = []
        result.reserveCapacity(bytes.count)
        for (index, unit) in units.enumerated() {
            switch unit {
            case .byte(let byte):
                result.append(byte)
            case .scalar(let scalar) where scalar.value == 0x3a3:
                let sigma: Unicode.Scalar = isFinalSigma(units, at: index) ? "\u{3c2}" : "\u{3c3}"
                result.append(contentsOf: String(sigma).utf8)
            case .scalar(let scalar):
                result.append(contentsOf: scalar.properties.lowercaseMapping.utf8)
            }
        }
        return result
    }

    /// One decoded unit: a scalar from valid UTF-8, or a byte Python escapes as a lone surrogate.
    enum DecodedUnit {
        case scalar(Unicode.Scalar)
        case byte(UInt8)
    }

    /// Decodes like Python's `bytes.decode("utf-8", "surrogateescape")`: every byte that does
    /// not belong to a well-formed sequence becomes a unit of its own.
    static func decodeSurrogateEscape(_ bytes: UnsafeBufferPointer<UInt8>) -> [DecodedUnit] {
        var units: [DecodedUnit] = []
        units.reserveCapacity(bytes.count)
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var position = 0
        loop: while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded):
                units.append(.scalar(Unicode.UTF8.decode(encoded)))
                position += encoded.count
            case .error(let length):
                // Swift reports maximal subparts, as Python's decoder does: each of their bytes
                // is escaped.
                for offset in 0..<length { units.append(.byte(bytes[position + offset])) }
                position += length
            case .emptyInput:
                break loop
            }
        }
        return units
    }

    /// Python's Final_Sigma test for a capital sigma at `index`: a cased letter before it and
    /// none after it, skipping case-ignorable characters (escaped bytes are neither).
    static func isFinalSigma(_ units: [DecodedUnit], at index: Int) -> Bool {
        func properties(_ unit: DecodedUnit) -> (cased: Bool, ignorable: Bool) {
            guard case .scalar(let scalar) = unit else { return (false, false) }
            return (scalar.properties.isCased, scalar.properties.isCaseIgnorable)
        }
        var before = index - 1
        while before >= 0, properties(units[before]).ignorable { before -= 1 }
        guard before >= 0, properties(units[before]).cased else { return false }
        var after = index + 1
        while after < units.count, properties(units[after]).ignorable { after += 1 }
        return after == units.count || !properties(units[after]).cased
    }
}
