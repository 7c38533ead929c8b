import Foundation
import ShardCore
import ShardTestSupport
import Testing

/// Tars written by GNU tar and Python's tarfile, compared with tarfile's own listing.
@Suite("TarScanner: archives from real producers")
struct TarScannerProducerTests {
    /// Makes a tree under `root/data` suited to `format`, archives it with `producer` into `out`
    /// and prints tarfile's listing of `out` as JSON.
    static let script = #"""
        import json, os, subprocess, sys, tarfile
        root, producer, fmt, out = sys.argv[1:5]
        root = os.fsencode(root)
        def write(rel, content):
            path = os.path.join(root, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(content)
        write(b"data/small.txt", b"small\n")
        write(b"data/big.bin", bytes((i * 31 + 7) % 256 for i in range(5000)))
        write("data/日本語-é.json".encode(), b'{"k": 1}')
        write(b"data/raw-\xff\xfe.bin", b"raw")
        os.makedirs(os.path.join(root, b"data/empty-dir"))
        os.symlink(b"small.txt", os.path.join(root, b"data/link.txt"))
        os.link(os.path.join(root, b"data/small.txt"), os.path.join(root, b"data/hard.txt"))
        if fmt != "v7":
            # More than 155 bytes, splittable for ustar (prefix <= 155, name <= 100).
            write(("data/" + "d" * 60 + "/" + "e" * 60 + "/" + "f" * 50 + ".bin").encode(), b"deep")
        if fmt in ("gnu", "oldgnu", "posix", "pax", "pax-global"):
            write(("data/" + "a" * 120 + ".txt").encode(), b"long component")
            write(("data/" + "g" * 200 + "/h.txt").encode(), b"long prefix")
            os.symlink(("t" * 150).encode(), os.path.join(root, b"data/long-target.lnk"))
        outb = os.fsencode(out)
        if producer == "gnutar":
            subprocess.run(["tar", "--format=" + fmt, "--sort=name", "-cf", outb, "-C", root, b"data"], check=True)
        else:
            formats = {"gnu": tarfile.GNU_FORMAT, "pax": tarfile.PAX_FORMAT, "ustar": tarfile.USTAR_FORMAT,
                       "pax-global": tarfile.PAX_FORMAT}
            globals_ = {"comment": "a global header"} if fmt == "pax-global" else None
            with tarfile.open(outb, "w", format=formats[fmt], pax_headers=globals_) as tf:
                tf.add(os.path.join(root, b"data").decode("utf-8", "surrogateescape"), arcname="data")
        with tarfile.open(outb) as tf:
            rows = [dict(name=os.fsencode(m.name).hex(), type=m.type.decode("latin-1"),
                         offset=m.offset, dataOffset=m.offset_data, size=m.size,
                         data=tf.extractfile(m).read().hex() if m.isreg() else "") for m in tf]
        print(json.dumps(rows))
        """#

    struct Row: Decodable {
        var name: String
        var type: String
        var offset: Int64
        var dataOffset: Int64
        var size: Int64
        /// A regular file's contents, as tarfile extracts them, in hex.
        var data: String
    }

    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    static func kind(ofTarfileType type: String) -> TarEntry.Kind? {
        switch type {
        case "0", "\u{0}", "7": return .regular
        case "1": return .hardLink
        case "2": return .symlink
        case "5": return .directory
        default: return nil
        }
    }

    /// A file with 30 data fragments (old GNU sparse needs two extension blocks for them),
    /// archived with `tar --sparse`, listed by tarfile.
    static let sparseScript = #"""
        import json, os, subprocess, sys, tarfile
        root, fmt, out = sys.argv[1:4]
        os.makedirs(os.path.join(root, "data"))
        with open(os.path.join(root, "data/a-sparse.img"), "wb") as f:
            for i in range(30):
                f.seek(i * 65536)
                f.write(b"x" * 100)
            f.truncate(30 * 65536)
        with open(os.path.join(root, "data/b.txt"), "wb") as f:
            f.write(b"after the sparse file")
        subprocess.run(["tar", "--format=" + fmt, "--sparse", "--hole-detection=raw", "--sort=name",
                        "-cf", out, "-C", root, "data"], check=True)
        with tarfile.open(out) as tf:
            rows = [dict(name=os.fsencode(m.name).hex(), type=m.type.decode("latin-1"),
                         offset=m.offset, dataOffset=m.offset_data, size=m.size,
                         data=tf.extractfile(m).read().hex() if m.isreg() and not m.issparse() else "")
                    for m in tf]
        print(json.dumps(rows))
        """#

    @Test(
        "GNU tar sparse files: old GNU S headers with extension blocks, pax GNU.sparse records",
        arguments: ["gnu", "oldgnu", "posix"])
    func sparseFromGNUTar(format: String) throws {
        let directory = try TemporaryDirectory()
        let archive = directory.path + "/sparse.tar"
        let result = try runProcess(
            "python3", ["-c", Self.sparseScript, directory.path + "/tree", format, archive])
        try #require(result.status == 0, "python3 failed: \(result.stderrText)")
        let rows = try JSONDecoder().decode([Row].self, from: Data(result.stdout))
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: archive)))
        let entries = try scanAll(bytes)
        try #require(entries.count == 3 && rows.count == 3)
        #expect(entries.map(\.kind) == [.directory, .sparse, .regular])
        #expect(entries.map(\.headerOffset) == rows.map(\.offset))
        let sparse = entries[1]
        if format == "posix" {
            // tarfile moves offset_data past the sparse map that GNU's pax format 1.0 stores at
            // the start of the data; the scanner reports the data as stored.
            #expect(sparse.dataOffset < rows[1].dataOffset)
            #expect(String(decoding: sparse.name, as: UTF8.self).contains("GNUSparseFile"))
        } else {
            #expect(sparse.name == Array("data/a-sparse.img".utf8))
            #expect(sparse.dataOffset == sparse.headerOffset + 3 * 512)  // two extension blocks
            #expect(sparse.dataOffset == rows[1].dataOffset)
            #expect(sparse.size == 30 * 512)  // 30 fragments, stored as whole blocks
        }
        #expect(entries[2].name == Array("data/b.txt".utf8))
        #expect(entries[2].dataOffset == rows[2].dataOffset)
        #expect(Self.hex(data(of: entries[2], in: bytes)) == rows[2].data)
    }

    @Test(
        "entries match Python tarfile's listing byte for byte",
        arguments: [
            ("gnutar", "gnu"), ("gnutar", "oldgnu"), ("gnutar", "posix"), ("gnutar", "ustar"),
            ("gnutar", "v7"), ("python", "gnu"), ("python", "pax"), ("python", "pax-global"),
            ("python", "ustar"),
        ])
    func matchesTarfile(producer: String, format: String) throws {
        let directory = try TemporaryDirectory()
        let root = directory.path + "/tree"
        let archive = directory.path + "/out.tar"
        let result = try runProcess(
            "python3", ["-c", Self.script, root, producer, format, archive])
        try #require(result.status == 0, "python3 failed: \(result.stderrText)")
        let rows = try JSONDecoder().decode([Row].self, from: Data(result.stdout))
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: archive)))

        let entries = try scanAll(bytes)
        try #require(entries.count == rows.count)
        #expect(rows.count >= 8)
        for (entry, row) in zip(entries, rows) {
            var name = entry.name
            if entry.kind == .directory {
                while name.count > 1, name.last == UInt8(ascii: "/") { name.removeLast() }
            }
            let label = String(decoding: name, as: UTF8.self)
            #expect(Self.hex(name) == row.name, "\(label)")
            #expect(entry.kind == Self.kind(ofTarfileType: row.type), "\(label)")
            #expect(entry.headerOffset == row.offset, "\(label)")
            #expect(entry.dataOffset == row.dataOffset, "\(label)")
            if entry.kind == .regular {
                #expect(entry.size == row.size, "\(label)")
                #expect(Self.hex(data(of: entry, in: bytes)) == row.data, "\(label)")
            } else {
                #expect(entry.size == 0, "\(label)")
            }
        }
        let kinds = Set(entries.map { "\($0.kind)" })
        #expect(kinds.isSuperset(of: ["regular", "directory", "symlink", "hardLink"]))
    }
}
