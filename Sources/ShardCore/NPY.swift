/// The element type of an NPY array: one of numpy's plain numeric dtypes.
///
/// ```swift
/// let t = try NPYDType(descr: "<f4")   // float32, little-endian
/// t.kind == .float; t.size == 4; t.descr == "<f4"
/// ```
public struct NPYDType: Sendable, Hashable, CustomStringConvertible {
    /// What an element holds.
    public enum Kind: Sendable, Hashable {
        /// numpy `bool`: one byte, 0 or 1.
        case bool
        /// Two's-complement integers (`int8` to `int64`).
        case signed
        /// Unsigned integers (`uint8` to `uint64`).
        case unsigned
        /// IEEE 754 binary floats (`float16`, `float32`, `float64`).
        case float
    }

    /// What an element holds.
    public var kind: Kind
    /// Bytes an element: 1, 2, 4 or 8.
    public var size: Int
    /// Whether the stored bytes are big-endian (never for one-byte types).
    public var isBigEndian: Bool

    public init(kind: Kind, size: Int, isBigEndian: Bool = false) {
        self.kind = kind
        self.size = size
        self.isBigEndian = size > 1 && isBigEndian
    }

    /// Parses a numpy type string: an optional byte order (`<` little, `>` big, `|` not applicable,
    /// `=` native, which is little-endian on every platform ShardStore runs on) and a code `b1`,
    /// `i1`/`i2`/`i4`/`i8`, `u1`/`u2`/`u4`/`u8` or `f2`/`f4`/`f8`.
    ///
    /// - Throws: ``NPYError/unsupportedDType(_:)`` for anything else (`<c16`, `|S5`, `<M8[ns]`).
    /// - Complexity: O(length of `descr`).
    public init(descr: String) throws(NPYError) {
        var code = Substring(descr)
        var big = false
        if let first = code.first, "<>|=".contains(first) {
            big = first == ">"
            code = code.dropFirst()
        }
        let kind: Kind
        let sizes: [Int]
        switch code.first {
        case "b": (kind, sizes) = (.bool, [1])
        case "i": (kind, sizes) = (.signed, [1, 2, 4, 8])
        case "u": (kind, sizes) = (.unsigned, [1, 2, 4, 8])
        case "f": (kind, sizes) = (.float, [2, 4, 8])
        default: throw .unsupportedDType(descr)
        }
        let digits = code.dropFirst()
        guard digits.count == 1, let size = Int(digits), sizes.contains(size) else { throw .unsupportedDType(descr) }
        self.init(kind: kind, size: size, isBigEndian: big)
    }

    /// numpy's name for the type: `bool`, `int16`, `uint8`, `float32`.
    public var name: String {
        switch kind {
        case .bool: return "bool"
        case .signed: return "int\(size * 8)"
        case .unsigned: return "uint\(size * 8)"
        case .float: return "float\(size * 8)"
        }
    }

    /// The type string with its stored byte order (`<f4`, `>i8`, `|u1`).
    public var descr: String {
        let order = size == 1 ? "|" : isBigEndian ? ">" : "<"
        let code: String
        switch kind {
        case .bool: code = "b"
        case .signed: code = "i"
        case .unsigned: code = "u"
        case .float: code = "f"
        }
        return order + code + String(size)
    }

    /// The same type stored little-endian (what an export writes).
    public var littleEndian: NPYDType { NPYDType(kind: kind, size: size, isBigEndian: false) }

    public var description: String { descr }
}

/// Why an NPY member cannot be read. `description` is one clause without the member's name or
/// place (callers add those).
public enum NPYError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Fewer bytes than the fixed part of a header (magic, version, header length).
    case tooShort(count: Int, needed: Int)
    /// The member does not start with `\x93NUMPY`.
    case badMagic
    /// A format version other than 1.0, 2.0 and 3.0.
    case unsupportedVersion(major: UInt8, minor: UInt8)
    /// The header length field points past the member's end.
    case headerPastEnd(headerLength: Int, memberLength: Int)
    /// The header is not the Python dict literal numpy writes; `detail` says where.
    case badHeader(String)
    /// A key numpy always writes (`descr`, `fortran_order`, `shape`) is missing.
    case missingKey(String)
    /// A dtype other than bool, int8 to int64, uint8 to uint64, float16, float32 and float64.
    case unsupportedDType(String)
    /// The shape's element count or byte size does not fit in 64 bits.
    case shapeTooLarge(shape: [Int])
    /// The data after the header is not `product(shape) * itemsize` bytes.
    case dataLength(actual: Int, expected: Int, shape: [Int], descr: String)

    public var description: String {
        switch self {
        case .tooShort(let count, let needed):
            return
                "the member is \(count) byte\(count == 1 ? "" : "s"), too short for an NPY header (at least \(needed) bytes)"
        case .badMagic:
            return "not an NPY array: it does not start with the magic bytes \\x93NUMPY"
        case .unsupportedVersion(let major, let minor):
            return "unsupported NPY format version \(major).\(minor) (versions 1.0, 2.0 and 3.0 are read)"
        case .headerPastEnd(let headerLength, let memberLength):
            return "the header length \(headerLength) runs past the member's end (\(memberLength) bytes)"
        case .badHeader(let detail):
            return "malformed NPY header: \(detail)"
        case .missingKey(let key):
            return "malformed NPY header: it has no '\(key)' entry"
        case .unsupportedDType(let descr):
            return
                "unsupported dtype '\(oneLine(descr))' (bool, int8 to int64, uint8 to uint64, float16, float32 and float64 are read)"
        case .shapeTooLarge(let shape):
            return "the shape \(NPYHeader.shapeText(shape)) is too large"
        case .dataLength(let actual, let expected, let shape, let descr):
            return
                "the data is \(actual) byte\(actual == 1 ? "" : "s"), but shape \(NPYHeader.shapeText(shape)) of '\(descr)' needs \(expected)"
        }
    }
}

