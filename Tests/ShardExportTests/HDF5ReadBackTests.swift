import Foundation
import ShardStore
import ShardTestSupport
import Testing

@testable import ShardExport

/// h5py reads every dataset of an export back, and numpy compares it with the member files the
/// shards were made from (written by numpy itself: every dtype, byte order, memory order and NPY
/// version).
@Suite("HDF5 export read back with h5py and numpy")
struct HDF5ReadBackTests {
    /// Writes the member files into argv[1]: numpy's own `.npy` writer for every dtype, order
    /// and version, text, labels and bytes; some samples lack some members.
    static let makeScript = #"""
        import os, sys
        import numpy as np
        out = sys.argv[1]
        rng = np.random.default_rng(7)
        DT = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
              "float16", "float32", "float64"]
        keys = [f"k{i}" for i in range(7)]

        def arr(dt, shape):
            if dt == "bool":
                return rng.integers(0, 2, size=shape).astype(bool)
            if dt.startswith("float"):
                return (rng.standard_normal(shape) * 1000).astype(dt)
            info = np.iinfo(dt)
            return rng.integers(info.min, info.max, size=shape, dtype=dt, endpoint=True)

        def save(name, a, version=1, fortran=False, big=False):
            if big:
                a = a.astype(a.dtype.newbyteorder(">"))
            a = np.asfortranarray(a) if fortran else np.ascontiguousarray(a)
            with open(os.path.join(out, name), "wb") as f:
                np.lib.format.write_array(f, a, version=(version, 0))

        def write(name, data):
            with open(os.path.join(out, name), "wb") as f:
                f.write(data)

        ragged = [(2, 3), (5,), (), (0,), None, (2, 2, 2), (1,)]
        for i, k in enumerate(keys):
            for dt in DT:
                if (dt, k) in [("int32", "k3"), ("bool", "k6")]:
                    continue
                # Every row another combination of NPY version, memory order and byte order.
                save(f"{k}.{dt}.npy", arr(dt, (3, 4)), version=i % 3 + 1, fortran=i % 2 == 1, big=(i // 2) % 2 == 1)
            save(f"{k}.scalar.npy", arr("float64", ()), big=i % 2 == 0)
            save(f"{k}.empty.npy", arr("int16", (0, 3)), fortran=i % 2 == 0)
            if ragged[i] is not None:
                save(f"{k}.rag.npy", arr("float32", ragged[i]), version=3 if i == 5 else 1, fortran=i == 5, big=i == 5)
            save(f"{k}.mix.npy", arr("int16" if i % 2 else "float64", (2,)))
            write(f"{k}.json", ('{"name": "ünï 日本", "i": %d}' % i).encode())
            write(f"{k}.txt", b"\xff\xfe not utf-8" if k == "k2" else f"line {i}\n".encode())
            write(f"{k}.md", b"# a\x00b" if k == "k1" else f"# title {i}".encode())
            if k != "k0":
                write(f"{k}.yaml", f"i: {i}\n".encode())
            write(f"{k}.cls", f" {i * 3 - 5}\n".encode())
            write(f"{k}.label.cls", ["cat", "dog"][i % 2].encode())
            if k != "k6":
                write(f"{k}.jpg", rng.integers(0, 256, size=37 * i, dtype=np.uint8).tobytes())
        """#

    /// Checks the HDF5 file argv[1] against the member files in argv[2]; argv[3] is a JSON
    /// object with the expected rows, splits, attributes and compression.
    static let checkScript = #"""
        import json, os, sys
        import h5py
        import numpy as np
        path, src, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
        DT = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
              "float16", "float32", "float64"]
        KINDS = {f"{dt}.npy": "array" for dt in DT}
        KINDS.update({"scalar.npy": "array", "empty.npy": "array", "rag.npy": "ragged array",
                      "mix.npy": "npy bytes", "json": "text", "txt": "bytes", "md": "bytes", "yaml": "text",
                      "cls": "integer", "label.cls": "text", "jpg": "bytes"})
        NOTED = {"rag.npy", "mix.npy", "txt", "md"}
        checks = 0

        def check(ok, what):
            global checks
            if not ok:
                raise SystemExit(f"FAIL: {what}")
            checks += 1

        def member(key, ext):
            p = os.path.join(src, f"{key}.{ext}")
            if not os.path.exists(p):
                return None
            with open(p, "rb") as f:
                return f.read()

        f = h5py.File(path, "r")
        rows = spec["rows"]
        keys = [k.decode() for k in f["keys"][()]]
        check(keys == rows, f"keys {keys} != {rows}")
        check(f["keys"].dtype.kind == "O" and h5py.check_string_dtype(f["keys"].dtype).encoding == "utf-8",
              "keys are variable-length UTF-8 strings")
        names = {"keys"}
        for ext, kind in KINDS.items():
            d = f[ext]
            names.add(ext)
            check(d.attrs["shardstore_kind"] == kind, f"{ext} kind {d.attrs['shardstore_kind']} != {kind}")
            check(("shardstore_note" in d.attrs) == (ext in NOTED), f"{ext} note")
            check(len(d) == len(rows), f"{ext} has {len(d)} rows")
            present = []
            for r, key in enumerate(rows):
                raw = member(key, ext)
                present.append(raw is not None)
                got = d[r]
                if kind == "array":
                    if raw is not None:
                        import io
                        want = np.load(io.BytesIO(raw))
                        check(got.dtype == want.dtype.newbyteorder("<") and got.dtype.byteorder in "<|=",
                              f"{ext}[{r}] dtype {got.dtype} vs {want.dtype}")
                        check(got.shape == want.shape and np.array_equal(got, want), f"{ext}[{r}] values")
                        check(d.shape == (len(rows),) + want.shape, f"{ext} shape {d.shape}")
                    else:
                        check(not np.any(got), f"{ext}[{r}] fill is zero")
                elif kind == "ragged array":
                    shape = tuple(int(x) for x in f[ext + "_shape"][r])
                    if raw is not None:
                        import io
                        want = np.load(io.BytesIO(raw))
                        check(got.dtype == want.dtype.newbyteorder("<"), f"{ext}[{r}] dtype")
                        check(shape == want.shape, f"{ext}[{r}] shape {shape} != {want.shape}")
                        check(np.array_equal(got.reshape(shape), want), f"{ext}[{r}] values")
                    else:
                        check(len(got) == 0 and shape == (), f"{ext}[{r}] fill")
                elif kind in ("bytes", "npy bytes"):
                    check(got.dtype == np.uint8 and got.tobytes() == (raw or b""), f"{ext}[{r}] bytes")
                elif kind == "text":
                    check(d.asstr()[r] == (raw or b"").decode("utf-8"), f"{ext}[{r}] text")
                elif kind == "integer":
                    check(d.dtype == np.int64 and int(got) == (int(raw) if raw is not None else 0), f"{ext}[{r}] int")
            if all(present):
                check(ext + "_present" not in f, f"{ext}_present written though nothing is missing")
            else:
                p = f[ext + "_present"]
                names.add(ext + "_present")
                check(p.dtype == np.bool_ and list(p[()]) == present, f"{ext}_present {list(p[()])} != {present}")
            if kind == "ragged array":
                names.add(ext + "_shape")
            numeric = kind in ("array", "integer")
            if len(rows) and d.size:
                if spec["level"]:
                    check(d.compression == "gzip" and d.compression_opts == spec["level"], f"{ext} gzip")
                    check(d.shuffle == numeric, f"{ext} shuffle {d.shuffle}")
                else:
                    check(d.compression is None and not d.shuffle, f"{ext} not compressed")
                check(d.chunks is not None and d.chunks[0] >= 1, f"{ext} chunked")
        for name, want in spec["splits"].items():
            check(list(f["splits"][name][()]) == want and f["splits"][name].dtype == np.int64, f"splits/{name}")
        if spec["splits"]:
            names.add("splits")
        check(set(f.keys()) == names, f"top-level names {sorted(f.keys())} != {sorted(names)}")
        attrs = dict(f.attrs)
        for k, v in spec["attrs"].items():
            check(attrs.get(k) == v, f"attribute {k}: {attrs.get(k)!r} != {v!r}")
        check(list(attrs["shardstore_splits"]) == spec["split_names"], "shardstore_splits")
        print(f"ok {checks}")
        """#

    /// The fixture: numpy writes the members, ShardStore ingests them in two shards, with splits
    /// `a` (k0, k4, k6) and `b` (k1, k2, k3; k5 is in none) and two metadata entries.
    struct Fixture {
        let directory: TemporaryDirectory
        let python: String
        var src: String { directory.path + "/src" }
        var index: String { directory.path + "/index.sqlite" }

        init(python: String) throws {
            self.python = python
            directory = try TemporaryDirectory()
            try FileManager.default.createDirectory(atPath: directory.path + "/src", withIntermediateDirectories: true)
            let made = try runProcess(python, ["-c", HDF5ReadBackTests.makeScript, directory.path + "/src"])
            #expect(made.status == 0, "\(made.stderrText)")
            try writeShards(try readFiles(directory.path + "/src"), shards: 2, in: directory.path)
            _ = try Ingest.run(index: directory.path + "/index.sqlite", shards: [directory.path + "/shard-*.tar"])
            _ = try SplitEditor.assign(
                index: index, split: "a", selection: .keys(["k0", "k4", "k6"].map { SampleKey($0) }, source: "test"))
            _ = try SplitEditor.assign(
                index: index, split: "b", selection: .keys(["k1", "k2", "k3"].map { SampleKey($0) }, source: "test"))
            _ = try MetadataEditor.set(index: index, key: "title", value: "ShardStore test", asString: true)
            _ = try MetadataEditor.set(index: index, key: "card", value: #"{"a": [1, 2]}"#)
        }

        /// Runs the check script on `out`; returns its exit status and output.
        func check(_ out: String, spec: [String: Any]) throws -> ProcessResult {
            let json = String(decoding: try JSONSerialization.data(withJSONObject: spec), as: UTF8.self)
            return try runProcess(python, ["-c", HDF5ReadBackTests.checkScript, out, src, json])
        }
    }

    @Test(
        "two splits, gzip: every dtype, order and version, ragged, mixed, text, labels, bytes, fills, attributes",
        arguments: [nil, 0] as [Int64?])
    func twoSplits(stagingLimit: Int64?) throws {
        guard let python = pythonWithH5py() else { return }
        let fx = try Fixture(python: python)
        let out = fx.directory.path + "/out.h5"
        // With the limit 0 nothing is staged and the second pass reads the shards again.
        let report = try HDF5Export.run(
            ExportRequest(index: fx.index, out: out, splits: ["a", "b"]), compression: .gzip(level: 6), progress: nil,
            isCancelled: { false }, stagingLimit: stagingLimit)
        #expect(report.samples == 6)
        #expect(report.members == 6 * 23 - 5)  // 23 extensions; k0, k3, k4 and k6 lack five members in all
        #expect(report.entries.first == "keys" && report.entries.last == "splits")
        #expect(report.entries.contains("rag.npy_shape") && report.entries.contains("int32.npy_present"))
        #expect(try partialFiles(fx.directory.path) == [])
        let result = try fx.check(
            out,
            spec: [
                "rows": ["k0", "k4", "k6", "k1", "k2", "k3"], "splits": ["a": [0, 1, 2], "b": [3, 4, 5]],
                "split_names": ["a", "b"], "level": 6,
                "attrs": [
                    "title": "\"ShardStore test\"", "card": #"{"a":[1,2]}"#,
                    "shardstore_source_index": try Paths.real(fx.index), "shardstore_version": ShardStoreVersion.string,
                ],
            ])
        #expect(result.status == 0, "\(result.stdoutText)\(result.stderrText)")
        #expect(result.stdoutText.hasPrefix("ok "), "\(result.stdoutText)")
        #expect(result.stderrText == "")
    }

    @Test(
        "the whole dataset, no compression: every sample in index order, no /splits", arguments: [nil, 0] as [Int64?])
    func wholeDataset(stagingLimit: Int64?) throws {
        guard let python = pythonWithH5py() else { return }
        let fx = try Fixture(python: python)
        let out = fx.directory.path + "/all.h5"
        let report = try HDF5Export.run(
            ExportRequest(index: fx.index, out: out), compression: .none, progress: nil, isCancelled: { false },
            stagingLimit: stagingLimit)
        #expect(report.samples == 7)
        #expect(!report.entries.contains("splits"))
        let result = try fx.check(
            out,
            spec: [
                "rows": (0..<7).map { "k\($0)" }, "splits": [String: [Int]](), "split_names": [String](), "level": 0,
                "attrs": ["shardstore_version": ShardStoreVersion.string],
            ])
        #expect(result.status == 0, "\(result.stdoutText)\(result.stderrText)")
        #expect(result.stdoutText.hasPrefix("ok "), "\(result.stdoutText)")
    }

    @Test("one split: its samples in split order, no /splits group")
    func oneSplit() throws {
        guard let python = pythonWithH5py() else { return }
        let fx = try Fixture(python: python)
        let out = fx.directory.path + "/b.h5"
        _ = try HDF5Export.run(ExportRequest(index: fx.index, out: out, splits: ["b"]), compression: .gzip(level: 1))
        let result = try fx.check(
            out,
            spec: [
                "rows": ["k1", "k2", "k3"], "splits": [String: [Int]](), "split_names": ["b"], "level": 1,
                "attrs": [String: String](),
            ])
        #expect(result.status == 0, "\(result.stdoutText)\(result.stderrText)")
    }
}
