import ShardStore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Output helpers: buffered stdout (text and bytes), stderr messages, and human-readable numbers.
enum Terminal {
    /// Whether stderr is a terminal (progress is drawn only then).
    static var stderrIsTerminal: Bool { isatty(2) == 1 }

    nonisolated(unsafe) private static var buffer: [UInt8] = {
        var b: [UInt8] = []
        b.reserveCapacity(1 << 16)
        return b
    }()
    nonisolated(unsafe) private static var writeError: Int32 = 0
    nonisolated(unsafe) private static var progressShown = false

    /// Writes `text` and a newline to stdout.
    static func line(_ text: String) {
        write(text: text)
        buffer.append(UInt8(ascii: "\n"))
        if buffer.count >= 1 << 16 { drain() }
    }

    /// Writes `text` to stdout.
    static func write(text: String) {
        buffer.append(contentsOf: text.utf8)
        if buffer.count >= 1 << 16 { drain() }
    }

    /// Writes raw bytes to stdout.
    static func write(bytes: UnsafeRawBufferPointer) {
        if bytes.count >= 1 << 16 {
            drain()
            writeAll(1, bytes)
        } else {
            buffer.append(contentsOf: bytes)
            if buffer.count >= 1 << 16 { drain() }
        }
    }

    /// Whether a write to stdout failed (a closed pipe, a full disk): long output can stop early.
    static var failed: Bool { writeError != 0 }

    /// Writes what is buffered; a write error (a closed pipe, a full disk) becomes an error.
    static func flush() throws {
        drain()
        if writeError != 0 { throw IOError("write", path: "<stdout>", errno: writeError) }
    }

    private static func drain() {
        buffer.withUnsafeBytes { writeAll(1, $0) }
        buffer.removeAll(keepingCapacity: true)
    }

    private static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) {
        var done = 0
        while done < bytes.count, writeError == 0 || fd != 1 {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if Glibc.errno == EINTR { continue }
                if fd == 1 { writeError = Glibc.errno }
                return
            }
            done += n
        }
    }

    private static func stderrWrite(_ text: String) {
        var t = text
        t.withUTF8 { writeAll(2, UnsafeRawBufferPointer($0)) }
    }

    /// `error`'s message with the options it suggests as this tool's flags (`--lookup table`):
    /// library errors speak the API's words (`lookup 'table'`).
    static func message(for error: any Error) -> String {
        switch error {
        case let error as DatasetError: error.message(.commandLine)
        case let error as IndexError: error.message(.commandLine)
        default: String(describing: error)
        }
    }

    /// `shardstore: error: MESSAGE` on stderr, on one line.
    static func error(_ message: String) {
        clearProgress()
        stderrLine("shardstore: error: \(message)")
    }

    /// A line on stderr. Control characters in `text` (a line break in a key or a path that got
    /// into a message) are escaped, so one message is always one line.
    static func stderrLine(_ text: String) {
        clearProgress()
        stderrWrite(MessageText.escaped(text) + "\n")
    }

    /// Redraws the one-line progress display on stderr.
    static func progress(_ text: String) {
        stderrWrite("\r\u{1B}[K" + text)
        progressShown = true
    }

    /// Erases the progress line, if one is shown.
    static func clearProgress() {
        if progressShown {
            stderrWrite("\r\u{1B}[K")
            progressShown = false
        }
    }
}

/// Number formatting for summaries.
enum Format {
    /// `1234567` -> `1,234,567`.
    static func count<I: BinaryInteger>(_ n: I) -> String {
        let s = String(n.magnitude)
        var out = ""
        for (i, c) in s.enumerated() {
            if i > 0 && (s.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return (n < 0 ? "-" : "") + out
    }

    /// `1 sample`, `2 samples`: a count with its noun, pluralised with `s`.
    static func count<I: BinaryInteger>(_ n: I, _ noun: String) -> String {
        count(n) + " " + noun + (n == 1 ? "" : "s")
    }

    /// Bytes in decimal units: `2.41 GB`.
    static func bytes(_ n: Int64) -> String {
        let units = ["B", "kB", "MB", "GB", "TB", "PB"]
        var v = Double(n)
        var u = 0
        while v >= 1000, u < units.count - 1 {
            v /= 1000
            u += 1
        }
        return u == 0 ? "\(n) B" : fixed(v, v < 10 ? 2 : v < 100 ? 1 : 0) + " " + units[u]
    }

    /// `v` with `digits` decimals.
    static func fixed(_ v: Double, _ digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let r = (v * scale).rounded() / scale
        var s = String(r)
        if let dot = s.firstIndex(of: ".") {
            let decimals = s.distance(from: s.index(after: dot), to: s.endIndex)
            if digits == 0 {
                s = String(s[..<dot])
            } else if decimals < digits {
                s += String(repeating: "0", count: digits - decimals)
            }
        }
        return s
    }
}

/// Small JSON object builder for `--json` outputs (keys in insertion order).
struct JSONObject {
    private var fields: [String] = []

    mutating func add(_ key: String, _ raw: String) { fields.append(JSON.quote(key) + ": " + raw) }
    mutating func add(_ key: String, string: String?) { add(key, string.map(JSON.quote) ?? "null") }
    mutating func add<I: BinaryInteger>(_ key: String, int: I) { add(key, String(int)) }
    mutating func add(_ key: String, double: Double) { add(key, double.isFinite ? String(double) : "null") }
    mutating func add(_ key: String, bool: Bool) { add(key, bool ? "true" : "false") }

    var text: String { "{" + fields.joined(separator: ", ") + "}" }

    static func array(_ items: [String]) -> String { "[" + items.joined(separator: ", ") + "]" }
}

/// Lets a progress display redraw at most ten times a second, and always for the last event.
final class ProgressThrottle: Sendable {
    private let last = Mutex<Double>(-1)

    /// Whether to draw the event at `seconds`; `final` (the work is done) always draws.
    func shouldDraw(at seconds: Double, final: Bool) -> Bool {
        last.withLock { t in
            guard seconds - t >= 0.1 || final else { return false }
            t = seconds
            return true
        }
    }
}
