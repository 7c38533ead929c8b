import ShardCore
import ShardTestSupport
import Testing

@Suite("WebDatasetName: webdataset 1.0's key rule")
struct WebDatasetNameTests {
    typealias Classification = WebDatasetName.Classification

    static func member(_ key: String, _ ext: String) -> Classification {
        .member(key: Array(key.utf8), ext: Array(ext.utf8))
    }

    static let table: [(String, Classification)] = [
        ("a/b.c/x.seg.png", member("a/b.c/x", "seg.png")),
        ("y..png", member("y", ".png")),
        ("z.", member("z", "")),
        ("./a/x.jpg", member("./a/x", "jpg")),
        ("x.JPG", member("x", "jpg")),
        ("dir/.hidden.txt", member("dir/", "hidden.txt")),
        ("README", .noMatch),
        (".hidden.txt", .noMatch),
        ("__meta__", .metadata),
        ("__x__/a.jpg", .metadata),
        ("000123.jpg", member("000123", "jpg")),
        ("a.b/.c", .noMatch),
        ("a/b/", .noMatch),
        ("", .noMatch),
        (".", .noMatch),
        ("a/.", member("a/", "")),
        ("__", .metadata),
        ("___", .metadata),
        ("__a.b", member("__a", "b")),
        ("__/a.b", member("__/a", "b")),
        ("x/__meta__", .noMatch),
        ("x/__meta__.json", member("x/__meta__", "json")),
        ("__x___/a", .metadata),
        ("Ünïcödé/Fïlé.TÄR", member("Ünïcödé/Fïlé", "tär")),
        ("k.AΣ", member("k", "aς")),
        ("k.Σ", member("k", "σ")),
        ("k.ΣA", member("k", "σa")),
        ("k.İ", member("k", "i\u{307}")),
        // Newlines: `.` does not cross them, `[^.]` and `[^/]` do, `$` matches before a final one.
        ("a\n/b.c", member("a\n/b", "c")),
        ("x.y\n/b.c", .noMatch),
        ("a/x.y\n/b.c", .noMatch),
        ("a.b\n", member("a", "b\n")),
        ("a.B\nC", member("a", "b\nc")),
        ("a\n.b", member("a\n", "b")),
        ("d\n/.e/f.g", .noMatch),
        ("d.x/\n/.e", member("d.x/\n/", "e")),
        ("__meta__\n", .metadata),
        ("__meta__\n\n", .noMatch),
        ("__x__\n/a.b", member("__x__\n/a", "b")),
        ("__x\n__/a.b", .metadata),
    ]

    @Test("the documented table", arguments: table)
    func documentedTable(name: String, expected: Classification) {
        #expect(WebDatasetName.classify(Array(name.utf8)) == expected)
    }

    @Test("extensions that are not valid UTF-8 keep their bytes; valid parts are lower-cased")
    func invalidUTF8Extensions() {
        let name: [UInt8] = Array("K.É".utf8) + [0xff] + Array("A".utf8) + [0xc3] + Array("B".utf8)
        #expect(
            WebDatasetName.classify(name)
                == .member(key: [0x4b], ext: Array("é".utf8) + [0xff, 0x61, 0xc3, 0x62]))
        #expect(WebDatasetName.classify([0xff, 0x2e, 0x41]) == .member(key: [0xff], ext: [0x61]))
    }

    @Test("a long name is classified in linear time")
    func longName() {
        let name = [UInt8](repeating: UInt8(ascii: "/"), count: 200_000) + Array("x.y".utf8)
        #expect(WebDatasetName.classify(name) == .member(key: Array(name.dropLast(2)), ext: [0x79]))
        let dots = [UInt8](repeating: UInt8(ascii: "."), count: 200_000) + [0x2f, 0x2e]
        #expect(WebDatasetName.classify(dots) == .noMatch)
    }

    // MARK: - Cross-check with Python

    /// webdataset 1.0's code (tariterators.py) applied to hex-encoded names, one per line.
    static let pythonRule = #"""
        import re, sys
        meta_prefix, meta_suffix = "__", "__"
        def base_plus_ext(path):
            match = re.match(r"^((?:.*/|)[^.]+)[.]([^/]*)$", path)
            if not match:
                return None, None
            return match.group(1), match.group(2)
        out = []
        for line in sys.stdin.read().split("\n"):
            if not line.startswith("h"):
                continue
            fname = bytes.fromhex(line[1:]).decode("utf-8", "surrogateescape")
            if "/" not in fname and fname.startswith(meta_prefix) and fname.endswith(meta_suffix):
                out.append("T")
                continue
            if re.match(r"__[^/]*__($|/)", fname):
                out.append("T")
                continue
            prefix, suffix = base_plus_ext(fname)
            if prefix is None:
                out.append("N")
                continue
            suffix = suffix.lower()
            enc = lambda s: s.encode("utf-8", "surrogateescape").hex()
            out.append("M " + enc(prefix) + " " + enc(suffix))
        sys.stdout.write("\n".join(out) + "\n")
        """#

    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    static func render(_ classification: Classification) -> String {
        switch classification {
        case .metadata: return "T"
        case .noMatch: return "N"
        case .member(let key, let ext): return "M " + hex(key) + " " + hex(ext)
        }
    }

    @Test("several thousand random names agree with Python's re and str.lower()")
    func randomNamesAgreeWithPython() throws {
        let alphabet: [[UInt8]] =
            ["a", ".", "/", "_", "\n", "A", "É", "Σ", "İ", "'", "__", "x.", "/."].map {
                Array($0.utf8)
            }
            + [[0xff], [0xc3], [0x89], [0xed, 0xa0, 0x80]]
        var state: UInt64 = 0x5eed
        func nextRandom(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        var names: [[UInt8]] = Self.table.map { Array($0.0.utf8) }
        for _ in 0..<6000 {
            var name: [UInt8] = []
            for _ in 0..<nextRandom(14) { name += alphabet[nextRandom(alphabet.count)] }
            names.append(name)
        }
        let input = names.map { "h" + Self.hex($0) }.joined(separator: "\n") + "\n"
        let result = try runProcess("python3", ["-c", Self.pythonRule], stdin: Array(input.utf8))
        try #require(result.status == 0, "python3 failed: \(result.stderrText)")
        let expected = result.stdoutText.split(separator: "\n", omittingEmptySubsequences: false)
            .dropLast()
        try #require(expected.count == names.count)
        var mismatches = 0
        for (name, python) in zip(names, expected) {
            let swift = Self.render(WebDatasetName.classify(name))
            if swift != python {
                mismatches += 1
                if mismatches <= 10 {
                    Issue.record("name \(Self.hex(name)): Swift \(swift), Python \(python)")
                }
            }
        }
        #expect(mismatches == 0)
    }
}
