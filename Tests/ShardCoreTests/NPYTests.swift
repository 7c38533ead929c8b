import Testing

@testable import ShardCore

/// An NPY member as numpy writes it: magic, version, little-endian header length, the dict text
/// padded with spaces to a multiple of 64 bytes and ended by a newline, then `data`.
func npyMember(version: UInt8 = 1, header dict: String, data: [UInt8], pad: Bool = true) -> [UInt8] {
    let prefix = version == 1 ? 10 : 12
    var text = Array(dict.utf8)
    if pad {
        let total = prefix + text.count + 1
        text += [UInt8](repeating: 0x20, count: (64 - total % 64) % 64)
        text.append(0x0A)
    }
    var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [version, 0]
    if version == 1 {
        out += [UInt8(text.count & 0xFF), UInt8(text.count >> 8)]
    } else {
        out += (0..<4).map { UInt8((text.count >> (8 * $0)) & 0xFF) }
    }
    return out + text + data
}

func npyDict(_ descr: String, fortran: Bool = false, shape: String) -> String {
    "{'descr': '\(descr)', 'fortran_order': \(fortran ? "True" : "False"), 'shape': \(shape), }"
}

/// The little-endian bytes of `value` truncated to `size` bytes (two's complement).
func leBytes(_ value: Int64, size: Int) -> [UInt8] {
    (0..<size).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
}

@Suite("NPY: header codec and element copies")
struct NPYTests {
    static let dtypes: [(descr: String, kind: NPYDType.Kind, size: Int, name: String)] = [
        ("|b1", .bool, 1, "bool"),
        ("|i1", .signed, 1, "int8"), ("<i2", .signed, 2, "int16"), ("<i4", .signed, 4, "int32"),
        ("<i8", .signed, 8, "int64"),
        ("|u1", .unsigned, 1, "uint8"), ("<u2", .unsigned, 2, "uint16"), ("<u4", .unsigned, 4, "uint32"),
        ("<u8", .unsigned, 8, "uint64"),
        ("<f2", .float, 2, "float16"), ("<f4", .float, 4, "float32"), ("<f8", .float, 8, "float64"),
    ]

    private func parse(_ bytes: [UInt8]) throws -> NPYHeader {
        try bytes.withUnsafeBytes { try NPYHeader(parsing: $0) }
    }

