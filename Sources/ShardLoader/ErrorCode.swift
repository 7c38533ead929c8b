import ShardCompression
import ShardCore
import ShardIO
import ShardIndex
import ShardRemote

/// The kind of an error, as a stable number: the codes of the C ABI (`shardstore_status` in
/// `shardstore.h`), which the Python package turns into exception classes. A code keeps its number
/// and meaning in every ABI version.
///
/// ```swift
/// do {
///     _ = try dataset.sample(at: 10_000)
/// } catch {
///     ErrorCode(classifying: error)   // .outOfRange
/// }
/// ```
public enum ErrorCode: Int32, Sendable, CaseIterable {
    /// An argument is not valid (an unknown strategy, a bad memory limit, a combination that
    /// cannot work).
    case invalidArgument = 1
    /// No index file at the path.
    case indexNotFound = 2
    /// The path is not a readable index: a directory, an empty or non-SQLite file, a newer schema.
    case notAnIndex = 3
    /// A position outside `0..<count`.
    case outOfRange = 4
    /// No sample has this key (in the dataset or its split).
    case unknownKey = 5
    /// Several samples share this key.
    case ambiguousKey = 6
    /// No split with this name.
    case unknownSplit = 7
    /// No member has this extension.
    case unknownExtension = 8
    /// A shard changed, vanished or was truncated since ingest.
    case shardChanged = 9
    /// Stored data does not match the index (a member header, an index row).
    case corrupt = 10
    /// An operating-system error reading a file.
    case io = 11
    /// Another process is writing the index.
    case busy = 12
    /// Not enough memory for what was asked.
    case outOfMemory = 13
    /// Another SQLite error.
    case sqlite = 14
    /// A caller-provided array is too small.
    case bufferTooSmall = 15
    /// Anything else: a bug.
    case `internal` = 99

    /// The code for `error`, from its type and case.
    ///
    /// - Complexity: O(1).
    public init(classifying error: any Error) {
        switch error {
        case let e as DatasetError: self = e.code
        case let e as IndexError:
            switch e {
            case .indexNotFound: self = .indexNotFound
            case .indexIsDirectory: self = .notAnIndex
            case .indexOutOfRange: self = .outOfRange
            case .unknownKey, .keyNotInSplit: self = .unknownKey
            case .ambiguousKey: self = .ambiguousKey
            case .unknownSplit: self = .unknownSplit
            case .unknownExtension: self = .unknownExtension
            case .unknownMetadataKey: self = .unknownKey
            case .invalidArgument: self = .invalidArgument
            }
        case is SchemaError: self = .notAnIndex
        case is ShardChangedError: self = .shardChanged
        case is MemberHeaderError, is IndexRowError, is CompressedShardError, is DecompressionError: self = .corrupt
        case is IndexFileError: self = .busy
        case is MemorySizeError: self = .invalidArgument
        case is LoaderError, is SamplerError: self = .invalidArgument
        case let e as SQLiteError:
            switch e.code {
            case .busy: self = .busy
            case .notADatabase: self = .notAnIndex
            default: self = .sqlite
            }
        case is IOError: self = .io
        case let e as RemoteError:
            switch e.kind {
            case .shardChanged: self = .shardChanged
            case .invalidLocation, .configuration: self = .invalidArgument
            default: self = .io
            }
        default: self = .internal
        }
    }
}
