import CShardHDF5
import ShardCore

/// A datatype for a dataset: a predefined HDF5 type, or one this process made and owns.
struct HDF5Type {
    let id: hid_t
    /// Keeps a made type open while it is used.
    let owner: HDF5Handle?

    init(predefined id: hid_t) {
        self.id = id
        owner = nil
    }

    init(_ handle: HDF5Handle) {
        id = handle.id
        owner = handle
    }

    /// `int64`, little-endian.
    static var int64: HDF5Type { HDF5Type(predefined: shard_h5t_std_i64le()) }
    /// `uint8`.
    static var uint8: HDF5Type { HDF5Type(predefined: shard_h5t_std_u8le()) }

    /// The little-endian stored type of an NPY dtype, which is also the type of the converted
    /// elements in memory (``NPYHeader/copyElements(of:to:)`` writes little-endian): integers and
    /// IEEE floats; float16 as h5py makes it (an IEEE float with 1 sign, 5 exponent and 10
    /// mantissa bits); bool as h5py's enum.
    static func element(_ dtype: NPYDType, path: String) throws -> HDF5Type {
        switch (dtype.kind, dtype.size) {
        case (.bool, _): return try bool(path: path)
        case (.signed, 1): return HDF5Type(predefined: shard_h5t_std_i8le())
        case (.signed, 2): return HDF5Type(predefined: shard_h5t_std_i16le())
        case (.signed, 4): return HDF5Type(predefined: shard_h5t_std_i32le())
        case (.signed, _): return HDF5Type(predefined: shard_h5t_std_i64le())
        case (.unsigned, 1): return HDF5Type(predefined: shard_h5t_std_u8le())
        case (.unsigned, 2): return HDF5Type(predefined: shard_h5t_std_u16le())
        case (.unsigned, 4): return HDF5Type(predefined: shard_h5t_std_u32le())
        case (.unsigned, _): return HDF5Type(predefined: shard_h5t_std_u64le())
        case (.float, 2): return try float16(path: path)
        case (.float, 4): return HDF5Type(predefined: shard_h5t_ieee_f32le())
        case (.float, _): return HDF5Type(predefined: shard_h5t_ieee_f64le())
        }
    }

    /// h5py's boolean: an enum over int8 with `FALSE = 0` and `TRUE = 1` (numpy reads it as `bool`).
    static func bool(path: String) throws -> HDF5Type {
        let t = try HDF5Handle.make(.datatype, "H5Tenum_create", path) { H5Tenum_create(shard_h5t_native_int8()) }
        for (name, value) in [("FALSE", Int8(0)), ("TRUE", Int8(1))] {
            var v = value
            try HDF5Library.check("H5Tenum_insert", path) { H5Tenum_insert(t.id, name, &v) }
        }
        return HDF5Type(t)
    }

    /// IEEE half precision, little-endian, as h5py defines it.
    static func float16(path: String) throws -> HDF5Type {
        let t = try HDF5Handle.make(.datatype, "H5Tcopy", path) { H5Tcopy(shard_h5t_ieee_f32le()) }
        try HDF5Library.check("H5Tset_fields", path) { H5Tset_fields(t.id, 15, 10, 5, 0, 10) }
        try HDF5Library.check("H5Tset_size", path) { H5Tset_size(t.id, 2) }
        try HDF5Library.check("H5Tset_ebias", path) { H5Tset_ebias(t.id, 15) }
        return HDF5Type(t)
    }

    /// Variable-length UTF-8 strings (C strings in memory: `char *`, NUL-terminated).
    static func utf8String(path: String) throws -> HDF5Type {
        let t = try HDF5Handle.make(.datatype, "H5Tcopy", path) { H5Tcopy(shard_h5t_c_s1()) }
        try HDF5Library.check("H5Tset_size", path) { H5Tset_size(t.id, shard_h5t_variable()) }
        try HDF5Library.check("H5Tset_cset", path) { H5Tset_cset(t.id, H5T_CSET_UTF8) }
        return HDF5Type(t)
    }

    /// Variable-length sequences of `base` (`hvl_t` in memory).
    static func sequence(of base: HDF5Type, path: String) throws -> HDF5Type {
        HDF5Type(try HDF5Handle.make(.datatype, "H5Tvlen_create", path) { H5Tvlen_create(base.id) })
    }
}

/// How a dataset is stored: chunked along its first dimension, with the shuffle and deflate
/// filters, or contiguous (for an empty dataset, which cannot be chunked).
struct HDF5Storage {
    /// Rows a chunk; nil stores the dataset contiguously, without filters.
    var chunkRows: Int?
    /// The deflate level, or nil for no compression.
    var deflate: Int?
    /// Whether to put the shuffle filter before deflate (numeric data).
    var shuffle: Bool