    private func elements(_ header: NPYHeader, _ bytes: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0xEE, count: header.dataByteCount)
        bytes.withUnsafeBytes { raw in
            out.withUnsafeMutableBytes { header.copyElements(of: raw, to: $0.baseAddress!) }
        }
        return out
    }

    @Test("every dtype, every byte order, every version: parsed, and copied as little-endian C order")
    func dtypesOrdersVersions() throws {
        for version: UInt8 in [1, 2, 3] {
            for t in Self.dtypes {
                for order in t.size == 1 ? ["|", "<", ">", "="] : ["<", ">", "|", "="] {
                    let descr = order + t.descr.dropFirst()
                    let big = order == ">" && t.size > 1
                    // Elements 0, 1, ... 5 (as raw integers; for floats only the bytes matter here).
                    let values: [Int64] = (0..<6).map { Int64($0) * 0x0102_0304 + 1 }
                    let little = values.flatMap { leBytes($0, size: t.size) }
                    let stored = big ? values.flatMap { leBytes($0, size: t.size).reversed() } : little
                    let member = npyMember(version: version, header: npyDict(descr, shape: "(2, 3)"), data: stored)
                    let h = try parse(member)
                    #expect(h.version == version)
                    #expect(h.dtype == NPYDType(kind: t.kind, size: t.size, isBigEndian: big), "\(descr)")
                    #expect(h.dtype.name == t.name)
                    #expect(h.dtype.littleEndian.descr == (t.size == 1 ? "|" : "<") + t.descr.dropFirst())
                    #expect(h.shape == [2, 3] && !h.fortranOrder)
                    #expect(h.elementCount == 6 && h.dataByteCount == 6 * t.size)
                    #expect(h.dataOffset == member.count - stored.count)
                    #expect(h.dataOffset % 64 == 0)
                    #expect(elements(h, member) == little, "\(descr) v\(version)")
                }
            }
        }
    }

    @Test("Fortran order is transposed to C order (2-D, 3-D, with byte swapping), 1-D and 0-D need nothing")
    func fortranOrder() throws {
        // A 2x3x4 array whose element (i, j, k) is 100i + 10j + k; stored column-major.
        let shape = [2, 3, 4]
        var cOrder: [Int64] = []
        for i in 0..<2 { for j in 0..<3 { for k in 0..<4 { cOrder.append(Int64(100 * i + 10 * j + k)) } } }
        var fOrder: [Int64] = []
        for k in 0..<4 { for j in 0..<3 { for i in 0..<2 { fOrder.append(Int64(100 * i + 10 * j + k)) } } }
        for (descr, size, big) in [("<i2", 2, false), (">i4", 4, true), ("<i8", 8, false), ("|u1", 1, false)] {
            let stored = fOrder.flatMap { big ? leBytes($0, size: size).reversed() : leBytes($0, size: size) }
            let member = npyMember(header: npyDict(descr, fortran: true, shape: "(2, 3, 4)"), data: stored)
            let h = try parse(member)
            #expect(h.fortranOrder && h.shape == shape)
            #expect(elements(h, member) == cOrder.flatMap { leBytes($0, size: size) }, "\(descr)")
        }
        // 2-D 3x2: (i, j) = 10i + j.
        let f2: [Int64] = [0, 10, 20, 1, 11, 21]
        let member2 = npyMember(
            header: npyDict("<f8", fortran: true, shape: "(3, 2)"), data: f2.flatMap { leBytes($0, size: 8) })
        #expect(elements(try parse(member2), member2) == [0, 1, 10, 11, 20, 21].flatMap { leBytes($0, size: 8) })
        // 1-D Fortran and 0-D arrays are copied as they are (byte-swapped when big-endian).
        let oneD = npyMember(header: npyDict(">u2", fortran: true, shape: "(3,)"), data: [0, 1, 0, 2, 1, 0])
        #expect(elements(try parse(oneD), oneD) == [1, 0, 2, 0, 0, 1])
        let zeroD = npyMember(header: npyDict(">f4", shape: "()"), data: [1, 2, 3, 4])
        let h0 = try parse(zeroD)
        #expect(h0.shape == [] && h0.elementCount == 1)
        #expect(elements(h0, zeroD) == [4, 3, 2, 1])
        // A zero-size dimension: no elements, no data.
        let empty = npyMember(header: npyDict("<f4", fortran: true, shape: "(0, 5)"), data: [])
        let he = try parse(empty)
        #expect(he.elementCount == 0 && he.dataByteCount == 0 && elements(he, empty) == [])
    }

    @Test("header spellings numpy and other writers use")
    func spellings() throws {
        let data = leBytes(7, size: 4) + leBytes(9, size: 4)
        let variants = [
            "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }",
            "{\"descr\": \"<i4\", \"fortran_order\": False, \"shape\": (2,)}",
            "{'shape': (2L,), 'fortran_order': False, 'descr': '<i4'}",
            "{ 'descr' : '<i4' ,'fortran_order':False,'shape':( 2 , ) }",
        ]
        for v in variants {
            let h = try parse(npyMember(header: v, data: data))
            #expect(h.shape == [2] && h.dtype == NPYDType(kind: .signed, size: 4), "\(v)")
        }
        // No padding and no newline (a minimal writer).
        let bare = npyMember(header: npyDict("<i4", shape: "(2,)"), data: data, pad: false)
        #expect(try parse(bare).dataOffset == 10 + npyDict("<i4", shape: "(2,)").utf8.count)
        // A dtype without a byte order character is the native (little-endian) one.
        #expect(try NPYDType(descr: "f8") == NPYDType(kind: .float, size: 8))
    }

    @Test(
        "malformed members: the exact reason",
        arguments: [
            (
                Array("\u{93}NUMP".utf8.prefix(5)),
                "the member is 5 bytes, too short for an NPY header (at least 10 bytes)"
            ),
            ([], "the member is 0 bytes, too short for an NPY header (at least 10 bytes)"),
            (
                Array("PK\u{3}\u{4}0123456789".utf8),
                "not an NPY array: it does not start with the magic bytes \\x93NUMPY"
            ),
        ] as [([UInt8], String)])
    func malformedPrefix(bytes: [UInt8], reason: String) {
        #expect(self.reason(bytes) == reason)
    }

    private func reason(_ bytes: [UInt8]) -> String? {
        do {
            _ = try parse(bytes)
            return nil
        } catch {
            return (error as? NPYError)?.description ?? "not an NPYError: \(error)"
        }
    }

    @Test("malformed headers: the exact reason")
    func malformedHeaders() {
        let four = leBytes(1, size: 4)
        var v4 = npyMember(header: npyDict("<i4", shape: "(1,)"), data: four)
        v4[6] = 4
        #expect(reason(v4) == "unsupported NPY format version 4.0 (versions 1.0, 2.0 and 3.0 are read)")
        var v11 = npyMember(header: npyDict("<i4", shape: "(1,)"), data: four)
        v11[7] = 1
        #expect(reason(v11) == "unsupported NPY format version 1.1 (versions 1.0, 2.0 and 3.0 are read)")
        // A header length past the end (v1 2-byte field, v2 4-byte field).
        var long1 = npyMember(header: npyDict("<i4", shape: "(1,)"), data: [])
        long1 = Array(long1.prefix(120))
        long1[8] = UInt8(9000 & 0xFF)
        long1[9] = UInt8(9000 >> 8)
        #expect(reason(long1) == "the header length 9000 runs past the member's end (120 bytes)")
        var long2 = npyMember(version: 2, header: npyDict("<i4", shape: "(1,)"), data: four)
        long2[8...11] = [0, 0, 0, 1]
        #expect(reason(long2) == "the header length 16777216 runs past the member's end (132 bytes)")
        #expect(
            reason([0x93] + Array("NUMPY".utf8) + [2, 0, 0, 0])
                == "the member is 10 bytes, too short for an NPY header (at least 12 bytes)")

        let cases: [(String, String)] = [
            (
                npyDict("<c16", shape: "(1,)"),
                "unsupported dtype '<c16' (bool, int8 to int64, uint8 to uint64, float16, float32 and float64 are read)"
            ),
            (
                npyDict("|S4", shape: "(1,)"),
                "unsupported dtype '|S4' (bool, int8 to int64, uint8 to uint64, float16, float32 and float64 are read)"
            ),
            (
                npyDict("<f16", shape: "(1,)"),
                "unsupported dtype '<f16' (bool, int8 to int64, uint8 to uint64, float16, float32 and float64 are read)"
            ),
            (
                npyDict("<M8[ns]", shape: "(1,)"),
                "unsupported dtype '<M8[ns]' (bool, int8 to int64, uint8 to uint64, float16, float32 and float64 are read)"
            ),
            (
                npyDict("|O", shape: "(1,)"),
                "unsupported dtype '|O' (bool, int8 to int64, uint8 to uint64, float16, float32 and float64 are read)"
            ),
            (
                "{'descr': [('a', '<i4'), ('b', '<f8')], 'fortran_order': False, 'shape': (1,), }",
                "unsupported dtype '[('a', '<i4'), ('b', '<f8')]' (bool, int8 to int64, uint8 to uint64, float16, float32 and float64 are read)"
            ),
            ("{'descr': '<i4', 'fortran_order': False}", "malformed NPY header: it has no 'shape' entry"),
            ("{'fortran_order': False, 'shape': (1,)}", "malformed NPY header: it has no 'descr' entry"),
            ("{'descr': '<i4', 'shape': (1,)}", "malformed NPY header: it has no 'fortran_order' entry"),
            (
                "{'descr': '<i4', 'fortran_order': 0, 'shape': (1,)}",
                "malformed NPY header: expected True or False for 'fortran_order' at header byte 34"
            ),
            (
                "{'descr': '<i4', 'fortran_order': False, 'shape': (-1,)}",
                "malformed NPY header: expected a non-negative dimension at header byte 51"
            ),
            (
                "{'descr': '<i4', 'fortran_order': False, 'shape': [1]}",
                "malformed NPY header: expected '(' at header byte 50"
            ),
            (
                "{'descr': '<i4', 'fortran_order': False, 'shape': (1,), 'x': 1}",
                "malformed NPY header: unexpected key 'x' at header byte 56"
            ),
            ("{'descr': '<i4', 'descr': '<i4'}", "malformed NPY header: the key 'descr' appears twice"),
            ("{'descr': '<i4' 'fortran_order': False}", "malformed NPY header: expected ',' or '}' at header byte 16"),
            (
                "{'descr': '<i4', 'fortran_order': False, 'shape': (1,)} x",
                "malformed NPY header: unexpected text after the dictionary at header byte 56"
            ),
            ("'descr'", "malformed NPY header: expected '{' at header byte 0"),
            ("{'descr: '<i4'}", "malformed NPY header: expected ':' at header byte 10"),
        ]
        for (dict, expected) in cases {
            #expect(reason(npyMember(header: dict, data: four, pad: false)) == expected, "\(dict)")
        }
        // The data length must be product(shape) * itemsize.
        #expect(
            reason(npyMember(header: npyDict("<f4", shape: "(4, 4)"), data: [UInt8](repeating: 0, count: 60)))
                == "the data is 60 bytes, but shape (4, 4) of '<f4' needs 64")
        #expect(
            reason(npyMember(header: npyDict("<f8", shape: "(2,)"), data: [UInt8](repeating: 0, count: 17)))
                == "the data is 17 bytes, but shape (2,) of '<f8' needs 16")
        #expect(
            reason(npyMember(header: npyDict("|u1", shape: "()"), data: []))
                == "the data is 0 bytes, but shape () of '|u1' needs 1")
        #expect(
            reason(npyMember(header: npyDict("<f8", shape: "(4294967296, 4294967296)"), data: []))
                == "the shape (4294967296, 4294967296) is too large")
    }

    // Found by tools/fuzz (npy): a key or dtype holding a newline made a two-line error.
    @Test("a reason quoting header text stays on one line: control characters are escaped")
    func reasonsAreOneLine() {
        let four = [UInt8](repeating: 0, count: 4)
        #expect(
            reason(npyMember(header: "{'a\nb': 1}", data: four, pad: false))
                == "malformed NPY header: unexpected key 'a\\x0ab' at header byte 1")
        #expect(
            reason(npyMember(header: npyDict("<i\r\n4\u{7F}\u{85}\u{2028}", shape: "(1,)"), data: four))
                == "unsupported dtype '<i\\x0d\\x0a4\\x7f\\u{85}\\u{2028}' (bool, int8 to int64, uint8 to uint64, float16, float32 and float64 are read)"
        )
    }
}
