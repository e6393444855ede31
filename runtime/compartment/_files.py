"""How a service sees files: every read journaled, every path named the same wherever the
service runs.

A path inside the application folder is named relative to it in the journal, and read from
where the service's files are now: the application folder at build time, the bundle at runtime
and in a replay. A relative path is resolved against the working folder the service saw first
(``os.getcwd`` is journaled), not against the process's, so ``open("settings.json")`` means the
same file at build time, at runtime on another host and in a replay elsewhere. A file of the
application that the service reads is part of its bundle, beside its code.

Writes are refused. A file that is not a regular one (``/dev/urandom``, a pipe) is read as the
code reads it, each ``read(n)`` journaled, never "the whole file".
"""

from __future__ import annotations

import functools
import io
import os
import site
import stat
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._context import ServiceSide

__all__ = ["FileView"]

_real_open = io.open
_real_stat = os.stat
_real_getcwd = os.getcwd


class FileView:
    """One service's view of the file system.

    ``app_root``: the application folder as the code that wrote the journal knew it (paths the
    code builds from it, or from the journaled working folder, are application paths).
    ``files_root``: where the application's files are now. ``keep``: called with each
    application file read (relative path, bytes), so it joins the service's bundle.
    """

    def __init__(self, service: ServiceSide, app_root: str, files_root: Path,
                 keep: Callable[[str, bytes], None]) -> None:
        self.service = service
        self.app_roots = tuple(dict.fromkeys([app_root, str(files_root)]))
        self.files_root = files_root
        self.keep = keep
        self._cwd: str | None = None

    def serve_from(self, folder: Path) -> None:
        """Read the application's files from ``folder`` from now on (a live service: the
        build's copy of every file of the application, ``OUT/app``), not only the ones its
        bundle holds."""
        self.app_roots = tuple(dict.fromkeys([*self.app_roots, str(folder)]))
        self.files_root = folder

    # -- naming -------------------------------------------------------------------------------

    def cwd(self) -> str:
        """The working folder the service saw first (journaled once, kept after)."""
        if self._cwd is None:
            self._cwd = str(self.service.effect("os.getcwd", [], _real_getcwd))
        return self._cwd

    def locate(self, path: Any) -> tuple[str, str | None]:
        """(the name a journal gives ``path``, its application-relative path or None)."""
        text = os.fsdecode(os.fspath(path))
        full = os.path.normpath(text if os.path.isabs(text) else os.path.join(self.cwd(), text))
        for root in self.app_roots:
            if full == root or full.startswith(root + os.sep):
                rel = os.path.relpath(full, root)
                return rel, rel
        return full, None

    def installed(self, name: str) -> bool:
        """Whether a path outside the application (as ``locate`` names it) is installed code:
        the interpreter's own files, its site-packages, a ``sys.path`` entry. Reading those is
        what importing does (a library's package data, ``importlib.metadata`` walking
        ``sys.path``): they are the code's, like its modules, not the world's, and are read as
        they are — on any host that runs the same code."""
        return any(name == root or name.startswith(root + os.sep)
                   for root in _installed_roots(self.app_roots))

    def real_path(self, path: Any) -> str:
        """Where ``path`` is read from now."""
        name, rel = self.locate(path)
        return str(self.files_root / rel) if rel is not None else name

    # -- reading ------------------------------------------------------------------------------

    def open(self, file: Any, mode: str, buffering: int, encoding: str | None,
             errors: str | None, newline: str | None) -> Any:
        if any(c in mode for c in "wax+"):
            self.service.refuse(f"opening {file!s} for writing")
        name, rel = self.locate(file)
        if rel is None and self.installed(name):
            return _real_open(name, mode, buffering, encoding, errors, newline)
        real = str(self.files_root / rel) if rel is not None else name
        if not _is_regular(real):
            stream: Any = _JournaledStream(self.service, name, real)
        else:
            data: bytes = self.service.effect("file.read", [name], lambda: _read(real))
            if rel is not None:
                self.keep(rel, data)
            stream = io.BytesIO(data)
            stream.name = os.fsdecode(os.fspath(file))
        if "b" in mode:
            return stream
        text = io.TextIOWrapper(stream, encoding=encoding or "utf-8", errors=errors,
                                newline=newline)
        text.mode = mode  # type: ignore[misc]
        return text


@functools.cache
def _interpreter_roots() -> tuple[str, ...]:
    roots = {*(sysconfig.get_path(key) for key in ("stdlib", "platstdlib", "purelib", "platlib")),
             *site.getsitepackages(), site.getusersitepackages()}
    return tuple(sorted(os.path.normpath(root) for root in roots if root))


def _installed_roots(app_roots: tuple[str, ...]) -> list[str]:
    """The interpreter's folders and the absolute ``sys.path`` entries, less any entry that
    holds the application (a test runner's folder above it)."""
    entries = [os.path.normpath(entry) for entry in sys.path if os.path.isabs(entry)]
    return [root for root in (*_interpreter_roots(), *entries)
            if not any(app == root or app.startswith(root + os.sep) for app in app_roots)]


def _read(path: str) -> bytes:
    with _real_open(path, "rb") as f:
        return f.read()


def _is_regular(path: str) -> bool:
    try:
        return stat.S_ISREG(_real_stat(path).st_mode)
    except OSError:
        return True  # the journaled read says what is wrong


class _JournaledStream(io.RawIOBase):
    """A device or pipe, read as the code reads it: each read journaled."""

    def __init__(self, service: ServiceSide, name: str, real: str) -> None:
        super().__init__()
        self.service = service
        self.name = name
        self._real = real
        self._file: Any = None
        self._reads = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = len(buffer)
        self._reads += 1
        data: bytes = self.service.effect("file.read-part", [self.name, self._reads, size],
                                          lambda: self._part(size))
        buffer[: len(data)] = data
        return len(data)

    def _part(self, size: int) -> bytes:
        if self._file is None:
            self._file = _real_open(self._real, "rb", buffering=0)
        return bytes(self._file.read(size) or b"")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        super().close()
