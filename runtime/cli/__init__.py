"""The ``distdev`` command line.

``main`` is the console script: it first makes sure the interpreter runs under the right
``PYTHONHASHSEED`` (pinned for builds, the journal's own for replays), re-executing itself if
not, because set iteration order depends on it. ``run`` does the work in this process.
"""

from __future__ import annotations

import os
import sys

from .._spawn import python_module
from ._main import run

__all__ = ["main", "run"]

_REEXEC_MARK = "DISTDEV_REEXECUTED"


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    wanted = _wanted_hash_seed(args)
    current = os.environ.get("PYTHONHASHSEED")
    if wanted is not None and wanted != current and not os.environ.get(_REEXEC_MARK):
        env = dict(os.environ, PYTHONHASHSEED=wanted, **{_REEXEC_MARK: "1"})
        sys.stdout.flush()
        os.execve(sys.executable, python_module("distdev.cli", *args), env)
    raise SystemExit(run(args))


def _wanted_hash_seed(args: list[str]) -> str | None:
    """The seed this command must run under, or None if any will do."""
    from .._version import PINNED_HASH_SEED

    command = next((a for a in args if not a.startswith("-")), None)
    if command in ("replay", "check", "upgrade") or args[:2] == ["journal", "compact"]:
        seed = _journal_seed(args)
        if seed is not None:
            return seed
    if os.environ.get("PYTHONHASHSEED") in (None, "", "random"):
        return PINNED_HASH_SEED
    return None


def _journal_seed(args: list[str]) -> str | None:
    from ..journal import read_journal
    from ._main import build_parser

    if "-h" in args or "--help" in args:
        return None  # argparse would print the help here, and again after re-executing
    try:
        parsed = build_parser().parse_args(args)
        if parsed.command == "upgrade":  # the deployment's journals were recorded under it
            import json

            seed = json.loads((parsed.state / "deployment.json").read_text())["hash_seed"]
            return str(seed) if seed is not None else None
        if parsed.command == "check":  # several journals: the first one's (``_check``)
            from ._check import first_journal_seed

            return first_journal_seed(parsed.journals)
        return read_journal(parsed.journal).header.hash_seed
    except (Exception, SystemExit):
        return None  # the command itself reports what is wrong
