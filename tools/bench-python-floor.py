#!/usr/bin/env python3
"""How fast can any Python binding of an index serve `ds[i]` as the issue specifies it (a dict with
`__key__`, `__index__` and a read-only memoryview per member), with the peers' work per sample?

Measures, on one data set, in one process, the same K random samples (peers.py's indices) through:

  native     `shardstore bench INDEX --indices FILE` (Swift, no Python)
  floor      a C extension built here that does no work for a sample: its members' offsets and
             lengths and its key are prepared in Python beforehand, the shards are in one bytes
             object, and `floor[i]` only builds the dict (prebuilt key str, the index int, one
             `PyMemoryView_FromMemory` per member: the cheapest memoryview CPython makes); no
             lookup, no header check, no lease, the GIL kept
  ours       `shardstore.Dataset(INDEX)[i]`
  consumer   the bench's loop alone over samples fetched beforehand (`items()`, crc32 per member)

each with the loop tools/bench-python.py times (`for k, v in ds[i].items(): if k[0] != "_": crc32`).
floor / native bounds what `ds[i]` / native can reach on this machine: any binding does at least
the floor's work, plus reading the sample.

  /work/bench-root/venv/bin/python tools/bench-python-floor.py --data S \\
      --bin .build-rel/release/shardstore [--reps 5]

Needs a C compiler and the interpreter's headers (sysconfig's include path), the bench venv with
shardstore installed (tools/bench --suite python does that), and the read suite's index
($BENCH_ROOT/work/DATA/shardstore-read.sqlite) and indices (indices-k20000-s0.bin) from a
`tools/bench --suite python` run. Prints one line per reader and one JSON line.
"""

import argparse
import array
import importlib.util
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import zlib

FLOOR_C = r"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* F(data, rows, keys, extensions): samples whose members are at rows[8*i + 2*m] (offset into
   data) and rows[8*i + 2*m + 1] (length), four members each, named extensions[m]. */
typedef struct {
    PyObject_HEAD
    Py_buffer data;
    Py_buffer rows;
    Py_ssize_t count;
    PyObject *keys;
    PyObject *extensions[4];
    PyObject *key_name;
    PyObject *index_name;
} F;

static PyObject *F_item(F *self, PyObject *argument) {
    Py_ssize_t i = PyLong_AsSsize_t(argument);
    if (i == -1 && PyErr_Occurred()) return NULL;
    if (i < 0 || i >= self->count) {
        PyErr_SetString(PyExc_IndexError, "sample index out of range");
        return NULL;
    }
    const long long *row = (const long long *)self->rows.buf + 8 * i;
    PyObject *sample = _PyDict_NewPresized(6);
    if (sample == NULL) return NULL;
    if (PyDict_SetItem(sample, self->key_name, PyList_GET_ITEM(self->keys, i)) < 0) goto fail;
    PyObject *index = PyLong_FromSsize_t(i);
    if (index == NULL) goto fail;
    int failed = PyDict_SetItem(sample, self->index_name, index);
    Py_DECREF(index);
    if (failed < 0) goto fail;
    for (int m = 0; m < 4; m++) {
        PyObject *view = PyMemoryView_FromMemory((char *)self->data.buf + row[2 * m], (Py_ssize_t)row[2 * m + 1],
                                                 PyBUF_READ);
        if (view == NULL) goto fail;
        failed = PyDict_SetItem(sample, self->extensions[m], view);
        Py_DECREF(view);
        if (failed < 0) goto fail;
    }
    return sample;
fail:
    Py_DECREF(sample);
    return NULL;
}

static PyObject *F_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    PyObject *data, *rows, *keys, *extensions;
    if (!PyArg_ParseTuple(args, "OOO!O!", &data, &rows, &PyList_Type, &keys, &PyList_Type, &extensions)) return NULL;
    if (PyList_GET_SIZE(extensions) != 4) {
        PyErr_SetString(PyExc_ValueError, "four extensions");
        return NULL;
    }
    F *self = (F *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    if (PyObject_GetBuffer(data, &self->data, PyBUF_SIMPLE) < 0) goto fail;
    if (PyObject_GetBuffer(rows, &self->rows, PyBUF_SIMPLE) < 0) goto fail;
    self->count = self->rows.len / 64;
    if (PyList_GET_SIZE(keys) != self->count) {
        PyErr_SetString(PyExc_ValueError, "one key a sample");
        goto fail;
    }
    Py_INCREF(keys);
    self->keys = keys;
    for (int m = 0; m < 4; m++) {
        self->extensions[m] = PyList_GET_ITEM(extensions, m);
        Py_INCREF(self->extensions[m]);
    }
    self->key_name = PyUnicode_InternFromString("__key__");
    self->index_name = PyUnicode_InternFromString("__index__");
    if (self->key_name == NULL || self->index_name == NULL) goto fail;
    return (PyObject *)self;
fail:
    Py_DECREF(self);
    return NULL;
}

static void F_dealloc(F *self) {
    if (self->data.obj != NULL) PyBuffer_Release(&self->data);
    if (self->rows.obj != NULL) PyBuffer_Release(&self->rows);
    Py_XDECREF(self->keys);
    for (int m = 0; m < 4; m++) Py_XDECREF(self->extensions[m]);
    Py_XDECREF(self->key_name);
    Py_XDECREF(self->index_name);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMappingMethods F_mapping = {0, (binaryfunc)F_item, 0};
static PyTypeObject FType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "shardstore_floor.F",
    .tp_basicsize = sizeof(F),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = F_new,
    .tp_dealloc = (destructor)F_dealloc,
    .tp_as_mapping = &F_mapping,
};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "shardstore_floor", NULL, -1, NULL};

