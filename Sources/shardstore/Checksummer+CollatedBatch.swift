import ShardStore

extension Checksummer {
    /// Chains zlib's crc32 over `batch` as `bench --loader` documents it: sample by sample, and in
    /// a sample column by column (in the batch's column order), a bytes column's member (nothing
    /// when the sample has none), a stacked column's row (the sample's array data), a label's 8
    /// bytes. With bytes columns only, and every sample's extensions in the same order, that is the
    /// members' bytes in archive order, as the other modes hash a sample.
    ///
    /// - Complexity: O(samples × columns + bytes).
    static func add(_ batch: CollatedBatch, to result: inout Result) {
        let n = batch.count
        guard n > 0 else { return }
        for i in 0..<n {
            for column in batch.columns {
                let all = UnsafeRawBufferPointer(column.data.bytes)
                let bytes: UnsafeRawBufferPointer?
                switch column.layout {
                case .bytes:
                    bytes = column.member(i)
                case .stacked:
                    let row = all.count / n
                    bytes = UnsafeRawBufferPointer(rebasing: all[i * row..<(i + 1) * row])
                case .labels:
                    bytes = UnsafeRawBufferPointer(rebasing: all[i * 8..<(i + 1) * 8])
                }
                guard let bytes else { continue }
                result.bytes += Int64(bytes.count)
                result.crc = Zlib.crc32(result.crc, bytes)
            }
        }
    }
}
