import ShardIO
import ShardIndex
import ShardLoader

extension ExportRequest {
    /// How an export reads member bytes: the strategy, why, and the dataset options.
    struct Reading {
        var choice: StrategyChoice
        var options: Dataset.Options
    }

    /// The strategy and lookup an export reads with. A requested strategy is kept. For `auto`:
    /// an export reads each selected member once or twice in shard order and keeps nothing, so
    /// preloading (what a `Dataset` picks when the selection fits in memory) would only add a
    /// copy; and
    /// - with `--ext` (some extensions only: the `.npy` arrays among the images), `pread` of just
    ///   those members, with the in-memory location table (16 bytes a member) when it takes less
    ///   than a quarter of the available memory, so that a sample costs one read; mapping the
    ///   shards would fault in (and map around) a page or more for every small member;
    /// - with every extension, `mmap`: the shards are read nearly whole, and mapping them avoids
    ///   a copy;
    /// - `pread` under ``StrategyChoice/mmapFloor`` of available memory.
    ///
    /// - Throws: `MemorySizeError` (a bad `SHARDSTORE_MEMORY_LIMIT`), `IndexError`, `SQLiteError`.
    func reading() throws -> Reading {
        var options = self.options
        guard strategy == .auto else {
            return Reading(choice: StrategyChoice(strategy: strategy, reason: "requested"), options: options)
        }
        let memory = try options.memory ?? MemoryProbe.read()
        options.memory = memory
        let available = memory.available
        if let available, available < StrategyChoice.mmapFloor {
            return Reading(
                choice: StrategyChoice(
                    strategy: .pread,
                    reason:
                        "pread: only \(available) bytes of memory are available, under the 64 MiB floor for mmap"),
                options: options)
        }
        guard let extensions, !extensions.isEmpty else {
            return Reading(
                choice: StrategyChoice(
                    strategy: .mmap,
                    reason:
                        "mmap: an export of every extension reads the shards nearly whole, once or twice in shard order, and keeps nothing, so the shards are mapped rather than preloaded"
                ),
                options: options)
        }
        if options.lookup == .auto {
            // In floating point: member counts come from disk and must not trap when damaged.
            let members = try IndexReader(path: index).shards().reduce(0.0) { $0 + Double(max($1.memberCount, 0)) }
            if let available, members * 24 <= Double(available) / 4 { options.lookup = .table }
        }
        let list = extensions.map { "." + $0 }.joined(separator: ", ")
        return Reading(
            choice: StrategyChoice(
                strategy: .pread,
                reason:
                    "pread: the export reads only the \(list) members, so it reads just those rather than mapping whole shards"
            ),
            options: options)
    }

    /// The paths an export reads, which it must not write over: the index, its journal, its
    /// location file, the shards (see `IndexFiles`).
    static func inputs(index: String, reader: IndexReader) throws -> [String] {
        try IndexFiles.all(index: index, reader: reader).map(\.path)
    }
}
