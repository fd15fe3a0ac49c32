"""Extension list only; metadata lives in pyproject.toml."""
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext as _build_ext


def _compiler_has_openmp(compiler) -> bool:
    """Compile a tiny OpenMP program; a clean serial build follows if it fails."""
    if os.environ.get("TRIPWIRE_NO_OPENMP"):
        return False
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "omp.c"
        src.write_text("#include <omp.h>\nint main(void){return omp_get_max_threads() > 0 ? 0 : 1;}\n")
        try:
            objs = compiler.compile([str(src)], output_dir=tmp, extra_postargs=["-fopenmp"])
            compiler.link_executable(objs, str(Path(tmp) / "omp"), extra_postargs=["-fopenmp"])
        except Exception:
            return False
    return True


class build_ext(_build_ext):
    def build_extensions(self):
        omp = sys.platform != "win32" and _compiler_has_openmp(self.compiler)
        for ext in self.extensions:
            # no fused multiply-add contraction: the IoU tests must round as the scalar
            # reference does (a vectorized clone built for AVX-512 could otherwise fuse them)
            ext.extra_compile_args += ["-O3", "-ffp-contract=off"]
            if omp:
                ext.extra_compile_args += ["-fopenmp"]
                ext.extra_link_args += ["-fopenmp"]
        super().build_extensions()


def _ext(name: str) -> Extension:
    return Extension(
        f"tripwire._kernels.{name}",
        [f"kernels/{name}.pyx"],
        include_dirs=[np.get_include(), "kernels"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        language="c++",
    )


extensions = [_ext(p.stem) for p in sorted(Path("kernels").glob("*_cy.pyx"))]

setup(
    ext_modules=cythonize(extensions, include_path=["kernels"], language_level=3),
    cmdclass={"build_ext": build_ext},
)
