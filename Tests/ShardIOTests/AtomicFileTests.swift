import Foundation
import ShardIO
import ShardTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The atomic-file facility every writer goes through: an exclusive, unpredictable temporary
/// beside the destination, a checked sync, a rename (or a link that refuses an existing
/// destination), and nothing left behind on failure.
@Suite("AtomicFile: temporary, commit, discard, stale partials")
struct AtomicFileTests {
    private func bytes(_ path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    private func write(_ path: String, _ bytes: [UInt8]) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    private func listing(_ path: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: path).sorted()
    }

    private func isSymlink(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK
    }

    /// A process id that no process has now.
    private func deadProcessID() -> Int32 {
        var pid: Int32 = 4_000_000
        while kill(pid, 0) == 0 || errno == EPERM { pid -= 1 }
        return pid
    }

    @Test("the temporary is .NAME.shardstore-partial-PID-RANDOM in the destination's real folder")
    func temporaryName() throws {
        let directory = try TemporaryDirectory()
        let a = try AtomicFile(destination: directory.path + "/out.bin")
        let b = try AtomicFile(destination: directory.path + "/out.bin")
        let folder = try Paths.real(directory.path)
        for file in [a, b] {
            #expect(Paths.directory(of: file.temporaryPath) == folder)
            let name = Paths.basename(of: file.temporaryPath)
            let prefix = ".out.bin.shardstore-partial-\(getpid())-"
            #expect(name.hasPrefix(prefix))
            let random = name.dropFirst(prefix.count)
            #expect(random.count == 16 && random.allSatisfy { $0.isHexDigit }, "\(name)")
            #expect(file.descriptorPath == "/proc/self/fd/\(file.descriptor)")
        }
        #expect(a.temporaryPath != b.temporaryPath)
        #expect(try listing(directory.path).count == 2)
    }

    @Test("commit replaces the destination with exactly the bytes written; nothing else is left")
    func commitReplaces() throws {
        let directory = try TemporaryDirectory()
        let out = directory.path + "/out.bin"
        try write(out, [9, 9, 9, 9, 9, 9, 9, 9, 9, 9])
        let file = try AtomicFile(destination: out)
        try [UInt8]([1, 2, 3]).withUnsafeBytes { try file.write($0) }
        try [UInt8]([4, 5]).withUnsafeBytes { try file.write($0) }
        #expect(try bytes(out) == [9, 9, 9, 9, 9, 9, 9, 9, 9, 9], "the destination is untouched before commit")
        #expect(try file.size() == 5)
        try file.commit()
        #expect(try bytes(out) == [1, 2, 3, 4, 5])
        #expect(try listing(directory.path) == ["out.bin"])
    }

    @Test("positional writers: records after a header, the header written last at offset 0")
    func positionalWriters() throws {
        let directory = try TemporaryDirectory()
        let out = directory.path + "/table.bin"
        let file = try AtomicFile(destination: out)
        var records = file.writer(at: 8, capacity: 4)
        try records.append(UInt32(0x0403_0201))
        try records.append(UInt16(0x0605))
        // Larger than the buffer: written straight through.
        try [UInt8](repeating: 7, count: 9).withUnsafeBytes { try records.append(bytes: $0) }
        try records.flush()
        #expect(records.position == 8 + 4 + 2 + 9)
        var header = file.writer(at: 0, capacity: 64)
        try header.append(UInt64(0xAABB))
        try header.flush()
        try file.commit()
        #expect(try bytes(out) == [0xBB, 0xAA, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6] + [UInt8](repeating: 7, count: 9))
    }

    @Test("discard, and a dropped file, remove the temporary and leave the destination as it was")
    func discardAndDrop() throws {
        let directory = try TemporaryDirectory()
        let out = directory.path + "/out.bin"
        try write(out, [1])
        let file = try AtomicFile(destination: out)
        try [UInt8]([2]).withUnsafeBytes { try file.write($0) }
        file.discard()
        file.discard()
        #expect(try listing(directory.path) == ["out.bin"])
        do {
            let dropped = try AtomicFile(destination: out)
            try [UInt8]([3]).withUnsafeBytes { try dropped.write($0) }
            #expect(try listing(directory.path).count == 2)
        }
        #expect(try listing(directory.path) == ["out.bin"])
        #expect(try bytes(out) == [1])
    }