PyMODINIT_FUNC PyInit_shardstore_floor(void) {
    if (PyType_Ready(&FType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&FType);
    if (PyModule_AddObject(m, "F", (PyObject *)&FType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
"""


def build_floor(folder):
    """Compiles FLOOR_C for this interpreter into FOLDER and imports it."""
    source = os.path.join(folder, "floor.c")
    with open(source, "w") as f:
        f.write(FLOOR_C)
    target = os.path.join(folder, "shardstore_floor" + sysconfig.get_config_var("EXT_SUFFIX"))
    subprocess.run([os.environ.get("CC", "cc"), "-O2", "-Wall", "-Werror", "-shared", "-fPIC",
                    "-I", sysconfig.get_paths()["include"], source, "-o", target], check=True)
    spec = importlib.util.spec_from_file_location("shardstore_floor", target)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def floor_dataset(floor, index):
    """The floor's F over INDEX's samples: every shard read into one bytes object, each sample's four
    members (in archive order) as offsets into it."""
    db = sqlite3.connect(f"file:{index}?mode=ro", uri=True)
    folder = os.path.dirname(os.path.abspath(index))
    base, parts, at = {}, [], 0
    for shard, path in db.execute("SELECT id, path FROM shards ORDER BY id"):
        with open(path if os.path.isabs(path) else os.path.join(folder, path), "rb") as f:
            blob = f.read()
        base[shard], at = at, at + len(blob)
        parts.append(blob)
    count = db.execute("SELECT COUNT(*) FROM samples").fetchone()[0]
    keys = [None] * count
    for sample, key in db.execute("SELECT id, key FROM samples"):
        keys[sample] = key if isinstance(key, str) else key.decode("utf-8", "surrogateescape")
    rows = array.array("q", bytes(64 * count))
    extensions, seen, previous = None, 0, None
    for sample, ext, shard, offset, length in db.execute(
            "SELECT sample_id, ext, shard_id, data_offset, length FROM members "
            "ORDER BY sample_id, shard_id, data_offset"):
        if sample != previous:
            if previous is not None and seen != 4:
                raise SystemExit(f"sample {previous} has {seen} members; the floor reads data sets of four")
            seen, previous = 0, sample
        if extensions is None or len(extensions) < 4:
            extensions = (extensions or []) + [ext]
        if seen >= 4 or extensions[seen] != ext:
            raise SystemExit(f"sample {sample}: members differ from the first sample's {extensions}")
        rows[8 * sample + 2 * seen] = base[shard] + offset
        rows[8 * sample + 2 * seen + 1] = length
        seen += 1
    if seen != 4:
        raise SystemExit(f"sample {previous} has {seen} members; the floor reads data sets of four")
    return floor.F(b"".join(parts), rows, keys, extensions)


def timed(indices, dataset):
    """tools/bench-python.py's random loop over DATASET: samples/s and the checksum."""
    crc32, acc = zlib.crc32, 0
    t = time.perf_counter()
    for i in indices:
        for k, v in dataset[i].items():
            if k[0] != "_":
                acc = crc32(v, acc)
    return len(indices) / (time.perf_counter() - t), acc


def timed_consumer(indices, dataset):
    """The same loop over samples fetched beforehand: the consumer's share alone."""
    samples = [dataset[i] for i in indices]
    crc32, acc = zlib.crc32, 0
    t = time.perf_counter()
    for sample in samples:
        for k, v in sample.items():
            if k[0] != "_":
                acc = crc32(v, acc)
    return len(indices) / (time.perf_counter() - t), acc


def native(binary, index, indices_path):
    r = subprocess.run([binary, "bench", index, "--indices", indices_path, "--json"], capture_output=True,
                       text=True, check=True)
    report = json.loads([line for line in r.stdout.splitlines() if line.startswith("{")][-1])
    return report["samples_per_s"], report["checksum"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="S")
    ap.add_argument("--bin", required=True, help="the shardstore CLI (a release build)")
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    import shardstore

    work = os.path.join(os.environ.get("BENCH_ROOT", "/work/bench-root"), "work", a.data)
    index = os.path.join(work, "shardstore-read.sqlite")
    indices_path = os.path.join(work, "indices-k20000-s0.bin")
    for path in (index, indices_path):
        if not os.path.exists(path):
            raise SystemExit(f"{path} is missing: run tools/bench --suite python --datasets {a.data} first")
    indices = array.array("q")
    with open(indices_path, "rb") as f:
        indices.frombytes(f.read())
    indices = indices.tolist()
    with tempfile.TemporaryDirectory() as folder:
        floor = floor_dataset(build_floor(folder), index)
        ours = shardstore.Dataset(index)
        runs = {"native": [], "floor": [], "ours": [], "consumer": []}
        for _ in range(a.reps):  # interleaved
            runs["native"].append(native(a.bin, index, indices_path))
            runs["floor"].append(timed(indices, floor))
            runs["ours"].append(timed(indices, ours))
            runs["consumer"].append(timed_consumer(indices, ours))
    checksums = {name: sorted({c for _, c in r}) for name, r in runs.items()}
    if len({c for cs in checksums.values() for c in cs}) != 1:
        raise SystemExit(f"checksums differ: {checksums}")
    medians = {name: statistics.median(rate for rate, _ in r) for name, r in runs.items()}
    for name, rate in medians.items():
        print(f"{a.data} {name:9s} {rate:9.0f} samples/s  {1e6 / rate:5.2f} us/sample  "
              f"{rate / medians['native']:.3f}x native")
    print(json.dumps({"data": a.data, "k": len(indices), "reps": a.reps, "checksum": checksums["native"][0],
                      "samples_per_s": {k: round(v, 1) for k, v in medians.items()},
                      "vs_native": {k: round(v / medians["native"], 3) for k, v in medians.items()}}))


if __name__ == "__main__":
    main()
