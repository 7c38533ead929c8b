/// How HDF5 datasets are compressed.
public enum HDF5Compression: Sendable, Equatable {
    /// No filter.
    case none
    /// The deflate filter at `level` (1–9), after the shuffle filter for numeric data.
    case gzip(level: Int)
}

/// Exports a selection to one HDF5 file through libhdf5.
public enum HDF5Export {
    // SKELETON: replaced by the HDF5 exporter.
    public static func run(
        _ request: ExportRequest, compression: HDF5Compression = .gzip(level: 4),
        progress: (@Sendable (ExportProgress) -> Void)? = nil, isCancelled: @Sendable () -> Bool = { false }
    ) throws -> ExportReport {
        throw ExportError.invalidArgument("the HDF5 export is not built yet")
    }
}
