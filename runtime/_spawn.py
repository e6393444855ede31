"""How distdev starts Python processes of its own.

Always ``python -P -m distdev...``: ``-P`` keeps the working folder off ``sys.path``. Without it
an application file named like a standard-library module (``calendar.py``, ``secrets.py``,
``queue.py``, ``email.py``) in the folder a command runs from is imported by distdev's own code
in place of the real module — distdev imports ``secrets``, and ``http.server`` imports
``email.utils``, which imports ``calendar``.
"""

from __future__ import annotations

import os
import sys

__all__ = ["SAFE_PATH", "python_module"]

SAFE_PATH = "-P"
"""The interpreter option that leaves the working folder off ``sys.path`` (Python 3.11+)."""


def python_module(module: str, *args: str, python: str | None = None) -> list[str]:
    """The command line that runs ``module`` under this interpreter (or ``python``)."""
    return [python or sys.executable, SAFE_PATH, "-m", module, *args]


def leave_working_folder_off_sys_path() -> None:
    """When distdev is the program (``python -m distdev...`` without ``-P``, as a user may type
    it), take the working folder that ``-m`` put first on ``sys.path`` off again, before
    distdev imports anything an application file could shadow. A program of the user's own
    that imports distdev keeps its ``sys.path`` as it is."""
    if sys.flags.safe_path:
        return
    argv = list(getattr(sys, "orig_argv", []))
    module = argv[argv.index("-m") + 1] if "-m" in argv[:-1] else ""
    if module != "distdev" and not module.startswith("distdev."):
        return
    here = os.getcwd()
    sys.path[:] = [p for p in sys.path if p not in ("", ".", here)]