    /// Chunked rows of about `target` bytes (1 MiB by default), with `rowBytes` bytes a row.
    static func chunked(rows: Int, rowBytes: Int, compression: HDF5Compression, numeric: Bool, target: Int = 1 << 20)
        -> HDF5Storage
    {
        guard rows > 0, rowBytes > 0 else { return HDF5Storage(chunkRows: nil, deflate: nil, shuffle: false) }
        let level: Int? = if case .gzip(let level) = compression { level } else { nil }
        let chunk = max(1, min(rows, target / rowBytes))
        return HDF5Storage(chunkRows: chunk, deflate: level, shuffle: numeric && level != nil)
    }
}

/// An HDF5 file being written: creates datasets, groups and attributes.
final class HDF5File {
    /// The file's name in errors.
    let path: String
    private let handle: HDF5Handle

    /// Creates (truncates) the file at `file`, called `name` in errors: the 1.8 object format or
    /// newer (so attributes of any size are allowed), and closing the file closes every object
    /// still open in it.
    ///
    /// - Throws: ``ExportError/hdf5(call:path:message:)``.
    init(creating file: String, name: String) throws {
        path = name
        let fapl = try HDF5Handle.make(.propertyList, "H5Pcreate", path) { H5Pcreate(shard_h5p_file_access()) }
        try HDF5Library.check("H5Pset_libver_bounds", path) {
            H5Pset_libver_bounds(fapl.id, H5F_LIBVER_V18, H5F_LIBVER_V110)
        }
        try HDF5Library.check("H5Pset_fclose_degree", path) { H5Pset_fclose_degree(fapl.id, H5F_CLOSE_STRONG) }
        handle = try HDF5Handle.make(.file, "H5Fcreate", path) {
            H5Fcreate(file, shard_h5f_acc_trunc(), shard_h5p_default(), fapl.id)
        }
    }

    /// Creates the group `name` at the root.
    func createGroup(_ name: String) throws {
        let g = try HDF5Handle.make(.group, "H5Gcreate2", "\(path)/\(name)") {
            H5Gcreate2(handle.id, name, shard_h5p_default(), shard_h5p_default(), shard_h5p_default())
        }
        try g.close(path: "\(path)/\(name)")
    }

    /// Creates the dataset `name` (a path from the root, `splits/train`) of `type` and shape
    /// `dims`, stored as `storage` says.
    ///
    /// - Throws: ``ExportError/hdf5(call:path:message:)``.
    func createDataset(_ name: String, type: HDF5Type, dims: [Int], storage: HDF5Storage) throws -> HDF5Dataset {
        let place = "\(path)/\(name)"
        let space = try HDF5Handle.make(.dataspace, "H5Screate_simple", place) {
            let d = dims.map { hsize_t($0) }
            return H5Screate_simple(Int32(d.count), d, nil)
        }
        let dcpl = try HDF5Handle.make(.propertyList, "H5Pcreate", place) { H5Pcreate(shard_h5p_dataset_create()) }
        if let rows = storage.chunkRows {
            var chunk = dims.map { hsize_t(max($0, 1)) }
            chunk[0] = hsize_t(rows)
            try HDF5Library.check("H5Pset_chunk", place) { H5Pset_chunk(dcpl.id, Int32(chunk.count), chunk) }
            if storage.shuffle { try HDF5Library.check("H5Pset_shuffle", place) { H5Pset_shuffle(dcpl.id) } }
            if let level = storage.deflate {
                try HDF5Library.check("H5Pset_deflate", place) { H5Pset_deflate(dcpl.id, UInt32(level)) }
            }
        }
        let dataset = try HDF5Handle.make(.dataset, "H5Dcreate2", place) {
            H5Dcreate2(handle.id, name, type.id, space.id, shard_h5p_default(), dcpl.id, shard_h5p_default())
        }
        return HDF5Dataset(handle: dataset, path: place, dims: dims, type: type)
    }

    /// Writes the string attribute `name` (variable-length UTF-8) on the root group.
    func setAttribute(_ name: String, string value: [UInt8]) throws {
        try setAttribute(name, strings: [value], scalar: true)
    }

    /// Writes the attribute `name` on the root group: a one-dimensional array of
    /// variable-length UTF-8 strings (a scalar string with `scalar`).
    func setAttribute(_ name: String, strings values: [[UInt8]], scalar: Bool = false) throws {
        let place = "\(path) attribute '\(name)'"
        let type = try HDF5Type.utf8String(path: place)
        let space = try HDF5Handle.make(.dataspace, "H5Screate", place) {
            scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, [hsize_t(values.count)], nil)
        }
        let attribute = try HDF5Handle.make(.attribute, "H5Acreate2", place) {
            H5Acreate2(handle.id, name, type.id, space.id, shard_h5p_default(), shard_h5p_default())
        }
        try CStrings.with(values) { pointers in
            try HDF5Library.check("H5Awrite", place) { H5Awrite(attribute.id, type.id, pointers) }
        }
        try attribute.close(path: place)
    }

    /// Flushes and closes the file (and anything still open in it).
    ///
    /// - Throws: ``ExportError/hdf5(call:path:message:)``: a flush that failed (a full disk).
    func close() throws {
        try handle.close(path: path)
    }
}