/// `text` for an error message on one line: control characters (newlines among them) and the
/// Unicode line and paragraph separators written as `\xNN` or `\u{NNNN}`.
private func oneLine(_ text: String) -> String {
    var out = ""
    for scalar in text.unicodeScalars {
        switch scalar.value {
        case 0..<0x20, 0x7F: out += "\\x" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16)
        case 0x80..<0xA0, 0x2028, 0x2029: out += "\\u{" + String(scalar.value, radix: 16) + "}"
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out
}

/// The header of an NPY array (numpy's `.npy` format, versions 1.0, 2.0 and 3.0): the element type,
/// the memory order, the shape, and where the data starts.
///
/// ```swift
/// let header = try bytes.withUnsafeBytes { try NPYHeader(parsing: $0) }
/// header.shape        // [3, 4]
/// header.dtype.name   // "float32"
/// ```
public struct NPYHeader: Sendable, Equatable {
    /// The format version (major, minor): 1.0 (2-byte header length), 2.0 (4-byte header length)
    /// or 3.0 (4-byte header length, UTF-8 header).
    public var version: UInt8
    /// The element type as stored.
    public var dtype: NPYDType
    /// Whether the data is in Fortran (column-major) order rather than C (row-major) order.
    public var fortranOrder: Bool
    /// The array's dimensions (empty for a 0-d array, which holds one element).
    public var shape: [Int]
    /// The offset of the first data byte in the member (after magic, version, length and header).
    public var dataOffset: Int

    /// The number of elements: the product of ``shape``.
    public var elementCount: Int { shape.reduce(1, *) }
    /// The bytes of data: ``elementCount`` times the element size.
    public var dataByteCount: Int { elementCount * dtype.size }

    public init(version: UInt8, dtype: NPYDType, fortranOrder: Bool, shape: [Int], dataOffset: Int) {
        self.version = version
        self.dtype = dtype
        self.fortranOrder = fortranOrder
        self.shape = shape
        self.dataOffset = dataOffset
    }

    /// `(3, 4)`, `(16,)`, `()`: the shape as Python prints it.
    public static func shapeText(_ shape: [Int]) -> String {
        shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
    }

    /// Parses the header of the NPY member `member` and checks that the data after it is exactly
    /// `product(shape) * itemsize` bytes.
    ///
    /// - Throws: ``NPYError``, naming what is wrong.
    /// - Complexity: O(header length).
    public init(parsing member: UnsafeRawBufferPointer) throws(NPYError) {
        guard member.count >= 10 else { throw .tooShort(count: member.count, needed: 10) }
        let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // \x93NUMPY
        for i in 0..<6 where member[i] != magic[i] { throw .badMagic }
        let major = member[6]
        let minor = member[7]
        guard (1...3).contains(major), minor == 0 else { throw .unsupportedVersion(major: major, minor: minor) }
        let headerLength: Int
        let headerStart: Int
        if major == 1 {
            headerLength = Int(member[8]) | Int(member[9]) << 8
            headerStart = 10
        } else {
            guard member.count >= 12 else { throw .tooShort(count: member.count, needed: 12) }
            headerLength = Int(member[8]) | Int(member[9]) << 8 | Int(member[10]) << 16 | Int(member[11]) << 24
            headerStart = 12
        }
        guard headerLength <= member.count - headerStart else {
            throw .headerPastEnd(headerLength: headerLength, memberLength: member.count)
        }
        let dataOffset = headerStart + headerLength
        var parser = HeaderParser(bytes: UnsafeRawBufferPointer(rebasing: member[headerStart..<dataOffset]))
        let dict = try parser.dictionary()
        guard let descr = dict.descr else { throw .missingKey("descr") }
        guard let fortran = dict.fortranOrder else { throw .missingKey("fortran_order") }
        guard let shape = dict.shape else { throw .missingKey("shape") }
        let dtype = try NPYDType(descr: descr)
        var count = 1
        for d in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow else { throw .shapeTooLarge(shape: shape) }
            count = product
        }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.size)
        guard !overflow else { throw .shapeTooLarge(shape: shape) }
        let actual = member.count - dataOffset
        guard actual == bytes else {
            throw .dataLength(actual: actual, expected: bytes, shape: shape, descr: descr)
        }
        self.init(version: major, dtype: dtype, fortranOrder: fortran, shape: shape, dataOffset: dataOffset)
    }

    /// Copies the elements of `member` (the whole NPY member this header was parsed from) to
    /// `destination` in C order and little-endian byte order: the bytes numpy's
    /// `np.load(member).astype(dtype.littleEndian, order="C").tobytes()` gives. Big-endian
    /// elements are byte-swapped and Fortran-order arrays transposed.
    ///
    /// ```swift
    /// let out = UnsafeMutableRawBufferPointer.allocate(byteCount: header.dataByteCount, alignment: 8)
    /// header.copyElements(of: member, to: out.baseAddress!)
    /// ```
    ///
    /// `destination` must have room for ``dataByteCount`` bytes.
    /// - Complexity: O(``dataByteCount``).
    public func copyElements(of member: UnsafeRawBufferPointer, to destination: UnsafeMutableRawPointer) {
        precondition(member.count - dataOffset == dataByteCount, "copyElements: not the member this header came from")
        guard dataByteCount > 0, let base = member.baseAddress else { return }
        let source = base + dataOffset
        let size = dtype.size
        let swap = dtype.isBigEndian
        if !fortranOrder || shape.count <= 1 {
            if swap {
                Self.swapCopy(source, destination, count: elementCount, size: size)
            } else {
                destination.copyMemory(from: source, byteCount: dataByteCount)
            }
            return
        }
        // Fortran order: walk the destination in C order and gather from the column-major source,
        // where dimension k has stride product(shape[0..<k]).
        let rank = shape.count
        var strides = [Int](repeating: 1, count: rank)
        for k in 1..<rank { strides[k] = strides[k - 1] * shape[k - 1] }
        var index = [Int](repeating: 0, count: rank)
        let inner = shape[rank - 1]
        let innerStride = strides[rank - 1] * size
        var out = destination
        var rowStart = 0  // source element offset of index with the last coordinate 0
        for _ in 0..<(elementCount / inner) {
            var from = source + rowStart * size
            for _ in 0..<inner {
                if swap {
                    Self.swapCopy(from, out, count: 1, size: size)
                } else {
                    out.copyMemory(from: from, byteCount: size)
                }
                from += innerStride
                out += size
            }
            // The odometer over dimensions 0..<rank-1, last of them fastest.
            var k = rank - 2
            while k >= 0 {
                index[k] += 1
                rowStart += strides[k]
                if index[k] < shape[k] { break }
                rowStart -= strides[k] * shape[k]
                index[k] = 0
                k -= 1
            }
        }
    }

    /// Copies `count` elements of `size` bytes, reversing each element's bytes.
    private static func swapCopy(_ from: UnsafeRawPointer, _ to: UnsafeMutableRawPointer, count: Int, size: Int) {
        switch size {
        case 2:
            for i in 0..<count {
                let v = from.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)
                to.storeBytes(of: v.byteSwapped, toByteOffset: i * 2, as: UInt16.self)
            }
        case 4:
            for i in 0..<count {
                let v = from.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)
                to.storeBytes(of: v.byteSwapped, toByteOffset: i * 4, as: UInt32.self)
            }
        case 8:
            for i in 0..<count {
                let v = from.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)
                to.storeBytes(of: v.byteSwapped, toByteOffset: i * 8, as: UInt64.self)
            }
        default:
            to.copyMemory(from: from, byteCount: count * size)
        }
    }
}

