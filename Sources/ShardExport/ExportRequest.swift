import ShardIO
import ShardLoader

/// What to export: which index, which splits and extensions, and where to.
///
/// ```swift
/// let request = ExportRequest(index: "ds/index.sqlite", out: "train.h5", splits: ["train"], extensions: ["npy"])
/// ```
public struct ExportRequest: Sendable {
    /// The index file.
    public var index: String
    /// The destination: a file for HDF5, a folder for raw exports.
    public var out: String
    /// The splits to export, in this order; empty exports the whole dataset.
    public var splits: [String]
    /// The extensions to export; nil exports every extension.
    public var extensions: [String]?
    /// Replace an existing destination.
    public var overwrite: Bool
    /// How member bytes are read (see `Dataset`); `.auto` picks from available memory.
    public var strategy: LoadingStrategy
    /// Dataset options (memory figures, lookup).
    public var options: Dataset.Options

    public init(
        index: String, out: String, splits: [String] = [], extensions: [String]? = nil, overwrite: Bool = false,
        strategy: LoadingStrategy = .auto, options: Dataset.Options = Dataset.Options()
    ) {
        self.index = index
        self.out = out
        self.splits = splits
        self.extensions = extensions
        self.overwrite = overwrite
        self.strategy = strategy
        self.options = options
    }
}

/// What an export wrote.
public struct ExportReport: Sendable {
    /// The published destination.
    public var out: String
    /// Samples written (each sample once, however many splits hold it).
    public var samples: Int
    /// Members written.
    public var members: Int
    /// Member bytes read from the shards.
    public var bytesRead: Int64
    /// Bytes of the published output.
    public var bytesWritten: Int64
    /// The HDF5 datasets, or the raw files and folders, written at the top level, in order.
    public var entries: [String]
    /// How member bytes were read, and why.
    public var choice: StrategyChoice
    /// Wall-clock seconds, from start to publish.
    public var seconds: Double

    public init(
        out: String, samples: Int, members: Int, bytesRead: Int64, bytesWritten: Int64, entries: [String],
        choice: StrategyChoice, seconds: Double
    ) {
        self.out = out
        self.samples = samples
        self.members = members
        self.bytesRead = bytesRead
        self.bytesWritten = bytesWritten
        self.entries = entries
        self.choice = choice
        self.seconds = seconds
    }
}
