import ShardCore
import ShardIO

#if canImport(Glibc)
    import Glibc
#endif

/// Why an export failed. Every case names what failed, where, and what to do; a failed export
/// leaves nothing at the destination (see ``ExportOutput``).
///
/// ```swift
/// do { try HDF5Export.run(request, compression: .gzip(level: 4)) }
/// catch let error as ExportError { print(error) }   // "'out.h5' already exists; ..."
/// ```
public enum ExportError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The destination exists and `overwrite` was not set.
    case outputExists(path: String)
    /// The destination's parent folder does not exist.
    case missingParent(path: String, parent: String)
    /// The destination is one of the export's own inputs (the index, its location file, a shard).
    case outputIsInput(path: String, input: String)
    /// Member names that would leave the output folder (`..`, absolute paths, a symlinked
    /// parent) or cannot be written inside it (two members on one file, a file that is also a
    /// folder, a component over 255 bytes or with a NUL): each entry is the offending name, why,
    /// and the shard it comes from.
    case unsafeNames([UnsafeName])
    /// A member that cannot be decoded in the format the export needs (an `.npy` member whose
    /// header does not parse, say).
    case badMember(key: String, ext: String, shard: String, offset: Int64, reason: String)
    /// A call into libhdf5 failed.
    case hdf5(call: String, path: String, message: String)
    /// The arguments cannot be satisfied (an unknown extension, no samples selected).
    case invalidArgument(String)
    /// `isCancelled` returned true; nothing was published.
    case cancelled
    /// Writing the output failed with `errno` (a full disk, a file size limit, an I/O error);
    /// nothing was published.
    case writeFailed(path: String, errno: Int32)

    /// A member name an export refused.
    public struct UnsafeName: Sendable, Equatable {
        /// The path the member would have been written to, relative to the output folder.
        public var path: String
        /// Why it was refused ("has a '..' component", "is absolute", "crosses the symlink 'a/b'").
        public var reason: String
        /// The shard the member comes from.
        public var shard: String

        public init(path: String, reason: String, shard: String) {
            self.path = path
            self.reason = reason
            self.shard = shard
        }
    }

    public var description: String {
        switch self {
        case .outputExists(let path):
            return "'\(path)' already exists; pass --overwrite to replace it, or choose another --out"
        case .missingParent(let path, let parent):
            return "cannot write '\(path)': the folder '\(parent)' does not exist; create it first"
        case .outputIsInput(let path, let input):
            return
                "refusing to write '\(path)': it is the export's input '\(input)'; choose another --out"
        case .unsafeNames(let names):
            let shown = names.prefix(10).map { "'\($0.path)' (\($0.reason), in '\($0.shard)')" }
            let more = names.count > 10 ? ", and \(names.count - 10) more" : ""
            return
                "refusing to export \(names.count) member name\(names.count == 1 ? "" : "s") that cannot be written safely inside the output folder: \(shown.joined(separator: ", "))\(more); nothing was written. Rename them in the shards, or export with --format hdf5"
        case .badMember(let key, let ext, let shard, let offset, let reason):
            return
                "cannot decode member '\(MessageText.escaped(key)).\(MessageText.escaped(ext))' of '\(shard)' at byte offset \(offset): \(reason); fix or drop the member, or leave the extension out with --ext"
        case .hdf5(let call, let path, let message):
            return "HDF5 \(call) failed on '\(path)': \(message)"
        case .invalidArgument(let message):
            return message
        case .cancelled:
            return "export cancelled; nothing was written"
        case .writeFailed(let path, let code):
            let reason = String(cString: strerror(code))
            switch code {
            case ENOSPC:
                return
                    "cannot write '\(path)': the disk is full (\(reason)); free some space or choose another --out, then run the export again; nothing was written"
            case EDQUOT:
                return
                    "cannot write '\(path)': the disk quota is used up (\(reason)); free some space or choose another --out, then run the export again; nothing was written"
            case EFBIG:
                return
                    "cannot write '\(path)': the file would exceed the file size limit (\(reason)); raise the limit (`ulimit -f`) or export less (--split, --ext); nothing was written"
            default:
                return "cannot write '\(path)': \(reason) (errno \(code)); nothing was written"
            }
        }
    }
}

extension ExportError {
    /// ``writeFailed(path:errno:)`` naming the output `out` for a write that failed on a full
    /// disk, a used-up quota or a file size limit (an `IOError`, or a libhdf5 call whose error
    /// stack reports the system error; an `EIO` there too); `error` itself otherwise.
    static func writeFailure(_ error: Error, out: String) -> Error {
        switch error {
        case ExportError.hdf5(_, _, let message):
            guard let code = HDF5Library.systemErrno(in: message) else { return error }
            return ExportError.writeFailed(path: out, errno: code)
        case let error as IOError where [ENOSPC, EDQUOT, EFBIG].contains(error.errno):
            return ExportError.writeFailed(path: out, errno: error.errno)
        default:
            return error
        }
    }
}
