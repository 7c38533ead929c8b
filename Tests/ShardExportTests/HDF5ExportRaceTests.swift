import Foundation
import ShardStore
import ShardTestSupport
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// An HDF5 export writes only into the file its ``AtomicFile`` created: a symbolic link planted at
/// the temporary name while the export reads (where the old code removed the name, read, then let
/// `H5Fcreate(TRUNC)` follow whatever was there) is never followed.
@Suite("HDF5 export: a symlink planted at the temporary name")
struct HDF5ExportRaceTests {
    /// `fromPoll` 1: the links are planted from the first poll (the first pass, before libhdf5
    /// opens the file); 5: from the second pass (after it did).
    @Test(
        "links planted at the temporary names are not followed; the victims keep their bytes; nothing is published",
        arguments: [1, 5])
    func plantedLink(fromPoll: Int) throws {
        let fx = try HDF5ExportTests.Fixture()
        let folder = try Paths.real(fx.directory.path)
        let victim = folder + "/victim.bin"
        let oldNameVictim = folder + "/victim-old-name.bin"
        try Data("precious".utf8).write(to: URL(fileURLWithPath: victim))
        try Data("precious too".utf8).write(to: URL(fileURLWithPath: oldNameVictim))
        // The name the old code created the file under, after removing it at the start.
        let oldName = folder + "/.out.h5.shardstore-partial-\(getpid())"
        let replaced = Mutex<[String]>([])
        let polls = Mutex(0)
        let error = thrown {
            _ = try HDF5Export.run(
                ExportRequest(index: fx.index, out: fx.out), compression: .none, progress: nil,
                isCancelled: {
                    let poll = polls.withLock {
                        $0 += 1
                        return $0
                    }
                    guard poll >= fromPoll else { return false }
                    var st = stat()
                    if lstat(oldName, &st) != 0 { _ = symlink(oldNameVictim, oldName) }
                    let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
                    for name in names where name.hasPrefix(".out.h5.shardstore-partial-\(getpid())-") {
                        let path = folder + "/" + name
                        guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
                        unlink(path)
                        _ = symlink(victim, path)
                        replaced.withLock { $0.append(path) }
                    }
                    return false
                })
        }
        let temporary = try #require(replaced.withLock { $0.first })
        #expect(replaced.withLock { $0.count } == 1)
        #expect(
            "\(error.map { "\($0)" } ?? "no error")"
                == "cannot publish '\(temporary)' (another process removed or replaced the temporary file; nothing was published)"
        )
        #expect(try fileBytes(victim) == Array("precious".utf8))
        #expect(try fileBytes(oldNameVictim) == Array("precious too".utf8))
        #expect(!exists(fx.out))
        // The next export, undisturbed, works.
        _ = try HDF5Export.run(ExportRequest(index: fx.index, out: fx.out))
        #expect(try fileBytes(fx.out).prefix(8) == [0x89] + Array("HDF\r\n".utf8) + [0x1A, 0x0A])
        #expect(try fileBytes(victim) == Array("precious".utf8))
    }
}
