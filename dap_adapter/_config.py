"""Launch configurations: the ``distdev`` schema, validated, and the debugpy launch it becomes.

This module knows the launch schema and debugpy's launch arguments, and nothing of the relay.
Every check says what is wrong and what to write instead: the message is shown to the user as
the answer to their ``launch`` request.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

import distdev
from distdev.tools import DISTDEV_DIRS, PINNED_HASH_SEED, SAFE_PATH, materialize_bundle

from ._engine import ReplaySources, file_key

__all__ = ["ConfigError", "LaunchConfig", "DebuggeeLaunch", "parse_launch", "plan_launch",
           "runtime_dirs"]

RUNNER = "distdev.dap_adapter._runner"


class ConfigError(Exception):
    """A launch configuration that cannot be run; the message says how to fix it."""


class LaunchConfig(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """The ``distdev`` launch configuration (VS Code adds fields of its own; they are ignored)."""

    app: str | None = None
    journal: str | None = None
    stop_at_event: int | None = None
    stop_on_entry: bool = False
    env: dict[str, str | None] = {}
    cwd: str | None = None
    port: int | None = None
    watch: bool = False
    """Application launch: reload a service whose files change, keeping its state."""
    out: str | None = None
    state: str | None = None
    python: str | None = None


@dataclass
class DebuggeeLaunch:
    """What to start under debugpy: the runner module with its arguments."""

    args: list[str]
    cwd: str
    env: dict[str, str | None]
    python: str
    mode: str  # "dev" or "replay"
    stop_on_entry: bool = False
    entry_file: str | None = None
    notes: list[str] = field(default_factory=list)
    sources: ReplaySources | None = None
    """A replay run from the journal's bundle: where its files run from."""


def parse_launch(arguments: dict[str, Any]) -> LaunchConfig:
    """Validate the client's launch arguments."""
    try:
        config = msgspec.convert(arguments, LaunchConfig)
    except msgspec.ValidationError as exc:
        where = str(exc).rpartition(" - at `$.")
        if where[1]:
            raise ConfigError(f'launch configuration field "{where[2].rstrip("`")}": '
                              f"{where[0]}") from None
        raise ConfigError(f"launch configuration: {exc}") from None
    if config.app is None and config.journal is None:
        raise ConfigError(
            'the launch configuration needs "app" (the root service\'s .py file, for example '
            '"shop/app.py") to debug an application, or "journal" (a journal.cbor) to replay '
            "one service"
        )
    if config.app is not None and config.journal is not None:
        raise ConfigError('give either "app" or "journal" in a launch configuration, not both')
    if config.stop_at_event is not None and config.journal is None:
        raise ConfigError('"stopAtEvent" applies to a replay: add "journal" (and drop "app")')
    if config.stop_on_entry and config.journal is not None:
        raise ConfigError(
            '"stopOnEntry" applies to an application launch ("app"); a replay stops where '
            '"stopAtEvent" says'
        )
    if config.watch and config.journal is not None:
        raise ConfigError('"watch" applies to an application launch ("app"): a replay runs '
                          "the journal's code as it is")
    if config.port is not None and not 0 <= config.port <= 65535:
        raise ConfigError(f'"port" must be between 0 and 65535 (0: any free port), '
                          f"not {config.port}")
    return config


def runtime_dirs() -> list[str]:
    """distdev's own folders (the runtime's, and this adapter's), as installed and as resolved
    (a strict editable install links each file, so the two differ): frames and breakpoints
    there are the membrane's, not the user's."""
    here = Path(__file__)
    return list(dict.fromkeys([*DISTDEV_DIRS, str(here.parent.absolute()),
                               str(here.resolve().parent)]))


def _resolve(base: Path, value: str, what: str, kind: str) -> Path:
    path = Path(os.path.expanduser(value))
    path = path if path.is_absolute() else base / path
    if not path.exists():
        raise ConfigError(f'{what} "{value}": no such {kind} ({path}); paths are relative to '
                          f'"cwd" ({base})')
    return path.resolve()


