import ShardCore

/// What an extension's members are taken to hold, from the last dot-separated part of the
/// extension (`npy`, `seg.npy` → NPY arrays; `json`, `meta.json` → text).
enum MemberRole: Sendable, Equatable {
    /// NPY arrays, decoded.
    case npy
    /// Class labels: integers when every member parses as one, else text.
    case classLabel
    /// Text: UTF-8 strings.
    case text
    /// Anything else: the exact bytes.
    case bytes

    /// The text extensions (their last part).
    static let textExtensions: Set<String> = [
        "json", "txt", "text", "csv", "tsv", "xml", "html", "md", "yaml", "yml",
    ]

    init(ext: String) {
        let last = ext.split(separator: ".", omittingEmptySubsequences: false).last.map(String.init) ?? ext
        if last == "npy" {
            self = .npy
        } else if last == "cls" {
            self = .classLabel
        } else if Self.textExtensions.contains(last) {
            self = .text
        } else {
            self = .bytes
        }
    }
}

/// How an extension is stored in the HDF5 file (the `shardstore_kind` attribute of its dataset).
enum ColumnKind: Equatable {
    /// `.npy` members that all share one dtype and shape: an N+1-dimensional array.
    case array(NPYDType, shape: [Int])
    /// `.npy` members that share a dtype but not a shape: variable-length sequences of the
    /// elements (C order), and `/<ext>_shape` with each member's shape.
    case raggedArray(NPYDType)
    /// `.npy` members with different dtypes: each member's whole `.npy` bytes.
    case npyBytes
    /// Variable-length UTF-8 strings.
    case text
    /// int64 (class labels that all parse as decimal integers).
    case integer
    /// Variable-length sequences of uint8: the exact member bytes.
    case bytes

    /// The value of the `shardstore_kind` attribute.
    var name: String {
        switch self {
        case .array: return "array"
        case .raggedArray: return "ragged array"
        case .npyBytes: return "npy bytes"
        case .text: return "text"
        case .integer: return "integer"
        case .bytes: return "bytes"
        }
    }
}

/// What the first pass learns of one extension's members, to choose its ``ColumnKind``.
struct ColumnSurvey {
    let ext: String
    let role: MemberRole
    /// Rows that have the member.
    var present = 0
    /// Member bytes seen.
    var bytes: Int64 = 0
    /// The row seen last (a second member with this extension in one sample is an error).
    var lastRow = -1
    /// NPY: the first member's dtype (little-endian) and shape, and whether all share them.
    var dtype: NPYDType?
    var shape: [Int]?
    var sameDType = true
    var sameShape = true
    /// NPY: the distinct dtype names, in order of appearance (for the note).
    var dtypeNames: [String] = []
    /// Text and class labels: whether every member is UTF-8 without NUL bytes.
    var isText = true
    /// Class labels: whether every member parses as a decimal integer.
    var isInteger = true
    private var headers = NPYHeaderCache()

    init(ext: String) {
        self.ext = ext
        role = MemberRole(ext: ext)
    }

    /// Takes in one member.
    ///
    /// - Throws: ``NPYError`` for an `.npy` member that does not parse.
    mutating func add(_ member: UnsafeRawBufferPointer, row: Int) throws(NPYError) {
        present += 1
        bytes += Int64(member.count)
        lastRow = row
        switch role {
        case .npy:
            let header = try headers.parse(member)
            let type = header.dtype.littleEndian
            if let dtype {
                if type != dtype {
                    sameDType = false
                    if !dtypeNames.contains(type.name) { dtypeNames.append(type.name) }
                }
                if header.shape != shape { sameShape = false }
            } else {
                dtype = type
                shape = header.shape
                dtypeNames = [type.name]
            }
        case .classLabel:
            if isInteger, MemberText.integer(member) == nil { isInteger = false }
            if !isInteger, isText, !MemberText.isText(member) { isText = false }
        case .text:
            if isText, !MemberText.isText(member) { isText = false }
        case .bytes:
            break
        }
    }

    /// The storage chosen, and a note when it is a fallback (the `shardstore_note` attribute).
    var kind: (ColumnKind, note: String?) {
        switch role {
        case .npy:
            guard let dtype, let shape else { return (.bytes, nil) }
            if !sameDType {
                return (
                    .npyBytes,
                    "the .\(ext) members have different dtypes (\(dtypeNames.joined(separator: ", "))), so each member's whole .npy bytes are stored; read one with numpy.load(io.BytesIO(bytes))"
                )
            }
            if !sameShape {
                return (
                    .raggedArray(dtype),
                    "the .\(ext) members have different shapes: each row holds the elements in C order, and /\(ext)_shape the row's shape"
                )
            }
            return (.array(dtype, shape: shape), nil)
        case .classLabel:
            if isInteger { return (.integer, nil) }
            if isText { return (.text, nil) }
            return (
                .bytes,
                "some .\(ext) members are not integers, and not UTF-8 text without NUL bytes either, so the exact bytes are stored"
            )
        case .text:
            if isText { return (.text, nil) }
            return (.bytes, "some .\(ext) members are not UTF-8 text without NUL bytes, so the exact bytes are stored")
        case .bytes:
            return (.bytes, nil)
        }
    }
}

/// Text checks on member bytes.
enum MemberText {
    /// Whether `bytes` is valid UTF-8 without NUL bytes (what a variable-length HDF5 string holds).
    static func isText(_ bytes: UnsafeRawBufferPointer) -> Bool {
        if bytes.contains(0) { return false }
        var ascii = true
        for b in bytes where b >= 0x80 {
            ascii = false
            break
        }
        return ascii || String(validating: bytes, as: UTF8.self) != nil
    }

    /// The decimal integer `bytes` holds, with optional ASCII whitespace around it and an optional
    /// sign, or nil (also when it does not fit in 64 bits).
    static func integer(_ bytes: UnsafeRawBufferPointer) -> Int64? {
        func isSpace(_ b: UInt8) -> Bool { b == 0x20 || (0x09...0x0D).contains(b) }
        var start = 0
        var end = bytes.count
        while start < end, isSpace(bytes[start]) { start += 1 }
        while end > start, isSpace(bytes[end - 1]) { end -= 1 }
        var negative = false
        if start < end, bytes[start] == 0x2D || bytes[start] == 0x2B {
            negative = bytes[start] == 0x2D
            start += 1
        }
        guard start < end else { return nil }
        var value: Int64 = 0
        for i in start..<end {
            let d = bytes[i] &- 0x30
            guard d < 10 else { return nil }
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (s, o2) = negative ? m.subtractingReportingOverflow(Int64(d)) : m.addingReportingOverflow(Int64(d))
            guard !o1, !o2 else { return nil }
            value = s
        }
        return value
    }
}
