"""The debounced background type check: mypy with distdev's plugin, in a worker process.

The index answers at once what it can infer from ``ast``; a real type checker sees the rest (an
argument computed by code the index cannot follow). After every change the server calls
``BackgroundCheck.schedule``; once the documents have been quiet for the debounce delay, one
check of every open document (their unsaved texts) runs in the worker
(``_mypy_worker``), off the server's event loop, so requests keep being answered meanwhile.

Superseding: a change during the debounce delay restarts the delay (the pending check never
runs); a change while a check runs makes its result stale: it is dropped, and one new check
starts as soon as the running one ends (a running mypy build is not interrupted: the worker's
warm state is worth more than the rest of one build).

Nothing here knows LSP: the server passes callables to read the open documents and to publish.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import subprocess
import tempfile
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from distdev.tools import python_module

from ._checks import Problem
from ._mypy_worker import CheckReply, CheckRequest
from ._syntax import Span

__all__ = ["TypeCheckSettings", "SettingsError", "MypyProcess", "BackgroundCheck",
           "problems_by_file", "default_cache_dir"]

log = logging.getLogger("distdev.lsp")


class SettingsError(ValueError):
    """Settings that do not fit ``TypeCheckSettings``; the message says which and why."""


@dataclass(frozen=True)
class TypeCheckSettings:
    """``initializationOptions.typeCheck`` (or the ``distdev.typeCheck`` settings section).

    ``enabled`` turns the background check off; ``debounceMs`` is the quiet time after the last
    change before a check starts; ``cacheDir`` is mypy's cache folder for this workspace (by
    default a folder under the system's temporary folder, one per workspace).
    """

    enabled: bool = True
    debounce_ms: int = 400
    cache_dir: str | None = None

    @classmethod
    def read(cls, raw: Any, current: TypeCheckSettings | None = None) -> TypeCheckSettings:
        """Read ``{"typeCheck": {...}}`` or ``{"distdev": {"typeCheck": {...}}}``; keys left out
        keep their ``current`` value. Raises ``SettingsError`` for a wrong key or type."""
        base = current or cls()
        if isinstance(raw, dict) and isinstance(raw.get("distdev"), dict):
            raw = raw["distdev"]
        section = raw.get("typeCheck") if isinstance(raw, dict) else None
        if section is None:
            return base
        if not isinstance(section, dict):
            raise SettingsError(f"typeCheck must be an object like {{\"enabled\": false}}, "
                                f"not {section!r}")
        known = {"enabled": "enabled", "debounceMs": "debounce_ms", "cacheDir": "cache_dir"}
        unknown = sorted(set(section) - set(known))
        if unknown:
            raise SettingsError(f"unknown typeCheck setting(s) {', '.join(unknown)}; the "
                                f"settings are {', '.join(known)}")
        values = {"enabled": base.enabled, "debounce_ms": base.debounce_ms,
                  "cache_dir": base.cache_dir}
        values |= {known[k]: v for k, v in section.items()}
        try:
            settings = msgspec.convert(values, cls)
        except msgspec.ValidationError as error:
            raise SettingsError(f"typeCheck: {error} (enabled: true/false, debounceMs: a "
                                "number of milliseconds, cacheDir: a folder path)") from None
        if settings.debounce_ms < 0:
            raise SettingsError(f"typeCheck.debounceMs must be >= 0, not {settings.debounce_ms}")
        return settings


def default_cache_dir(root: str) -> str:
    """mypy's cache for the background check of ``root``: kept apart from the project's own
    ``.mypy_cache`` (it holds readings of unsaved text) and kept across server restarts."""
    digest = hashlib.sha1(root.encode("utf-8")).hexdigest()[:12]
    return str(Path(tempfile.gettempdir(), "distdev-lsp-mypy", digest))


class MypyProcess:
    """The worker process, started on first use and again if it died. ``check`` blocks: the
    server calls it from a thread of the event loop's executor."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._encoder = msgspec.json.Encoder()
        self._decoder = msgspec.json.Decoder(CheckReply)

    def check(self, request: CheckRequest) -> CheckReply:
        with self._lock:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                proc = self._proc = subprocess.Popen(
                    python_module("distdev.lsp._mypy_worker"),
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            assert proc.stdin is not None and proc.stdout is not None
            try:
                proc.stdin.write(self._encoder.encode(request) + b"\n")
                proc.stdin.flush()
                line = proc.stdout.readline()
            except OSError:
                line = b""
            if not line:
                self._proc = None
                return CheckReply([], 0.0, "the mypy worker process exited (see the server's "
                                  "log); the next change starts a new one")
            return self._decoder.decode(line)

    def stop(self) -> None:
        """End the worker: close its input, then kill it if it does not leave."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(timeout=3)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()


def _utf16(line: str, col: int) -> int:
    return col if line.isascii() else len(line[:col].encode("utf-16-le")) // 2


def problems_by_file(reply: CheckReply, files: dict[str, str]) -> dict[Path, list[Problem]]:
    """The reply's findings as ``Problem``s (UTF-16 columns) for every checked file; a file
    with none maps to ``[]`` so its earlier findings are cleared."""
    out: dict[Path, list[Problem]] = {Path(p): [] for p in files}
    lines = {p: text.split("\n") for p, text in files.items()}
    for f in reply.findings:
        text = lines.get(f.path, [])
        first = text[f.line - 1] if 0 < f.line <= len(text) else ""
        last = text[f.end_line - 1] if 0 < f.end_line <= len(text) else ""
        span = Span(f.line - 1, _utf16(first, f.col), f.end_line - 1, _utf16(last, f.end_col))
        severity = "information" if f.severity == "note" else "error"
        out.setdefault(Path(f.path), []).append(Problem(span, f.message, f.code or "mypy",
                                                        severity))
    return out


Finished = Callable[[dict[str, str], CheckReply], None]


class BackgroundCheck:
    """Debounces changes into checks and drops the results of superseded ones.

    ``documents()`` returns the folder to check from, the open documents (path -> text) and
    the folders of the applications they belong to;
    ``run`` performs one check (blocking); ``begin`` is awaited before a check runs (progress
    reporting); ``finished`` receives the texts checked and the reply of every check that was
    not superseded; ``ended`` is called after every check, superseded or not.
    """

    def __init__(self, documents: Callable[[], tuple[str | None, dict[str, str], list[str]]],
                 run: Callable[[CheckRequest], CheckReply], finished: Finished,
                 begin: Callable[[], Awaitable[None]] | None = None,
                 ended: Callable[[CheckReply, bool], None] | None = None) -> None:
        self.settings = TypeCheckSettings()
        self._documents = documents
        self._run = run
        self._finished = finished
        self._begin = begin
        self._ended = ended
        self._generation = 0
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._again = False

    @property
    def running(self) -> bool:
        """Whether a check is under way."""
        return self._task is not None and not self._task.done()

    def schedule(self) -> None:
        """The documents changed: (re)start the quiet time before the next check."""
        self._generation += 1
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.settings.enabled:
            return
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self.settings.debounce_ms / 1000, self._start)

    def cancel(self) -> None:
        """Forget the pending check and the result of a running one (checking was turned off)."""
        self._generation += 1
        self._again = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _start(self) -> None:
        self._timer = None
        if self.running:
            self._again = True  # superseded: one more check when this one ends
            return
        self._task = asyncio.ensure_future(self._check())

    async def _check(self) -> None:
        generation = self._generation
        root, files, app_folders = self._documents()
        if root is None or not files:
            return
        cache_dir = self.settings.cache_dir or default_cache_dir(root)
        request = CheckRequest(root=root, files=files, cache_dir=cache_dir,
                               app_folders=app_folders)
        if self._begin is not None:
            await self._begin()
        loop = asyncio.get_running_loop()
        try:
            reply = await loop.run_in_executor(None, self._run, request)
        except Exception as error:
            reply = CheckReply([], 0.0, f"{type(error).__name__}: {error}")
        stale = generation != self._generation
        if self._ended is not None:
            self._ended(reply, stale)
        if not stale:
            self._finished(files, reply)
        if self._again and self._timer is None and self.settings.enabled:
            self._again = False
            self._task = asyncio.ensure_future(self._check())

