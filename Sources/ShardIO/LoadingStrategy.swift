/// How sample bytes are brought in from the shards.
///
/// ```swift
/// let strategy = LoadingStrategy(rawValue: "mmap")  // .mmap
/// ```
public enum LoadingStrategy: String, CaseIterable, Sendable {
    /// Pick one of the others from the memory available (see ``StrategyChoice/choose(requested:selectionBytes:tableBytes:memory:)``).
    case auto
    /// Read the selected bytes into RAM once: fastest, needs the RAM.
    case memory
    /// Map the shards read-only and return slices; the page cache holds the bytes and the kernel evicts them.
    case mmap
    /// One positioned read per sample into its own buffer: the floor for memory use.
    case pread
    /// For shards in object storage or on web servers: one range request per sample (its
    /// adjacent members with their headers), sent with the ETag recorded at ingest; local shards
    /// among them are read as `pread` reads them. What `auto` picks when a used shard is remote.
    case remote
}

/// The strategy picked for a dataset and why, in one sentence with the figures it was based on.
///
/// ```swift
/// let choice = StrategyChoice.choose(
///     requested: .auto, selectionBytes: 240_000_000, tableBytes: 0,
///     memory: MemoryFigures(memAvailable: 21_300_000_000))
/// choice.strategy  // .memory
/// choice.reason    // "memory: the selection needs 240 MB and 21.3 GB are available (MemAvailable); it fits in half"
/// ```
public struct StrategyChoice: Sendable, Equatable {
    /// The strategy to use; never ``LoadingStrategy/auto``.
    public var strategy: LoadingStrategy
    /// Why: `"requested"`, or a sentence starting with the strategy's name and giving the figures,
    /// in the API's words (see ``reason(_:)``).
    public var reason: String
    /// The option settings ``reason`` mentions (`lookup 'file'`), so that the CLI can name them as
    /// flags.
    public var mentions: [OptionSetting]

    /// Makes a choice; `strategy` must not be ``LoadingStrategy/auto``.
    public init(strategy: LoadingStrategy, reason: String, mentions: [OptionSetting] = []) {
        precondition(strategy != .auto, "a StrategyChoice names a concrete strategy, not auto")
        self.strategy = strategy
        self.reason = reason
        self.mentions = mentions
    }

    /// ``reason`` with the options it mentions in `style`: `"mmap: --lookup file keeps no location
    /// table, ..."` for the command line.
    ///
    /// ```swift
    /// print(dataset.choice.reason(.commandLine))
    /// ```
    ///
    /// - Complexity: O(reason length × mentions).
    public func reason(_ style: MessageStyle) -> String {
        OptionSetting.rendering(reason, in: style, mentions)
    }

    /// Below this much available memory (64 MiB) `auto` uses `pread` rather than `mmap`.
    public static let mmapFloor: Int64 = 64 << 20

