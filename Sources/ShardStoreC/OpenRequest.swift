import CShardStoreABI
import ShardCore
import ShardIO
import ShardLoader

/// What `shardstore_open` was asked for, read and checked from its C arguments: every string is
/// valid UTF-8, every name known, every pointer that must be set is set.
struct OpenRequest {
    var path: String
    var split: String?
    var extensions: [String]?
    var strategy: LoadingStrategy
    var options: Dataset.Options

    /// Reads `path` and `options` (nil: the defaults).
    ///
    /// Options from a caller built against ABI version 1 (a `struct_size` that ends before
    /// `cache_dir`) are read as far as they go; the later fields count as NULL.
    ///
    /// - Throws: ``DatasetError`` (`.invalidArgument`) naming the field that is wrong;
    ///   `MemorySizeError` for a `memory_limit` or `cache_limit` that is not a size.
    init(path: UnsafePointer<CChar>?, options: UnsafePointer<shardstore_open_options>?) throws {
        guard let path else { throw DatasetError(.invalidArgument, "index_path is NULL; pass the index file's path") }
        self.path = try Self.text(path, field: "index_path")
        guard let options else {
            split = nil
            extensions = nil
            strategy = .auto
            self.options = Dataset.Options()
            return
        }
        let size = Int(options.pointee.struct_size)
        let full = MemoryLayout<shardstore_open_options>.size
        // Version 1's struct ends where cache_dir starts.
        let first = MemoryLayout<shardstore_open_options>.offset(of: \.cache_dir)!
        guard size >= first else {
            throw DatasetError(
                .invalidArgument,
                "options->struct_size is \(size), less than the \(first) bytes of shardstore_open_options in ABI version 1 (\(full) in version \(SHARDSTORE_ABI_VERSION)); fill the options with shardstore_open_options_init() first"
            )
        }
        // Only the bytes the caller has: the fields after them stay zero (NULL).
        var o = shardstore_open_options()
        withUnsafeMutableBytes(of: &o) {
            $0.copyMemory(from: UnsafeRawBufferPointer(start: options, count: min(size, full)))
        }
        split = try o.split.map { try Self.text($0, field: "options->split") }
        extensions = try Self.extensions(o.extensions, count: o.extension_count)
        strategy = try Self.strategy(o.strategy)
        var settings = Dataset.Options(lookup: try Self.lookup(o.lookup), verifiesHeaders: o.verify_headers != 0)
        if let limit = o.memory_limit {
            var figures = try MemoryProbe.read()
            do {
                figures.override = try MemoryProbe.parseSize(try Self.text(limit, field: "options->memory_limit"))
            } catch var error as MemorySizeError {
                error.variable = "options->memory_limit"
                throw error
            }
            figures.overrideName = "options->memory_limit"
            settings.memory = figures
        }
        settings.cacheDirectory = try o.cache_dir.map { try Self.text($0, field: "options->cache_dir") }
        if let limit = o.cache_limit {
            do {
                settings.cacheLimit = try MemoryProbe.parseSize(try Self.text(limit, field: "options->cache_limit"))
            } catch var error as MemorySizeError {
                error.variable = "options->cache_limit"
                throw error
            }
        }
        self.options = settings
    }

    /// Opens the dataset.
    ///
    /// - Throws: what ``Dataset/init(index:split:extensions:strategy:options:)`` throws.
    func open() throws -> Dataset {
        try Dataset(index: path, split: split, extensions: extensions, strategy: strategy, options: options)
    }

    private static func text(_ pointer: UnsafePointer<CChar>, field: String) throws -> String {
        guard let text = String(validatingCString: pointer) else {
            throw DatasetError(.invalidArgument, "\(field) is not valid UTF-8; pass UTF-8 text")
        }
        return text
    }

    private static func extensions(_ list: UnsafePointer<UnsafePointer<CChar>?>?, count: Int) throws -> [String]? {
        guard let list else {
            guard count == 0 else {
                throw DatasetError(
                    .invalidArgument,
                    "options->extensions is NULL but options->extension_count is \(count); pass the extensions, or NULL with a count of 0 to read every member"
                )
            }
            return nil
        }
        guard count > 0 else {
            throw DatasetError(
                .invalidArgument,
                "options->extension_count is \(count) but options->extensions is not NULL; pass at least one extension, or NULL to read every member"
            )
        }
        return try (0..<count).map { i in
            guard let ext = list[i] else {
                throw DatasetError(
                    .invalidArgument, "options->extensions[\(i)] is NULL; pass an extension such as \"jpg\"")
            }
            return try text(ext, field: "options->extensions[\(i)]")
        }
    }

    private static func strategy(_ name: UnsafePointer<CChar>?) throws -> LoadingStrategy {
        guard let name else { return .auto }
        let text = try text(name, field: "options->strategy")
        guard let strategy = LoadingStrategy(rawValue: text) else {
            throw DatasetError(
                .invalidArgument,
                "unknown strategy '\(MessageText.escaped(text))' in options->strategy; use auto, memory, mmap or pread")
        }
        return strategy
    }

    private static func lookup(_ name: UnsafePointer<CChar>?) throws -> Dataset.LookupMode {
        guard let name else { return .auto }
        let text = try text(name, field: "options->lookup")
        switch text {
        case "auto": return .auto
        case "table": return .table
        case "file": return .file
        case "statements": return .statements
        default:
            throw DatasetError(
                .invalidArgument,
                "unknown lookup '\(MessageText.escaped(text))' in options->lookup; use auto, table, file or statements")
        }
    }
}
