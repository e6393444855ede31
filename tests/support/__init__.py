"""Helpers shared by the tests: write small applications to disk, run the real `distdev`.

Test modules import helpers from here (and from ``support.engines``, ``support.dev``), never from
one another, so that each test module stands alone."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent.parent
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
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the installed console script, as a user would (``input_text`` on its stdin)."""
    full_env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
    full_env.update(env or {})
    return subprocess.run(
        [str(DISTDEV), *map(str, args)], cwd=cwd, env=full_env, capture_output=True, text=True,
        timeout=timeout, input=input_text,
    )


def load_script(path: Path, name: str) -> ModuleType:
    """Import a script that stays runnable by path (pytest's importlib mode does not put its
    folder on sys.path), under ``name``; one module object per name."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def vscode_toolchain() -> ModuleType:
    """tests/vscode/toolchain.py, the VS Code toolchain's installer and paths."""
    return load_script(REPO / "tests" / "vscode" / "toolchain.py", "distdev_vscode_toolchain")
