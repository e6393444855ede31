"""Which source files are distdev's own: tracebacks shown to users and the debugger's call
stacks leave them out, because they are the membrane's machinery, not the user's code.

An installed distdev lives in one folder; a strict editable install is a folder of links to the
repository's files, so both the folder as found and as resolved count.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DISTDEV_DIRS", "is_distdev_file"]

_PACKAGE = Path(__file__).parent
DISTDEV_DIRS: tuple[str, ...] = tuple(dict.fromkeys(
    str(p) for p in (_PACKAGE.absolute(), _PACKAGE.resolve(),
                     Path(__file__).resolve().parent)))
"""distdev's package folder, as imported and as its files resolve."""


def is_distdev_file(filename: str) -> bool:
    """Whether ``filename`` is one of distdev's own source files."""
    return any(filename == d or filename.startswith(d + os.sep) for d in DISTDEV_DIRS)