/// A reader of the Python dict literal in an NPY header:
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }` followed by spaces and a newline.
private struct HeaderParser {
    let bytes: UnsafeRawBufferPointer
    var at = 0

    struct Dictionary {
        var descr: String?
        var fortranOrder: Bool?
        var shape: [Int]?
    }

    init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    private func fail(_ what: String) -> NPYError {
        .badHeader("\(what) at header byte \(at)")
    }

    private mutating func skipSpace() {
        while at < bytes.count, [0x20, 0x09, 0x0A, 0x0D, 0x00].contains(bytes[at]) { at += 1 }
    }

    private mutating func expect(_ c: Character) throws(NPYError) {
        skipSpace()
        guard at < bytes.count, bytes[at] == c.asciiValue! else { throw fail("expected '\(c)'") }
        at += 1
    }

    private mutating func peek(_ c: Character) -> Bool {
        skipSpace()
        return at < bytes.count && bytes[at] == c.asciiValue!
    }

    /// A single- or double-quoted string without escapes.
    private mutating func string() throws(NPYError) -> String {
        skipSpace()
        guard at < bytes.count, bytes[at] == 0x27 || bytes[at] == 0x22 else { throw fail("expected a quoted string") }
        let quote = bytes[at]
        let start = at + 1
        var end = start
        while end < bytes.count, bytes[end] != quote {
            guard bytes[end] != 0x5C else { throw fail("unexpected escape in a string") }
            end += 1
        }
        guard end < bytes.count else { throw fail("unterminated string") }
        at = end + 1
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
    }

    private mutating func word() -> String {
        skipSpace()
        let start = at
        while at < bytes.count,
            bytes[at] == 0x5F || (0x30...0x39).contains(bytes[at]) || (0x41...0x5A).contains(bytes[at])
                || (0x61...0x7A).contains(bytes[at])
        {
            at += 1
        }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<at]), as: UTF8.self)
    }

    /// The text of a list up to its matching `]` (a structured dtype), for the error message.
    private mutating func bracketed() -> String {
        let start = at
        var depth = 0
        while at < bytes.count {
            if bytes[at] == 0x5B { depth += 1 }
            if bytes[at] == 0x5D { depth -= 1 }
            at += 1
            if depth == 0 { break }
        }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<at]), as: UTF8.self)
    }

    /// `(3, 4)`, `(16,)`, `()`; a Python 2 `16L` is accepted.
    private mutating func tuple() throws(NPYError) -> [Int] {
        try expect("(")
        var out: [Int] = []
        while !peek(")") {
            let start = at
            var token = word()
            if token.hasSuffix("L") { token.removeLast() }
            guard let n = Int(token), n >= 0, token.allSatisfy({ $0.isASCII && $0.isNumber }) else {
                at = start
                throw fail("expected a non-negative dimension")
            }
            out.append(n)
            if peek(",") { at += 1 } else if !peek(")") { throw fail("expected ',' or ')' in the shape") }
        }
        at += 1
        return out
    }

    mutating func dictionary() throws(NPYError) -> Dictionary {
        var out = Dictionary()
        try expect("{")
        while !peek("}") {
            let keyAt = at
            let key = try string()
            try expect(":")
            skipSpace()
            switch key {
            case "descr":
                guard out.descr == nil else { throw .badHeader("the key 'descr' appears twice") }
                if peek("[") { throw .unsupportedDType(bracketed()) }
                out.descr = try string()
            case "fortran_order":
                guard out.fortranOrder == nil else { throw .badHeader("the key 'fortran_order' appears twice") }
                let valueAt = at
                switch word() {
                case "True": out.fortranOrder = true
                case "False": out.fortranOrder = false
                default:
                    at = valueAt
                    throw fail("expected True or False for 'fortran_order'")
                }
            case "shape":
                guard out.shape == nil else { throw .badHeader("the key 'shape' appears twice") }
                out.shape = try tuple()
            default:
                at = keyAt
                throw fail("unexpected key '\(oneLine(key))'")
            }
            if peek(",") { at += 1 } else if !peek("}") { throw fail("expected ',' or '}'") }
        }
        at += 1
        skipSpace()
        guard at == bytes.count else { throw fail("unexpected text after the dictionary") }
        return out
    }
}

/// Parses NPY headers, reusing the last result when a member has the same length and the same
/// header bytes as the member parsed before it (the common case: arrays of one dtype and shape),
/// which costs one comparison of the header bytes instead of a parse.
///
/// ```swift
/// var headers = NPYHeaderCache()
/// for member in members { let h = try headers.parse(member) }
/// ```
public struct NPYHeaderCache: Sendable {
    private var prefix: [UInt8] = []
    private var memberLength = -1
    private var header: NPYHeader?

    public init() {}

    /// The header of `member`, as ``NPYHeader/init(parsing:)`` gives it.
    ///
    /// - Throws: ``NPYError``.
    /// - Complexity: O(header length).
    public mutating func parse(_ member: UnsafeRawBufferPointer) throws(NPYError) -> NPYHeader {
        if let header, member.count == memberLength, matchesPrefix(member) { return header }
        let parsed = try NPYHeader(parsing: member)
        prefix = Array(member[0..<parsed.dataOffset])
        memberLength = member.count
        header = parsed
        return parsed
    }

    private func matchesPrefix(_ member: UnsafeRawBufferPointer) -> Bool {
        prefix.withUnsafeBytes { wordwiseEqual($0, member, count: $0.count) }
    }
}
