import CShardStoreABI
import ShardCore
import ShardLoader

#if canImport(Glibc)
    import Glibc
#endif

/// What a `shardstore_loader *` points to: a ``Loader`` and the number of batches it has handed
/// out since its epoch started (`shardstore_batch.number`).
///
/// A loader belongs to the process that made it: in a forked child ``Loader`` refuses every call,
/// and `shardstore_loader_close` leaks the handle there (stopping would join threads the child
/// does not have).
final class LoaderHandle {
    let loader: Loader
    /// Batches returned since the epoch started or the state was restored; used by one thread at a time.
    var number = 0

    init(_ loader: Loader) { self.loader = loader }

    /// The loader options of `options` (a `shardstore_loader_options` the caller filled).
    ///
    /// - Throws: ``DatasetError`` (`.invalidArgument`) naming the field that cannot be used.
    static func options(_ pointer: UnsafePointer<shardstore_loader_options>?) throws -> LoaderOptions {
        guard let pointer else {
            throw DatasetError(.invalidArgument, "options is NULL; fill one with shardstore_loader_options_init")
        }
        let o = pointer.pointee
        guard Int(o.struct_size) >= MemoryLayout<shardstore_loader_options>.size else {
            throw DatasetError(
                .invalidArgument,
                "loader options struct_size is \(o.struct_size), expected \(MemoryLayout<shardstore_loader_options>.size); "
                    + "fill the options with shardstore_loader_options_init")
        }
        guard o.batch_size >= 1, o.batch_size <= UInt64(Int32.max) else {
            throw DatasetError(.invalidArgument, "batch_size is \(o.batch_size); pass 1 to \(Int32.max)")
        }
        var options = LoaderOptions(batchSize: Int(o.batch_size))
        switch o.order {
        case SHARDSTORE_ORDER_SEQUENTIAL.rawValue: options.order = .sequential
        case SHARDSTORE_ORDER_SHUFFLE.rawValue: options.order = .shuffle
        case SHARDSTORE_ORDER_LOCALITY_SHUFFLE.rawValue:
            guard o.block_size >= 1, o.block_size <= UInt64(Int32.max), o.window_blocks >= 1,
                o.window_blocks <= UInt64(Int32.max)
            else {
                throw DatasetError(
                    .invalidArgument,
                    "a locality shuffle needs block_size and window_blocks of 1 to \(Int32.max) "
                        + "(got \(o.block_size) and \(o.window_blocks))")
            }
            options.order = .localityShuffle(blockSize: Int(o.block_size), windowBlocks: Int(o.window_blocks))
        default:
            throw DatasetError(
                .invalidArgument, "order is \(o.order); pass SHARDSTORE_ORDER_SEQUENTIAL, _SHUFFLE or _LOCALITY_SHUFFLE"
            )
        }
        options.seed = o.seed
        options.dropLast = o.drop_last != 0
        options.threads = o.threads == 0 ? nil : Int(o.threads)
        options.prefetch = o.prefetch == 0 ? nil : Int(o.prefetch)
        switch o.tail {
        case SHARDSTORE_TAIL_PAD.rawValue: options.tail = .pad
        case SHARDSTORE_TAIL_DROP.rawValue: options.tail = .drop
        default:
            throw DatasetError(.invalidArgument, "tail is \(o.tail); pass SHARDSTORE_TAIL_PAD or SHARDSTORE_TAIL_DROP")
        }
        switch o.collate {
        case SHARDSTORE_COLLATE_NATIVE.rawValue: options.collate = .native
        case SHARDSTORE_COLLATE_BYTES.rawValue: options.collate = .bytes
        default:
            throw DatasetError(
                .invalidArgument, "collate is \(o.collate); pass SHARDSTORE_COLLATE_NATIVE or SHARDSTORE_COLLATE_BYTES")
        }
        options.rank = Int(o.rank)
        options.worldSize = Int(o.world_size)
        options.hooks = LoaderHooks(enter: { shardstore_fork_guard_enter() }, leave: { shardstore_fork_guard_leave() })
        return options
    }

