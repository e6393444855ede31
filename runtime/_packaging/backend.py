"""distdev's build backend: setuptools' own, with the hot path's C modules.

The journal frames records (``runtime/journal/_framing.c``), the membrane encodes the common
wire values (``runtime/membrane/_cbor.c``), calls a proxy's exports
(``runtime/membrane/_calls.c``) and tells plain data for state digests
(``runtime/membrane/_plain.c``), and services gate their calls (``runtime/service/_callgate.c``)
in C where a compiler is; without one the package installs
with their Python references, which do the same, slower.
setuptools takes C extensions from a ``setup.py``, which this repository's fixed top level does
not have, or from pyproject's ``[tool.setuptools.ext-modules]``, which prints an "experimental"
warning on every install. So the build runs setuptools' backend with the extension handed to
``setup()``: an in-tree backend (PEP 517's ``backend-path``, in ``pyproject.toml``). This
folder is not a package of distdev's and is not installed.
"""

from __future__ import annotations

from setuptools import Extension, setup
from setuptools.build_meta import _BuildMetaBackend

EXTENSIONS = [
    Extension("distdev.journal._framing", ["runtime/journal/_framing.c"], optional=True,
              depends=["runtime/membrane/_cbor_head.h"]),
    Extension("distdev.membrane._cbor", ["runtime/membrane/_cbor.c"], optional=True,
              depends=["runtime/membrane/_cbor_head.h"]),
    Extension("distdev.membrane._calls", ["runtime/membrane/_calls.c"], optional=True),
    Extension("distdev.membrane._plain", ["runtime/membrane/_plain.c"], optional=True),
    Extension("distdev.service._callgate", ["runtime/service/_callgate.c"], optional=True),
]


class _Backend(_BuildMetaBackend):
    def run_setup(self, setup_script: str = "setup.py") -> None:
        # Everything else comes from pyproject.toml, as with setuptools' default setup().
        setup(ext_modules=EXTENSIONS)


_BACKEND = _Backend()
get_requires_for_build_wheel = _BACKEND.get_requires_for_build_wheel
get_requires_for_build_sdist = _BACKEND.get_requires_for_build_sdist
prepare_metadata_for_build_wheel = _BACKEND.prepare_metadata_for_build_wheel
build_wheel = _BACKEND.build_wheel
build_sdist = _BACKEND.build_sdist
get_requires_for_build_editable = _BACKEND.get_requires_for_build_editable
prepare_metadata_for_build_editable = _BACKEND.prepare_metadata_for_build_editable
build_editable = _BACKEND.build_editable
