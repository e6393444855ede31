"""Helpers shared by the tests: write small applications to disk, run the real `distdev`."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHOP = REPO / "examples" / "shop"
DISTDEV = Path(sys.executable).with_name("distdev")


def write_files(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (path -> dedented source) under ``root``; return ``root``."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root


def run_distdev(
    *args: str | os.PathLike[str],
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run the installed console script, as a user would."""
    full_env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
    full_env.update(env or {})
    return subprocess.run(
        [str(DISTDEV), *map(str, args)], cwd=cwd, env=full_env, capture_output=True, text=True,
        timeout=timeout,
    )
