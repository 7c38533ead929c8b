#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// How much memory this process may use, as read from the system by ``MemoryProbe/read(root:environment:)``.
///
/// Every figure is in bytes and is nil when it could not be read (no such file, no limit set).
///
/// ```swift
/// let figures = MemoryFigures(memAvailable: 8 << 30, cgroupLimit: 2 << 30, cgroupUsage: 1 << 30)
/// figures.available        // 1 GiB: the cgroup's headroom is smaller than MemAvailable
/// figures.availableSource  // .cgroup
/// ```
public struct MemoryFigures: Sendable, Equatable {
    /// `MemAvailable` from `/proc/meminfo`: what the kernel estimates can be allocated without swapping.
    public var memAvailable: Int64?
    /// The tightest cgroup memory limit (`memory.max` in v2, `memory.limit_in_bytes` in v1), nil when unlimited.
    public var cgroupLimit: Int64?
    /// The usage (`memory.current` / `memory.usage_in_bytes`) of the cgroup level that set ``cgroupLimit``.
    public var cgroupUsage: Int64?
    /// The `SHARDSTORE_MEMORY_LIMIT` override, which replaces every other figure when set.
    public var override: Int64?
    /// What set ``override``, as reasons name it: `SHARDSTORE_MEMORY_LIMIT`, or a command-line
    /// option such as `--memory-limit`.
    public var overrideName: String = MemoryProbe.overrideVariable

    /// Makes figures from known values; nil means unknown or unlimited.
    public init(
        memAvailable: Int64? = nil, cgroupLimit: Int64? = nil, cgroupUsage: Int64? = nil, override: Int64? = nil
    ) {
        self.memAvailable = memAvailable
        self.cgroupLimit = cgroupLimit
        self.cgroupUsage = cgroupUsage
        self.override = override
    }

    /// The bytes this process may still allocate: the override when set, otherwise the smaller of
    /// ``memAvailable`` and ``cgroupLimit`` minus ``cgroupUsage`` (never negative), ignoring unknown
    /// figures; nil when nothing is known.
    ///
    /// - Complexity: O(1).
    public var available: Int64? { resolved?.bytes }

    /// Which figure ``available`` came from; nil when nothing is known.
    public var availableSource: MemorySource? { resolved?.source }

    private var resolved: (bytes: Int64, source: MemorySource)? {
        if let override { return (override, .override) }
        let headroom = cgroupLimit.map { limit in max(0, limit - max(0, cgroupUsage ?? 0)) }
        switch (memAvailable, headroom) {
        case (nil, nil): return nil
        case (let host?, nil): return (host, .memAvailable)
        case (nil, let cgroup?): return (cgroup, .cgroup)
        case (let host?, let cgroup?): return host <= cgroup ? (host, .memAvailable) : (cgroup, .cgroup)
        }
    }
}

/// Where ``MemoryFigures/available`` came from.
public enum MemorySource: Sendable, Equatable {
    /// The `SHARDSTORE_MEMORY_LIMIT` environment variable.
    case override
    /// `MemAvailable` in `/proc/meminfo`.
    case memAvailable
    /// A cgroup limit minus that cgroup's usage.
    case cgroup
}

/// A memory size that could not be parsed, such as a bad `SHARDSTORE_MEMORY_LIMIT`.
///
/// ```swift
/// // SHARDSTORE_MEMORY_LIMIT='2X' is not a memory size: unknown unit 'X'; use a byte count or a
/// // number with K, M, G or T (such as 512M, 2G or 1.5GiB)
/// ```
public struct MemorySizeError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The text that was parsed.
    public var text: String
    /// What is wrong with it.
    public var problem: String
    /// The environment variable it came from, if any.
    public var variable: String?

    /// Makes the error.
    public init(text: String, problem: String, variable: String? = nil) {
        self.text = text
        self.problem = problem
        self.variable = variable
    }

    public var description: String {
        let subject = variable.map { "\($0)='\(text)'" } ?? "'\(text)'"
        return "\(subject) is not a memory size: \(problem); use a byte count or a number with K, M, G or T "
            + "(such as 512M, 2G or 1.5GiB)"
    }
}

/// Reads how much memory this process may use: `MemAvailable`, the cgroup (v2 or v1) limit and
/// usage, and the `SHARDSTORE_MEMORY_LIMIT` override.
///
/// ```swift
/// let figures = try MemoryProbe.read()
/// if let bytes = figures.available { /* choose a loading strategy */ }
/// ```
public enum MemoryProbe {
    /// The environment variable that overrides every measured figure, such as `512M` or `2G`.
    public static let overrideVariable = "SHARDSTORE_MEMORY_LIMIT"

    /// Limits at or above this (2^62) are cgroup v1's "unlimited" (the page counter's maximum).
    static let v1Unlimited: Int64 = 1 << 62

    /// The variables ``read(root:environment:)`` looks at, taken from this process (`getenv`).
    public static var processEnvironment: [String: String] {
        guard let value = getenv(overrideVariable) else { return [:] }
        return [overrideVariable: String(cString: value)]
    }