    /// Picks the loading strategy.
    ///
    /// A `requested` strategy other than `auto` is kept, with the reason `"requested"`. For `auto`,
    /// with `needed = selectionBytes + tableBytes` and `available = memory.available`:
    /// - `memory` when `needed` is at most half of `available` (the other half is the margin for the
    ///   rest of the process and the system);
    /// - otherwise `mmap` when `available` is at least ``mmapFloor`` (64 MiB): mapped pages live in the
    ///   page cache and the kernel evicts them under pressure;
    /// - otherwise `pread`;
    /// - `mmap` when `available` is unknown (no figure could be read).
    ///
    /// Sizes in reasons are decimal (1 GB = 10⁹ bytes), as elsewhere in the CLI's output.
    ///
    /// ```swift
    /// let choice = StrategyChoice.choose(
    ///     requested: .auto, selectionBytes: 2_400_000_000, tableBytes: 0,
    ///     memory: MemoryFigures(cgroupLimit: 512_000_000, cgroupUsage: 256_000_000))
    /// // .mmap, "mmap: the selection needs 2.4 GB, more than half of the 256 MB this cgroup may still use"
    /// ```
    ///
    /// - Parameters:
    ///   - requested: what the caller asked for.
    ///   - selectionBytes: the bytes of the samples selected (not negative).
    ///   - tableBytes: the bytes of the in-memory sample table (not negative).
    ///   - memory: the figures from ``MemoryProbe/read(root:environment:)``.
    ///   - tableFits: false when the location table itself does not fit: `memory` is then never
    ///     chosen, and the reason names the table's size.
    ///   - withoutTable: why there is no location table for another cause than its size (the
    ///     caller chose another lookup, say "lookup 'file' keeps no location table"): `memory`,
    ///     which preloads through the table, is then never chosen, and the reason says so.
    ///   - mentioning: the option settings `withoutTable` mentions, kept in ``mentions``.
    /// - Complexity: O(1).
    public static func choose(
        requested: LoadingStrategy, selectionBytes: Int64, tableBytes: Int64, memory: MemoryFigures,
        tableFits: Bool = true, withoutTable: String? = nil, mentioning: [OptionSetting] = []
    ) -> StrategyChoice {
        precondition(selectionBytes >= 0 && tableBytes >= 0, "byte counts cannot be negative")
        if requested != .auto { return StrategyChoice(strategy: requested, reason: "requested") }
        if let withoutTable {
            var choice = chooseWithoutTable(withoutTable, memory: memory)
            choice.mentions = mentioning
            return choice
        }
        let (sum, overflow) = selectionBytes.addingReportingOverflow(tableBytes)
        let needed = overflow ? Int64.max : sum
        var needs = "the selection needs \(formatBytes(needed))"
        if !tableFits {
            // Without the location table there is nothing to preload into: never memory.
            needs = "the location table alone would need \(formatBytes(tableBytes))"
        }
        guard let available = memory.available, let source = memory.availableSource else {
            return StrategyChoice(
                strategy: .mmap,
                reason: "mmap: \(needs) and the available memory could not be determined "
                    + "(no MemAvailable, cgroup limit or \(MemoryProbe.overrideVariable)); the kernel can evict mapped pages"
            )
        }
        let amount = formatBytes(available)
        if tableFits, needed <= available / 2 {
            let have: String
            switch source {
            case .memAvailable: have = "\(amount) are available (MemAvailable)"
            case .cgroup: have = "this cgroup may still use \(amount)"
            case .override: have = "\(memory.overrideName) allows \(amount)"
            }
            return StrategyChoice(strategy: .memory, reason: "memory: \(needs) and \(have); it fits in half")
        }
        if available >= mmapFloor {
            let of: String
            switch source {
            case .memAvailable: of = "the \(amount) available (MemAvailable)"
            case .cgroup: of = "the \(amount) this cgroup may still use"
            case .override: of = "the \(amount) \(memory.overrideName) allows"
            }
            return StrategyChoice(strategy: .mmap, reason: "mmap: \(needs), more than half of \(of)")
        }
        let only: String
        switch source {
        case .memAvailable: only = "only \(amount) are available (MemAvailable)"
        case .cgroup: only = "this cgroup may only use \(amount) more"
        case .override: only = "\(memory.overrideName) allows only \(amount)"
        }
        return StrategyChoice(strategy: .pread, reason: "pread: \(needs) and \(only), under the 64 MiB floor for mmap")
    }

    /// mmap or pread when there is no location table to preload through.
    private static func chooseWithoutTable(_ why: String, memory: MemoryFigures) -> StrategyChoice {
        let lead = "\(why), which the memory strategy needs"
        guard let available = memory.available, let source = memory.availableSource else {
            return StrategyChoice(
                strategy: .mmap,
                reason:
                    "mmap: \(lead), and the available memory could not be determined; the kernel can evict mapped pages"
            )
        }
        let amount = formatBytes(available)
        let have: String
        switch source {
        case .memAvailable: have = "\(amount) are available (MemAvailable)"
        case .cgroup: have = "this cgroup may still use \(amount)"
        case .override: have = "\(memory.overrideName) allows \(amount)"
        }
        if available >= mmapFloor {
            return StrategyChoice(strategy: .mmap, reason: "mmap: \(lead); \(have), at least the 64 MiB floor for mmap")
        }
        return StrategyChoice(strategy: .pread, reason: "pread: \(lead); \(have), under the 64 MiB floor for mmap")
    }
}

/// Bytes in decimal units with one decimal below 100 (`2.4 GB`, `21.3 GB`, `240 MB`, `512 bytes`).
public func formatBytes(_ n: Int64) -> String {
    if n < 1000 { return n == 1 ? "1 byte" : "\(n) bytes" }
    let units = ["kB", "MB", "GB", "TB", "PB", "EB"]
    var value = Double(n) / 1000
    var unit = 0
    while value >= 999.5, unit < units.count - 1 {
        value /= 1000
        unit += 1
    }
    let tenths = Int((value * 10).rounded())
    if tenths < 1000 { return "\(tenths / 10).\(tenths % 10) \(units[unit])" }
    return "\(Int(value.rounded())) \(units[unit])"
}
