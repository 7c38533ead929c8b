import Foundation
import ShardIO
import ShardTestSupport
import Testing

@testable import ShardExport

#if canImport(Glibc)
    import Glibc
#endif

@Suite("ExportOutput: temporary name, publish, discard")
struct ExportOutputTests {
    private func write(_ path: String, _ text: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        _ = text.utf8CString.withUnsafeBufferPointer { Glibc.write(fd, $0.baseAddress!, $0.count - 1) }
        close(fd)
    }

    @Test("an existing destination is refused without overwrite, and a missing parent is named")
    func refusals() throws {
        let directory = try TemporaryDirectory()
        let dir = directory.path
        write(dir + "/out.h5", "old")
        #expect(throws: ExportError.outputExists(path: dir + "/out.h5")) {
            _ = try ExportOutput(destination: dir + "/out.h5", kind: .file, overwrite: false, inputs: [])
        }
        #expect(throws: ExportError.missingParent(path: dir + "/no/out.h5", parent: dir + "/no")) {
            _ = try ExportOutput(destination: dir + "/no/out.h5", kind: .file, overwrite: false, inputs: [])
        }
        #expect(throws: ExportError.outputIsInput(path: dir + "/out.h5", input: dir + "/out.h5")) {
            _ = try ExportOutput(destination: dir + "/out.h5", kind: .file, overwrite: true, inputs: [dir + "/out.h5"])
        }
    }

    @Test("a dropped output leaves neither the temporary nor a destination")
    func dropped() throws {
        let directory = try TemporaryDirectory()
        let dir = directory.path
        var temporary = ""
        do {
            let output = try ExportOutput(destination: dir + "/tree", kind: .directory, overwrite: false, inputs: [])
            temporary = output.temporaryPath
            #expect(mkdir(temporary + "/a", 0o755) == 0)
            write(temporary + "/a/b.bin", "x")
            #expect(symlink("/etc", temporary + "/link") == 0)
        }
        #expect(!temporary.isEmpty && !exists(temporary))
        #expect(!exists(dir + "/tree"))
        #expect(exists("/etc/passwd"))
    }

    @Test("publish replaces an existing folder whole, with overwrite")
    func publishFolder() throws {
        let directory = try TemporaryDirectory()
        let dir = directory.path
        #expect(mkdir(dir + "/tree", 0o755) == 0)
        write(dir + "/tree/old.txt", "old")
        let output = try ExportOutput(destination: dir + "/tree", kind: .directory, overwrite: true, inputs: [])
        write(output.temporaryPath + "/new.txt", "new")
        try output.publish()
        #expect(exists(dir + "/tree/new.txt"))
        #expect(!exists(dir + "/tree/old.txt"))
        #expect(!exists(output.temporaryPath))
    }

    @Test("temporaries left by dead exports to the same destination go when the next export starts")
    func staleTemporaries() throws {
        let directory = try TemporaryDirectory()
        let dir = directory.path
        var dead: Int32 = 4_000_000
        while kill(dead, 0) == 0 || errno == EPERM { dead -= 1 }
        write(dir + "/.out.h5.shardstore-partial-\(dead)-0123456789abcdef", "x")
        write(dir + "/.out.h5.shardstore-partial-\(dead)", "x")
        #expect(mkdir(dir + "/.out.h5.shardstore-partial-\(dead)-fedcba9876543210", 0o755) == 0)
        write(dir + "/.out.h5.shardstore-partial-\(dead)-fedcba9876543210/a.bin", "x")
        let live = ".out.h5.shardstore-partial-\(getppid())-0123456789abcdef"
        write(dir + "/" + live, "x")
        let output = try ExportOutput(destination: dir + "/out.h5", kind: .file, overwrite: false, inputs: [])
        let temporary = Paths.basename(of: output.temporaryPath)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == [live, temporary].sorted())
        output.discard()
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == [live])
    }

    @Test("an output named like the index's journal is refused even before the journal exists")
    func journalName() throws {
        let directory = try TemporaryDirectory()
        let dir = directory.path
        #expect(throws: ExportError.outputIsInput(path: dir + "/i.sqlite-journal", input: dir + "/i.sqlite-journal")) {
            _ = try ExportOutput(
                destination: dir + "/i.sqlite-journal", kind: .file, overwrite: false,
                inputs: [dir + "/i.sqlite", dir + "/i.sqlite-journal"])
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == [])
    }
}
