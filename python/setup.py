"""Builds shardstore._native against libShardStoreC, which is built from this repository first.

`pip install ./python` runs build_ext, which
1. runs `<repo>/tools/build-c-library <build_temp>/cabi` (swift build with a static Swift
   runtime), which writes libShardStoreC.so and shardstore.h there;
2. compiles src/native.c against that header, linked to the library with rpath $ORIGIN;
3. copies libShardStoreC.so next to the extension, inside the package.

The repository is found from this file (python/..), or from SHARDSTORE_SOURCE_DIR when the
package folder was copied elsewhere. SHARDSTORE_C_LIBRARY_DIR names a folder that already holds
libShardStoreC.so and shardstore.h (skips step 1).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
LIBRARY = "libShardStoreC.so"
HEADER = "shardstore.h"


def repository_root() -> Path:
    candidates = []
    if os.environ.get("SHARDSTORE_SOURCE_DIR"):
        candidates.append(Path(os.environ["SHARDSTORE_SOURCE_DIR"]).resolve())
    candidates.append(HERE.parent)
    for candidate in candidates:
        if (candidate / "Package.swift").is_file() and (candidate / "tools" / "build-c-library").is_file():
            return candidate
    tried = ", ".join(str(candidate) for candidate in candidates)
    raise SystemExit(
        f"shardstore: cannot find the ShardStore repository (Package.swift and tools/build-c-library) in {tried}; "
        "install from a clone with `pip install ./python`, or set SHARDSTORE_SOURCE_DIR to the clone"
    )


class BuildNative(build_ext):
    """build_ext that builds libShardStoreC first and ships it inside the package."""

    def run(self) -> None:
        library_dir = self.c_library_dir()
        for extension in self.extensions:
            extension.include_dirs.append(str(library_dir))
            extension.library_dirs.append(str(library_dir))
            # Rebuild when the library or its header changed, not only native.c.
            extension.depends.extend([str(library_dir / HEADER), str(library_dir / LIBRARY)])
        self.library_dir = library_dir
        super().run()

    def c_library_dir(self) -> Path:
        prebuilt = os.environ.get("SHARDSTORE_C_LIBRARY_DIR")
        if prebuilt:
            directory = Path(prebuilt).resolve()
        else:
            root = repository_root()
            directory = Path(self.build_temp).resolve() / "cabi"
            directory.mkdir(parents=True, exist_ok=True)
            command = [str(root / "tools" / "build-c-library"), str(directory)]
            self.announce(f"building libShardStoreC: {' '.join(command)}", level=2)
            result = subprocess.run(command, cwd=root)
            if result.returncode != 0:
                raise SystemExit(
                    f"shardstore: {' '.join(command)} failed with exit status {result.returncode} "
                    "(its output is above); fix the Swift build, then install again"
                )
        for name in (LIBRARY, HEADER):
            if not (directory / name).is_file():
                raise SystemExit(f"shardstore: {directory / name} is missing after building the C library")
        return directory

    def build_extension(self, extension: Extension) -> None:
        super().build_extension(extension)
        target = Path(self.get_ext_fullpath(extension.name)).parent / LIBRARY
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.library_dir / LIBRARY, target)
        os.chmod(target, 0o755)

    def get_outputs(self) -> list:
        outputs = super().get_outputs()
        for extension in self.extensions:
            outputs.append(str(Path(self.get_ext_fullpath(extension.name)).parent / LIBRARY))
        return outputs


setup(
    ext_modules=[
        Extension(
            "shardstore._native",
            sources=["src/native.c"],
            libraries=["ShardStoreC"],
            extra_compile_args=["-Wall", "-Werror=implicit-function-declaration"],
            extra_link_args=["-Wl,-rpath,$ORIGIN"],
        )
    ],
    cmdclass={"build_ext": BuildNative},
)