    /// Keeps a batch's arrays alive while its lease lives.
    private final class Kept {
        let batch: CollatedBatch
        init(_ batch: CollatedBatch) { self.batch = batch }
    }

    /// Describes `batch` in `out` from a new block (its columns, their shapes, extensions and
    /// dtype strings) and returns the lease part: the block and the batch's keeper.
    ///
    /// - Throws: ``DatasetError`` (`.outOfMemory`) when the block cannot be allocated.
    /// - Complexity: O(columns + extension bytes).
    static func describe(_ batch: CollatedBatch, number: Int, into out: UnsafeMutablePointer<shardstore_batch>) throws
        -> LeaseHandle.Part
    {
        let columns = batch.columns
        let columnBytes = columns.count * MemoryLayout<shardstore_column>.stride
        var size = columnBytes
        var dtypes: [String?] = []
        for column in columns {
            let dtype: String?
            switch column.layout {
            case .stacked(let type, let shape):
                dtype = type.descr
                size += shape.count * 8
            case .labels:
                dtype = "<i8"
                size += 8
            case .bytes:
                dtype = nil
            }
            dtypes.append(dtype)
            size += column.ext.utf8.count + 1
            if let dtype { size += dtype.utf8.count + 1 }
        }
        guard let block = malloc(max(size, 1)) else {
            throw DatasetError(
                .outOfMemory, "no memory for a batch's column list (\(size) bytes); release some batches")
        }
        let table = block.bindMemory(to: shardstore_column.self, capacity: max(columns.count, 1))
        var at = block + columnBytes
        /// Copies `text` with a NUL at `at`; returns its start and length.
        func place(_ text: String) -> (UnsafePointer<CChar>, Int) {
            var copy = text
            let length = copy.withUTF8 { utf8 in
                if let start = utf8.baseAddress { at.copyMemory(from: start, byteCount: utf8.count) }
                at.storeBytes(of: 0, toByteOffset: utf8.count, as: UInt8.self)
                return utf8.count
            }
            let start = UnsafePointer(at.assumingMemoryBound(to: CChar.self))
            at += length + 1
            return (start, length)
        }
        for (c, column) in columns.enumerated() {
            // Shapes first: 8-byte aligned right after the column table.
            var shape: [Int] = []
            switch column.layout {
            case .stacked(_, let s): shape = s
            case .labels: shape = [batch.count]
            case .bytes: break
            }
            let shapePointer = UnsafeMutableRawPointer(at).bindMemory(to: Int64.self, capacity: max(shape.count, 1))
            for (d, extent) in shape.enumerated() { shapePointer[d] = Int64(extent) }
            at += shape.count * 8
            var entry = shardstore_column()
            entry.layout =
                column.layout == .bytes
                ? SHARDSTORE_LAYOUT_BYTES.rawValue
                : column.layout == .labels ? SHARDSTORE_LAYOUT_LABELS.rawValue : SHARDSTORE_LAYOUT_STACKED.rawValue
            entry.shape = shape.isEmpty ? nil : UnsafePointer(shapePointer)
            entry.ndim = shape.count
            entry.data = column.data.bytes.baseAddress
            entry.data_length = UInt64(column.data.bytes.count)
            if column.layout == .bytes {
                entry.offsets = UnsafePointer(column.offsets.typed(Int64.self).baseAddress)
                entry.present = UnsafePointer(column.present.typed(UInt8.self).baseAddress)
            }
            (table + c).initialize(to: entry)
        }
        // Strings after the shapes (any alignment).
        for (c, column) in columns.enumerated() {
            let (ext, length) = place(column.ext)
            table[c].ext = ext
            table[c].ext_length = length
            if let dtype = dtypes[c] { table[c].dtype = place(dtype).0 }
        }
        out.pointee = shardstore_batch(
            count: Int64(batch.count), number: Int64(number),
            positions: batch.positions.typed(Int64.self).baseAddress,
            key_bytes: batch.keyBytes.typed(UInt8.self).baseAddress,
            key_offsets: batch.keyOffsets.typed(Int64.self).baseAddress,
            columns: columns.isEmpty ? nil : UnsafePointer(table), column_count: columns.count)
        return (Kept(batch), block)
    }
}