    /// Reads the memory figures under `root` (a fake root in tests; `/` normally).
    ///
    /// - `MemAvailable` from `<root>/proc/meminfo` (kB, converted to bytes).
    /// - cgroup v2: the `0::/path` line of `<root>/proc/self/cgroup`, then `memory.max` ("max" is
    ///   unlimited) and `memory.current` in `<root>/sys/fs/cgroup/<path>` and every parent up to the
    ///   hierarchy's root; the level with the least headroom (limit minus usage) wins.
    /// - cgroup v1, when v2 sets no limit: `memory.limit_in_bytes` and `memory.usage_in_bytes` in
    ///   `<root>/sys/fs/cgroup/memory/<path>` and its parents (values of 2^62 or more are unlimited).
    /// - `SHARDSTORE_MEMORY_LIMIT` in `environment` (see ``parseSize(_:)``), recorded as ``MemoryFigures/override``.
    ///
    /// Missing or unreadable files leave their figures nil; they are never an error.
    ///
    /// ```swift
    /// let figures = try MemoryProbe.read(root: "/tmp/fake-root", environment: [:])
    /// ```
    ///
    /// - Throws: ``MemorySizeError`` naming `SHARDSTORE_MEMORY_LIMIT` when it is set but not a size.
    /// - Complexity: O(d) small file reads, where d is the depth of the cgroup path.
    public static func read(root: String = "/", environment: [String: String] = processEnvironment)
        throws(MemorySizeError) -> MemoryFigures
    {
        var figures = MemoryFigures()
        if let text = environment[overrideVariable] {
            do throws(MemorySizeError) {
                figures.override = try parseSize(text)
            } catch var error {
                error.variable = overrideVariable
                throw error
            }
        }
        var base = root
        while base.hasSuffix("/") { base.removeLast() }
        figures.memAvailable = readText(base + "/proc/meminfo").flatMap(parseMemAvailable)
        let membership = readText(base + "/proc/self/cgroup").map(parseCgroupMembership) ?? (v2: [], v1: [])
        var best: (limit: Int64, usage: Int64?)?
        for path in membership.v2 {
            best = tightest(best, cgroupLimit(base + "/sys/fs/cgroup", path, "memory.max", "memory.current"))
        }
        if best == nil {
            let v1Paths = membership.v1.isEmpty ? [""] : membership.v1
            for path in v1Paths {
                best = tightest(
                    best,
                    cgroupLimit(base + "/sys/fs/cgroup/memory", path, "memory.limit_in_bytes", "memory.usage_in_bytes"))
            }
        }
        figures.cgroupLimit = best?.limit
        figures.cgroupUsage = best?.usage
        return figures
    }

    /// Parses a memory size: a whole byte count (`1048576`) or a number with a binary unit, where
    /// K = 1024, M = 1024², G = 1024³ and T = 1024⁴; the unit may be followed by `B` or `iB` and is
    /// case-insensitive (`512M`, `512mb`, `2G`, `1.5GiB`, `64 KiB`). A fraction is rounded down to a
    /// whole byte.
    ///
    /// ```swift
    /// try MemoryProbe.parseSize("1.5GiB")  // 1_610_612_736
    /// ```
    ///
    /// - Throws: ``MemorySizeError`` when the text is empty, negative, zero, not a number, has an
    ///   unknown unit, is a fractional byte count, or is larger than `Int64.max`.
    /// - Complexity: O(n) in the length of `text`.
    public static func parseSize(_ text: String) throws(MemorySizeError) -> Int64 {
        func fail(_ problem: String) -> MemorySizeError { MemorySizeError(text: text, problem: problem) }
        let chars = Array(trimmed(text).utf8)
        if chars.isEmpty { throw fail("it is empty") }
        if chars[0] == UInt8(ascii: "-") { throw fail("it is negative") }
        var i = 0
        var whole: Int64 = 0
        var tooLarge = false
        while i < chars.count, isDigit(chars[i]) {
            let (times, o1) = whole.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times.addingReportingOverflow(Int64(chars[i] - UInt8(ascii: "0")))
            if o1 || o2 { tooLarge = true }
            whole = sum
            i += 1
        }
        let wholeDigits = i
        var fraction = 0.0
        var fractionDigits = 0
        if i < chars.count, chars[i] == UInt8(ascii: ".") {
            i += 1
            var scale = 0.1
            while i < chars.count, isDigit(chars[i]) {
                fraction += Double(chars[i] - UInt8(ascii: "0")) * scale
                scale /= 10
                fractionDigits += 1
                i += 1
            }
        }
        if wholeDigits == 0 && fractionDigits == 0 { throw fail("it does not start with a number") }
        while i < chars.count, chars[i] == UInt8(ascii: " ") { i += 1 }
        let unitText = String(decoding: chars[i...], as: UTF8.self)
        let multiplier: Int64
        switch unitText.lowercased() {
        case "", "b": multiplier = 1
        case "k", "kb", "kib": multiplier = 1 << 10
        case "m", "mb", "mib": multiplier = 1 << 20
        case "g", "gb", "gib": multiplier = 1 << 30
        case "t", "tb", "tib": multiplier = 1 << 40
        default: throw fail("unknown unit '\(unitText)'")
        }
        if multiplier == 1 && fraction > 0 { throw fail("a byte count must be a whole number") }
        let (scaled, o1) = whole.multipliedReportingOverflow(by: multiplier)
        let (total, o2) = scaled.addingReportingOverflow(Int64((fraction * Double(multiplier)).rounded(.down)))
        if tooLarge || o1 || o2 { throw fail("it is larger than \(Int64.max) bytes") }
        if total == 0 { throw fail("it is zero") }
        return total
    }

