"""Build the Cython share-arithmetic extensions; metadata lives in pyproject.toml."""

from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup


def _extensions() -> list[Extension]:
    root = Path(__file__).parent
    exts = [
        Extension(
            ".".join(pyx.relative_to(root).with_suffix("").parts),
            [str(pyx.relative_to(root))],
            include_dirs=[numpy.get_include()],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            extra_compile_args=["-O3"],
        )
        for pyx in sorted((root / "mpc_backend").rglob("*.pyx"))
    ]
    return cythonize(
        exts,
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    )


setup(ext_modules=_extensions())