def plan_launch(config: LaunchConfig, workspace: Path | None = None) -> DebuggeeLaunch:
    """Turn a validated configuration into the runner's command line and environment."""
    base = Path(config.cwd).expanduser() if config.cwd else (workspace or Path.cwd())
    if not base.is_dir():
        raise ConfigError(f'"cwd" {config.cwd}: no such folder')
    base = base.resolve()
    python = config.python or sys.executable
    env = dict(config.env)
    if config.app is not None:
        # A build records set order: it runs under a pinned seed, as `distdev dev` does.
        seed = os.environ.get("PYTHONHASHSEED", "")
        env.setdefault("PYTHONHASHSEED", seed if seed not in ("", "random") else PINNED_HASH_SEED)
        app = _resolve(base, config.app, '"app"', "file")
        if app.suffix != ".py" or not app.is_file():
            raise ConfigError(f'"app" {config.app}: a root service is a .py file, not {app}')
        out = Path(config.out).expanduser() if config.out else base / ".distdev" / "build"
        state = Path(config.state).expanduser() if config.state else base / ".distdev" / "dev-state"
        args = ["dev", str(app), "--out", str(base / out), "--state", str(base / state)]
        if config.port is not None:
            args += ["--port", str(config.port)]
        args += ["--watch"] if config.watch else []
        return DebuggeeLaunch(args, str(base), env, python, "dev", config.stop_on_entry, str(app))
    assert config.journal is not None
    journal = _resolve(base, config.journal, '"journal"', "file")
    try:
        contents = distdev.read_journal(journal)
    except distdev.JournalError as exc:
        raise ConfigError(f'"journal" {config.journal} cannot be replayed: {exc}') from None
    last = contents.events[-1].seq if len(contents.events) > 1 else 0
    args = ["replay", str(journal)]
    if config.stop_at_event is not None:
        if not 1 <= config.stop_at_event <= last:
            raise ConfigError(
                f'"stopAtEvent" {config.stop_at_event} is not an event of {journal.name}: '
                f"{contents.header.service}'s journal has events 1 to {last}"
            )
        args += ["--stop-at", str(config.stop_at_event)]
    header = contents.header
    launch = DebuggeeLaunch(args, str(base), env, python, "replay", config.stop_on_entry)
    if _same_source(Path(header.app_root), [(f.path, f.sha256) for f in header.bundle]):
        # The journal's code is on disk unchanged: replay it there, so breakpoints set in
        # those files bind.
        args += ["--source", header.app_root]
        launch.entry_file = str(Path(header.app_root) / header.entry)
    else:
        bundle = materialize_bundle(contents)
        root = Path(header.app_root)
        launch.sources = ReplaySources(
            {file_key(str(root / f.path)): str(bundle / f.path) for f in header.bundle},
            frozenset(file_key(str(root / rel)) for rel, digest in
                      ((f.path, f.sha256) for f in header.bundle)
                      if not _same_source(root, [(rel, digest)])))
        launch.notes.append(
            f"{header.service}'s code differs from (or is missing under) {header.app_root}; "
            f"replaying the code the journal carries, from distdev's bundle cache ({bundle}): "
            "breakpoints in unchanged files bind there, those in changed files are unverified"
        )
    if header.hash_seed is not None:
        env["PYTHONHASHSEED"] = header.hash_seed
    return launch


def _same_source(root: Path, files: list[tuple[str, str]]) -> bool:
    for rel, digest in files:
        path = root / rel
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            return False
    return True


def debugpy_launch(launch: DebuggeeLaunch, client_arguments: dict[str, Any]) -> dict[str, Any]:
    """debugpy's launch arguments for ``launch``. Keys the client set that debugpy knows
    (``name``, ``__sessionId``, ``console``...) pass through."""
    passed = {k: v for k, v in client_arguments.items()
              if k not in LaunchConfig.__struct_encode_fields__ and k not in ("type", "request")}
    rules: list[dict[str, Any]] = [{"path": d, "include": False} for d in runtime_dirs()]
    rules.append({"module": "distdev", "include": False})
    return {
        **passed,
        "type": "python",
        "request": "launch",
        "module": RUNNER,
        "args": launch.args,
        "cwd": launch.cwd,
        "env": launch.env,
        "python": [launch.python, SAFE_PATH],  # the app's folder is not distdev's sys.path
        "justMyCode": True,
        "subProcess": False,
        "rules": rules,
        "console": client_arguments.get("console", "internalConsole"),
        "stopOnEntry": False,
        "redirectOutput": True,
    }
