/// Writes NPY version 1.0 files: the `.offsets.npy` files of the packed raw layout.
///
/// The layout: the magic `\x93NUMPY`, version `1 0`, a little-endian `UInt16` header length,
/// then a Python dict literal (`{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }`)
/// padded with spaces and ended by `\n` so the data starts at a multiple of 64 bytes, as
/// `numpy.lib.format` writes it; then the data, C order.
///
/// ```swift
/// let file = NPYWriter.int64Vector([0, 5, 9])   // np.load gives array([0, 5, 9])
/// ```
enum NPYWriter {
    /// The header of an NPY 1.0 file holding a C-order array of `descr` (`<i8`) and `shape`.
    ///
    /// - Complexity: O(1).
    static func header(descr: String, shape: [Int]) -> [UInt8] {
        let dims = shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? "," : "")
        var dict = "{'descr': '\(descr)', 'fortran_order': False, 'shape': (\(dims)), }"
        let prefix = 10  // magic (6) + version (2) + header length (2)
        let unpadded = prefix + dict.utf8.count + 1
        dict += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        precondition(dict.utf8.count <= Int(UInt16.max), "an NPY 1.0 header holds at most 65535 bytes")
        let length = UInt16(dict.utf8.count)
        return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(length & 0xFF), UInt8(length >> 8)] + Array(dict.utf8)
    }

    /// A whole NPY 1.0 file holding `values` as a one-dimensional little-endian int64 array.
    ///
    /// - Complexity: O(values).
    static func int64Vector(_ values: [Int64]) -> [UInt8] {
        var out = header(descr: "<i8", shape: [values.count])
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: values.count * 8))
        out.withUnsafeMutableBytes { raw in
            for (i, v) in values.enumerated() {
                raw.storeBytes(of: v.littleEndian, toByteOffset: start + i * 8, as: Int64.self)
            }
        }
        return out
    }
}
