/// How a raw export lays files out.
public enum RawLayout: String, Sendable, CaseIterable {
    /// `DIR/<split>/<key>.<ext>`: one file per member, the exact bytes.
    case files
    /// `DIR/<split>/<ext>.bin` + `<ext>.offsets.npy` + `keys.txt`, for numpy.memmap.
    case packed
}

/// Exports a selection to plain files in a folder.
public enum RawExport {
    // SKELETON: replaced by the raw exporter.
    public static func run(
        _ request: ExportRequest, layout: RawLayout,
        progress: (@Sendable (ExportProgress) -> Void)? = nil, isCancelled: @Sendable () -> Bool = { false }
    ) throws -> ExportReport {
        throw ExportError.invalidArgument("the raw export is not built yet")
    }
}