/// A dataset being written, in blocks of rows along its first dimension.
final class HDF5Dataset {
    let handle: HDF5Handle
    let path: String
    let dims: [Int]
    let type: HDF5Type

    init(handle: HDF5Handle, path: String, dims: [Int], type: HDF5Type) {
        self.handle = handle
        self.path = path
        self.dims = dims
        self.type = type
    }

    /// Writes rows `rows` from `buffer`, which holds them contiguously in memory type `memoryType`
    /// (the dataset's own type unless given).
    ///
    /// - Throws: ``ExportError/hdf5(call:path:message:)``.
    func write(rows: Range<Int>, from buffer: UnsafeRawPointer, memoryType: HDF5Type? = nil) throws {
        guard !rows.isEmpty else { return }
        var start = [hsize_t](repeating: 0, count: dims.count)
        var count = dims.map { hsize_t($0) }
        start[0] = hsize_t(rows.lowerBound)
        count[0] = hsize_t(rows.count)
        let file = try HDF5Handle.make(.dataspace, "H5Dget_space", path) { H5Dget_space(handle.id) }
        try HDF5Library.check("H5Sselect_hyperslab", path) {
            H5Sselect_hyperslab(file.id, H5S_SELECT_SET, start, nil, count, nil)
        }
        let memory = try HDF5Handle.make(.dataspace, "H5Screate_simple", path) {
            H5Screate_simple(Int32(count.count), count, nil)
        }
        try HDF5Library.check("H5Dwrite", path) {
            H5Dwrite(handle.id, (memoryType ?? type).id, memory.id, file.id, shard_h5p_default(), buffer)
        }
    }

    /// Writes one chunk that starts at row `row`, already filtered (every filter of the dataset
    /// applied, in order), with `H5Dwrite_chunk`.
    ///
    /// - Throws: ``ExportError/hdf5(call:path:message:)``.
    func writeChunk(row: Int, _ bytes: [UInt8]) throws {
        var offset = [hsize_t](repeating: 0, count: dims.count)
        offset[0] = hsize_t(row)
        try bytes.withUnsafeBytes { raw in
            try HDF5Library.check("H5Dwrite_chunk", path) {
                H5Dwrite_chunk(handle.id, shard_h5p_default(), 0, offset, raw.count, raw.baseAddress)
            }
        }
    }

    /// Writes the attribute `name` on this dataset: a variable-length UTF-8 string.
    func setAttribute(_ name: String, string value: String) throws {
        let place = "\(path) attribute '\(name)'"
        let type = try HDF5Type.utf8String(path: place)
        let space = try HDF5Handle.make(.dataspace, "H5Screate", place) { H5Screate(H5S_SCALAR) }
        let attribute = try HDF5Handle.make(.attribute, "H5Acreate2", place) {
            H5Acreate2(handle.id, name, type.id, space.id, shard_h5p_default(), shard_h5p_default())
        }
        try CStrings.with([Array(value.utf8)]) { pointers in
            try HDF5Library.check("H5Awrite", place) { H5Awrite(attribute.id, type.id, pointers) }
        }
        try attribute.close(path: place)
    }

    /// Closes the dataset now.
    func close() throws { try handle.close(path: path) }
}

/// NUL-terminated copies of byte strings, for HDF5's variable-length strings.
enum CStrings {
    /// Calls `body` with an array of `char *` pointing at NUL-terminated copies of `values`.
    static func with<R>(_ values: [[UInt8]], _ body: (UnsafeRawPointer) throws -> R) throws -> R {
        let total = values.reduce(0) { $0 + $1.count + 1 }
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(total, 1), alignment: 1)
        defer { storage.deallocate() }
        var pointers = [UnsafePointer<CChar>?]()
        pointers.reserveCapacity(values.count)
        var at = 0
        for v in values {
            let start = storage.baseAddress! + at
            v.withUnsafeBytes { if let from = $0.baseAddress { start.copyMemory(from: from, byteCount: v.count) } }
            storage[at + v.count] = 0
            pointers.append(UnsafePointer(start.assumingMemoryBound(to: CChar.self)))
            at += v.count + 1
        }
        return try pointers.withUnsafeBytes { try body($0.baseAddress ?? UnsafeRawPointer(storage.baseAddress!)) }
    }
}
