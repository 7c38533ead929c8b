import ShardIO
import ShardLoader

#if canImport(Glibc)
    import Glibc
#endif

/// Writes the `packed` raw layout into one folder: for each extension `<ext>.bin` (the members'
/// bytes back to back, in export order) and `<ext>.offsets.npy` (NPY 1.0, `<i8`, `count + 1`
/// values: sample `i`'s member is `bin[offsets[i]..<offsets[i+1]]`, an empty range when the
/// sample has no such member), and `keys.txt` (one key per line, `\n`-terminated, same order).
///
/// ```swift
/// let packed = try PackedWriter(tree: tree, folder: [], extensions: ["jpg", "cls"], expectedSamples: n)
/// try dataset.forEachSample { try packed.append($0) }
/// let written = try packed.finish()
/// ```
///
/// Writes go through a buffer of up to 4 MiB per file (members larger than the buffer are
/// written straight from the source). Not thread-safe.
final class PackedWriter {
    /// The extensions, in entry order.
    let extensions: [String]
    private let tree: FileTree
    private let folder: [[UInt8]]
    private let bins: [BufferedFile]
    private let keys: BufferedFile
    private var offsets: [[Int64]]
    private let extensionNumbers: [String: Int]
    private var seen: [Bool]

    /// Creates the `.bin` files and `keys.txt` in `folder` (components below the tree's root).
    ///
    /// - Throws: ``FileTree/Crossing``, `IOError`.
    init(tree: FileTree, folder: [[UInt8]], extensions: [String], expectedSamples: Int) throws {
        self.tree = tree
        self.folder = folder
        self.extensions = extensions
        let bufferBytes = max(256 << 10, min(4 << 20, (32 << 20) / (extensions.count + 1)))
        var bins: [BufferedFile] = []
        for ext in extensions {
            bins.append(
                try BufferedFile(tree: tree, path: folder + [Array((ext + ".bin").utf8)], capacity: bufferBytes))
        }
        self.bins = bins
        keys = try BufferedFile(tree: tree, path: folder + [Array("keys.txt".utf8)], capacity: bufferBytes)
        offsets = extensions.map { _ in
            var a: [Int64] = []
            a.reserveCapacity(expectedSamples + 1)
            return a
        }
        var numbers: [String: Int] = [:]
        for (i, e) in extensions.enumerated() { numbers[e] = i }
        extensionNumbers = numbers
        seen = [Bool](repeating: false, count: extensions.count)
    }

    /// The file names written at the top of the folder, in order.
    var entries: [String] {
        extensions.flatMap { [$0 + ".bin", $0 + ".offsets.npy"] } + ["keys.txt"]
    }

    /// Appends one sample: its key to `keys.txt` and each member to its extension's `.bin`.
    ///
    /// - Returns: the number of members written.
    /// - Throws: `IOError`.
    func append(_ view: SampleView) throws -> Int {
        for e in 0..<bins.count {
            offsets[e].append(bins[e].position)
            seen[e] = false
        }
        var written = 0
        for member in view {
            guard let e = extensionNumbers[member.ext], !seen[e] else {
                throw ExportError.invalidArgument(
                    "the index changed while it was being exported (sample '\(ExportPath.display(UnsafeRawBufferPointer(view.keyBytes)))' has an unexpected member '.\(ExportPath.display(Array(member.ext.utf8)))'); run the export again"
                )
            }
            seen[e] = true
            try bins[e].append(member.bytes)
            written += 1
        }
        try keys.append(view.keyBytes)
        try withUnsafeBytes(of: UInt8(ascii: "\n")) { try keys.append($0) }
        return written
    }

    /// Flushes the `.bin` files and `keys.txt`, writes the `.offsets.npy` files, and syncs every
    /// file and the folder to disk with `fsync`.
    ///
    /// - Returns: the bytes written in all.
    /// - Throws: `IOError`.
    func finish() throws -> Int64 {
        var total: Int64 = 0
        for (e, bin) in bins.enumerated() {
            offsets[e].append(bin.position)
            try bin.finish()
            total += bin.position
            let npy = NPYWriter.int64Vector(offsets[e])
            let file = try BufferedFile(
                tree: tree, path: folder + [Array((extensions[e] + ".offsets.npy").utf8)], capacity: 0)
            try npy.withUnsafeBytes { try file.append($0) }
            try file.finish()
            total += file.position
        }
        try keys.finish()
        total += keys.position
        try tree.syncFolder(folder[...])
        if !folder.isEmpty { try tree.syncFolder([]) }
        return total
    }
}

/// A file written front to back through a buffer, synced and closed by ``finish()``.
final class BufferedFile {
    /// The bytes appended so far.
    private(set) var position: Int64 = 0
    private let fd: Int32
    private let path: String
    private let buffer: UnsafeMutableRawBufferPointer
    private var used = 0
    private var closed = false

    /// Creates the file at `path` (components below the tree's root), which must not exist.
    init(tree: FileTree, path components: [[UInt8]], capacity: Int) throws {
        let folder = try tree.folder(components.dropLast())
        fd = try tree.createFile(components[components.count - 1], in: folder)
        path = tree.rootPath + "/" + tree.displayPath(components)
        buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(capacity, 1), alignment: 4096)
    }

    deinit {
        if !closed { close(fd) }
        buffer.deallocate()
    }

    /// Appends `bytes`: copied into the buffer, or written straight when they do not fit in it.
    func append(_ bytes: UnsafeRawBufferPointer) throws {
        if bytes.count > buffer.count - used {
            try flush()
            if bytes.count >= buffer.count {
                try FileWriting.writeAll(bytes, to: fd, path: self.path)
                position += Int64(bytes.count)
                return
            }
        }
        if bytes.count > 0 {
            (buffer.baseAddress! + used).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            used += bytes.count
            position += Int64(bytes.count)
        }
    }

    /// Writes what is buffered.
    func flush() throws {
        guard used > 0 else { return }
        try FileWriting.writeAll(UnsafeRawBufferPointer(rebasing: buffer[0..<used]), to: fd, path: self.path)
        used = 0
    }

    /// Flushes, `fsync`s and closes the file.
    func finish() throws {
        try flush()
        try FileWriting.sync(fd, path: path)
        closed = true
        if close(fd) != 0 { throw IOError("close", path: path, errno: errno) }
    }
}