    // MARK: - Parsing the system files

    /// `MemAvailable:   24321200 kB` -> bytes.
    static func parseMemAvailable(_ meminfo: String) -> Int64? {
        for line in meminfo.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let fields = line.dropFirst("MemAvailable:".count).split(separator: " ")
            guard let number = fields.first.flatMap({ Int64($0) }), number >= 0 else { return nil }
            let unit = fields.count > 1 ? fields[1].lowercased() : ""
            let (bytes, overflow) = number.multipliedReportingOverflow(by: unit == "kb" ? 1024 : 1)
            return overflow ? nil : bytes
        }
        return nil
    }

    /// The cgroup v2 paths (`0::/path`) and the v1 paths of hierarchies with the memory controller.
    static func parseCgroupMembership(_ text: String) -> (v2: [String], v1: [String]) {
        var v2: [String] = []
        var v1: [String] = []
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            let path = String(parts[2])
            if parts[0] == "0" && parts[1].isEmpty {
                v2.append(path)
            } else if parts[1].split(separator: ",").contains("memory") {
                v1.append(path)
            }
        }
        return (v2, v1)
    }

    /// The least headroom of `path` under `mount` and its parents, or nil when no level sets a limit.
    private static func cgroupLimit(_ mount: String, _ path: String, _ limitFile: String, _ usageFile: String)
        -> (limit: Int64, usage: Int64?)?
    {
        var best: (limit: Int64, usage: Int64?)?
        var components = path.split(separator: "/").filter { $0 != "." && $0 != ".." }
        while true {
            let directory = mount + components.reduce("") { $0 + "/" + $1 }
            if let text = readText(directory + "/" + limitFile), let limit = Int64(trimmed(text)), limit >= 0,
                limit < v1Unlimited
            {
                let usage = readText(directory + "/" + usageFile).flatMap { Int64(trimmed($0)) }
                best = tightest(best, (limit, usage))
            }
            if components.isEmpty { break }
            components.removeLast()
        }
        return best
    }

    /// Whichever of two limits leaves less headroom.
    private static func tightest(_ a: (limit: Int64, usage: Int64?)?, _ b: (limit: Int64, usage: Int64?)?)
        -> (limit: Int64, usage: Int64?)?
    {
        guard let a else { return b }
        guard let b else { return a }
        return b.limit - (b.usage ?? 0) < a.limit - (a.usage ?? 0) ? b : a
    }

    /// This process's peak resident set size in bytes: `VmHWM` from `/proc/self/status`, the
    /// high-water mark of this program's memory; nil when it cannot be read. (`ru_maxrss` is no
    /// substitute: Linux carries it across `execve`, so a process started from a large parent
    /// reports the parent's size.)
    ///
    /// ```swift
    /// let peak = MemoryProbe.peakResidentBytes()  // 32_505_856
    /// ```
    ///
    /// - Complexity: one small file read.
    public static func peakResidentBytes() -> Int64? {
        guard let status = readText("/proc/self/status") else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            return Int64(String(line.dropFirst(6).filter(\.isNumber))).map { $0 * 1024 }
        }
        return nil
    }

    /// The whole of a small file (up to 1 MiB) as text, or nil when it cannot be read.
    static func readText(_ path: String) -> String? {
        let fd = path.withCString { open($0, O_RDONLY | O_CLOEXEC) }
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 1 << 20 {
            let n = chunk.withUnsafeMutableBytes { systemRead(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                bytes += chunk[..<n]
            } else if n == 0 {
                break
            } else if currentErrno() != EINTR {
                return nil
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }

    private static func trimmed(_ text: String) -> Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let first = text.firstIndex(where: { !isSpace($0) }) else { return "" }
        let last = text.lastIndex(where: { !isSpace($0) })!
        return text[first...last]
    }
}

/// `read(2)`, named so that it does not clash with ``MemoryProbe/read(root:environment:)``.
private func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    #if canImport(Glibc)
        return Glibc.read(fd, buffer, count)
    #elseif canImport(Musl)
        return Musl.read(fd, buffer, count)
    #else
        return Darwin.read(fd, buffer, count)
    #endif
}
