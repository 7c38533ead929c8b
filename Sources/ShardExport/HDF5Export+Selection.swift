import ShardIO
import ShardIndex
import ShardLoader

/// The rows of an HDF5 export: every sample of the named splits once, in export order (the first
/// split's order, then the samples of the next split that are not exported yet, ...), or the
/// whole dataset in index order. Row `r` of every dataset in the file is the same sample.
struct HDF5Selection {
    /// One dataset per split (one without a split when none is named).
    let datasets: [Dataset]
    /// The split names, in the order given.
    let splitNames: [String]
    /// The number of rows.
    let count: Int
    /// With several splits, the (dataset, position) of each row; nil when row `r` is position
    /// `r` of `datasets[0]`.
    private let rowDataset: [UInt16]?
    private let rowPosition: [Int32]?
    /// With several splits: each split's rows, in split order (what `/splits/<name>` holds).
    let splitRows: [[Int64]]
    /// How member bytes are read, and why.
    let choice: StrategyChoice

    /// Opens the datasets of `request` and numbers the rows.
    ///
    /// - Throws: what `Dataset` throws (an unknown split or extension names it and lists the
    ///   known ones), ``ExportError/invalidArgument(_:)`` for more than 65,535 splits.
    init(_ request: ExportRequest, isCancelled: () -> Bool) throws {
        let names = request.splits
        guard names.count < Int(UInt16.max) else {
            throw ExportError.invalidArgument("too many splits (\(names.count)); export at most 65,535 at once")
        }
        let splits: [String?] = names.isEmpty ? [nil] : names
        let reading = try request.reading()
        datasets = try splits.map { split in
            try Dataset(
                index: request.index, split: split, extensions: request.extensions, strategy: reading.choice.strategy,
                options: reading.options)
        }
        self.choice = request.strategy == .auto ? reading.choice : datasets[0].choice
        splitNames = names
        guard datasets.count > 1 else {
            count = datasets[0].count
            rowDataset = nil
            rowPosition = nil
            splitRows = []
            return
        }
        var rowOf: [Int: Int64] = [:]
        var rowDataset: [UInt16] = []
        var rowPosition: [Int32] = []
        var splitRows: [[Int64]] = []
        for (d, dataset) in datasets.enumerated() {
            guard dataset.count < Int(Int32.max) else {
                throw ExportError.invalidArgument(
                    "split '\(names[d])' has \(dataset.count) samples; an export of several splits takes at most \(Int32.max - 1) a split"
                )
            }
            var rows: [Int64] = []
            rows.reserveCapacity(dataset.count)
            for p in 0..<dataset.count {
                if p % 4096 == 0, isCancelled() { throw ExportError.cancelled }
                let global = try dataset.globalIndex(at: p)
                if let row = rowOf[global] {
                    rows.append(row)
                } else {
                    let row = Int64(rowDataset.count)
                    rowOf[global] = row
                    rowDataset.append(UInt16(d))
                    rowPosition.append(Int32(p))
                    rows.append(row)
                }
            }
            splitRows.append(rows)
        }
        count = rowDataset.count
        self.rowDataset = rowDataset
        self.rowPosition = rowPosition
        self.splitRows = splitRows
    }

    /// Calls `body` with a view of the sample of row `row` (see `Dataset.withSample(at:_:)`).
    func withSample<R>(row: Int, _ body: (SampleView) throws -> R) throws -> R {
        guard let rowDataset, let rowPosition else { return try datasets[0].withSample(at: row, body) }
        return try datasets[Int(rowDataset[row])].withSample(at: Int(rowPosition[row]), body)
    }
}
