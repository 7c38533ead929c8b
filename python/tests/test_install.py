"""The installed package: a self-contained library, and no eager imports of torch or numpy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# What the static Swift runtime may leave: the C runtime only.
ALLOWED = {
    "linux-vdso.so.1",
    "libc.so.6",
    "libm.so.6",
    "libstdc++.so.6",
    "libgcc_s.so.1",
    "ld-linux-x86-64.so.2",
    "ld-linux-aarch64.so.1",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
}


def ldd(path: Path) -> dict:
    output = subprocess.run(["ldd", str(path)], check=True, capture_output=True, text=True).stdout
    result = {}
    for line in output.splitlines():
        line = line.strip()
        if not line:
            continue
        name = Path(line.split()[0]).name
        result[name] = line
    return result


def package_folder() -> Path:
    import shardstore

    return Path(shardstore.__file__).parent


def test_library_needs_only_the_c_runtime():
    library = package_folder() / "libShardStoreC.so"
    assert library.is_file()
    dependencies = ldd(library)
    assert not [line for line in dependencies.values() if "swift" in line.lower()], dependencies
    assert set(dependencies) <= ALLOWED, dependencies


def test_extension_finds_the_bundled_library():
    import shardstore._native as native

    dependencies = ldd(Path(native.__file__))
    line = dependencies["libShardStoreC.so"]
    assert str(package_folder() / "libShardStoreC.so") in line, line


def test_library_exports_only_the_c_api():
    library = package_folder() / "libShardStoreC.so"
    output = subprocess.run(["nm", "-D", "--defined-only", str(library)], capture_output=True, text=True)
    if output.returncode != 0:
        import pytest

        pytest.fail(f"nm -D failed: {output.stderr}")
    symbols = [line.split()[-1] for line in output.stdout.splitlines() if line.split()[1:2] == ["T"]]
    assert symbols, output.stdout
    others = [symbol for symbol in symbols if not symbol.startswith("shardstore_") and symbol not in ("_init", "_fini")]
    assert others == []


def test_import_does_not_import_torch_or_numpy(corpus):
    code = (
        "import sys, shardstore\n"
        f"ds = shardstore.Dataset({str(corpus.index)!r})\n"
        "sample = ds[0]\n"
        "assert 'torch' not in sys.modules, 'torch'\n"
        "assert 'numpy' not in sys.modules, 'numpy'\n"
        "ds.close()\n"
        f"ds = shardstore.Dataset({str(corpus.index)!r}, decode='numpy')\n"
        "ds[0]\n"
        "assert 'numpy' in sys.modules\n"
        "assert 'torch' not in sys.modules, 'torch'\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\n"