    @Test("refusingExisting: an existing destination fails the commit with EEXIST and stays; nothing is left")
    func refusingExisting() throws {
        let directory = try TemporaryDirectory()
        let out = directory.path + "/index.sqlite"
        let file = try AtomicFile(destination: out)
        try [UInt8]([1, 2]).withUnsafeBytes { try file.write($0) }
        try write(out, [7])
        let error = try #require(throws: IOError.self) { try file.commit(.refusingExisting) }
        #expect(error.errno == EEXIST)
        #expect(error.description == "cannot publish '\(out)': File exists (errno 17)")
        #expect(try bytes(out) == [7])
        #expect(try listing(directory.path) == ["index.sqlite"])

        let second = try AtomicFile(destination: directory.path + "/new.sqlite")
        try [UInt8]([3]).withUnsafeBytes { try second.write($0) }
        try second.commit(.refusingExisting)
        #expect(try bytes(directory.path + "/new.sqlite") == [3])
        #expect(try listing(directory.path) == ["index.sqlite", "new.sqlite"])
    }

    @Test("a symlink put at the temporary name is never written through, and the commit refuses it")
    func replacedTemporary() throws {
        let directory = try TemporaryDirectory()
        let victim = directory.path + "/victim"
        try write(victim, [0x76, 0x76])
        let out = directory.path + "/out.bin"
        let file = try AtomicFile(destination: out)
        // Another process swaps the temporary for a link to the victim.
        #expect(unlink(file.temporaryPath) == 0)
        #expect(symlink(victim, file.temporaryPath) == 0)
        try [UInt8]([1, 2, 3]).withUnsafeBytes { try file.write($0) }
        // What a library handed descriptorPath opens is the file the facility made.
        let fd = open(file.descriptorPath, O_WRONLY | O_TRUNC)
        #expect(fd >= 0)
        _ = [UInt8]([4, 5]).withUnsafeBytes { Glibc.write(fd, $0.baseAddress!, 2) }
        close(fd)
        let error = try #require(throws: IOError.self) { try file.commit() }
        #expect(
            error.description
                == "cannot publish '\(file.temporaryPath)' (another process removed or replaced the temporary file; nothing was published)"
        )
        #expect(try bytes(victim) == [0x76, 0x76])
        #expect(!FileManager.default.fileExists(atPath: out))
        // The planted link is not the facility's to remove.
        #expect(isSymlink(file.temporaryPath))
    }

    @Test("a missing folder is named")
    func missingFolder() throws {
        let directory = try TemporaryDirectory()
        let error = try #require(throws: IOError.self) { _ = try AtomicFile(destination: directory.path + "/no/out") }
        #expect(error.description == "cannot open folder '\(directory.path)/no': No such file or directory (errno 2)")
    }

    @Test("stale partials of dead processes go (files, folders, links, journals); live ones and others stay")
    func stalePartials() throws {
        let directory = try TemporaryDirectory()
        let dir = directory.path
        let dead = deadProcessID()
        let alive = getppid()
        let outside = try TemporaryDirectory(prefix: "shardstore-outside")
        try write(outside.path + "/keep", [1])

        let deadFile = ".out.h5.shardstore-partial-\(dead)-00112233aabbccdd"
        let deadOld = ".out.h5.shardstore-partial-\(dead)"
        let deadIngest = ".out.h5.partial-\(dead)"
        let deadJournal = ".out.h5.partial-\(dead)-journal"
        let deadFolder = ".out.h5.shardstore-partial-\(dead)-ffeeddccbbaa9988"
        let deadLink = ".out.h5.shardstore-partial-\(dead)-0000000000000001"
        for name in [deadFile, deadOld, deadIngest, deadJournal] { try write(dir + "/" + name, [0]) }
        #expect(mkdir(dir + "/" + deadFolder, 0o755) == 0)
        try write(dir + "/" + deadFolder + "/x.bin", [0])
        #expect(symlink(outside.path, dir + "/" + deadFolder + "/escape") == 0)
        #expect(symlink(outside.path + "/keep", dir + "/" + deadLink) == 0)

        let kept = [
            ".out.h5.shardstore-partial-\(alive)-0123456789abcdef",
            ".out.h5.shardstore-partial-\(getpid())-0123456789abcdef",
            ".out.h5.shardstore-partial-x\(dead)", ".other.h5.shardstore-partial-\(dead)-0123456789abcdef",
            ".out.h5.partial-\(dead)x", "out.h5",
        ]
        for name in kept { try write(dir + "/" + name, [1]) }

        let removed = AtomicFile.removeStalePartials(for: dir + "/out.h5")
        #expect(
            removed.sorted()
                == [deadFile, deadOld, deadIngest, deadJournal, deadFolder, deadLink].map { dir + "/" + $0 }.sorted())
        #expect(try listing(dir) == kept.sorted())
        #expect(try listing(outside.path) == ["keep"])
        #expect(try bytes(outside.path + "/keep") == [1])
    }
}
