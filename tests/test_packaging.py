"""The wheel carries every subpackage under the single `distdev` import name, and building it
warns of nothing."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from support import REPO

PACKAGES = {
    "distdev": REPO / "runtime",
    "distdev/dap_adapter": REPO / "dap_adapter",
    "distdev/lsp": REPO / "lsp",
}


def test_wheel_contains_every_module_and_no_stray_top_level(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(REPO)],
        check=True, capture_output=True, text=True,
    )
    # The build backend says nothing: a deprecation warning here is printed on every install.
    assert "warning" not in (built.stdout + built.stderr).lower(), built.stdout + built.stderr
    (wheel,) = tmp_path.glob("distdev-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        f"{prefix}/{path.relative_to(folder).as_posix()}"
        for prefix, folder in PACKAGES.items()
        for path in folder.rglob("*.py")
        if "__pycache__" not in path.parts and "_packaging" not in path.parts  # the build's
    }
    assert expected, "found no sources"
    assert expected <= names, f"missing from the wheel: {sorted(expected - names)}"
    assert "distdev/py.typed" in names
    for source in (REPO / "runtime").rglob("*.c"):  # the hot path's C modules, each built
        module = f"distdev/{source.relative_to(REPO / 'runtime').with_suffix('').as_posix()}."
        assert any(n.startswith(module) and n.endswith(".so") for n in names), \
            f"{source.name} was not built into the wheel"
    assert not any("_packaging" in n for n in names), "the build backend is not installed"
    top_levels = {n.split("/")[0] for n in names if not n.startswith("distdev-")}
    assert top_levels == {"distdev"}, f"stray top-level names: {top_levels}"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "distdev = distdev.cli:main" in text
