/// Whether the first `count` bytes of `a` and `b` are equal, compared a word at a time (for short
/// runs compared often: sample keys, NPY headers). Both buffers must hold at least `count` bytes.
///
/// - Complexity: O(`count`).
@inline(__always)
func wordwiseEqual(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer, count n: Int) -> Bool {
    var i = 0
    while i + 8 <= n {
        if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) {
            return false
        }
        i += 8
    }
    while i < n {
        if a[i] != b[i] { return false }
        i += 1
    }
    return true
}
