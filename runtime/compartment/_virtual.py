"""The virtualized standard library a service's code sees.

Each service gets its own ``time``, ``datetime``, ``random``, ``uuid``, ``os``, ``secrets``,
``pathlib``, ``threading``, ``subprocess``, ``socket`` and ``multiprocessing`` modules: everything
the real module has, except that nondeterministic functions go through the service's effect seam
(journaled when recording, answered from the journal when replaying) and functions that start
threads or processes or open sockets are refused outside an ``@effect``. Its builtins replace
``open`` (reads journaled, writes refused) and ``print`` (recorded as output).
"""

from __future__ import annotations

import builtins
import datetime as _dt
import io
import os as _os
import pathlib as _pathlib
import random as _random
import secrets as _secrets
import time as _time
import types
import uuid as _uuid
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._context import ServiceSide, state

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

_real_open = builtins.open
_real_print = builtins.print


def _module(real: types.ModuleType, overrides: dict[str, Any]) -> types.ModuleType:
    module = types.ModuleType(real.__name__, real.__doc__)
    module.__dict__.update(overrides)
    module.__dict__["__getattr__"] = lambda name: getattr(real, name)
    module.__dict__["__dir__"] = lambda: sorted(set(dir(real)) | set(overrides))
    module.__dict__["__distdev_virtual__"] = True
    return module


def _refusing(svc: ServiceSide, what: str, real: Callable[..., Any]) -> Callable[..., Any]:
    def refused(*args: Any, **kwargs: Any) -> Any:
        svc.refuse(what)
        return real(*args, **kwargs)

    refused.__name__ = getattr(real, "__name__", what)
    return refused


class VirtualModules:
    """The virtual modules of one service, made on first import."""

    def __init__(self, service: ServiceSide, root: Path) -> None:
        self.service = service
        self.root = root
        self._made: dict[str, types.ModuleType] = {}

    def get(self, name: str) -> types.ModuleType | None:
        made = self._made.get(name)
        if made is None:
            factory = _FACTORIES.get(name)
            if factory is None:
                return None
            made = self._made[name] = factory(self.service, self.root)
        return made


# -- time and dates ---------------------------------------------------------------------------


def _time_module(svc: ServiceSide) -> types.ModuleType:
    def clock(name: str) -> Callable[[], Any]:
        real = getattr(_time, name)
        return lambda: svc.effect(f"time.{name}", [], real)

    overrides: dict[str, Any] = {
        name: clock(name)
        for name in (
            "time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns",
            "process_time", "process_time_ns", "thread_time", "thread_time_ns",
        )
    }

    def sleep(seconds: float) -> None:
        svc.effect("time.sleep", [seconds], lambda: _time.sleep(seconds))

    def struct(kind: str) -> Callable[..., Any]:
        real = getattr(_time, kind)

        def convert(secs: float | None = None) -> _time.struct_time:
            fields = svc.effect(f"time.{kind}", [secs], lambda: list(real(secs)))
            return _time.struct_time(fields)

        return convert

    localtime = struct("localtime")
    overrides.update(
        sleep=sleep,
        localtime=localtime,
        gmtime=struct("gmtime"),
        ctime=lambda secs=None: _time.asctime(localtime(secs)),
        asctime=lambda t=None: _time.asctime(localtime() if t is None else t),
        strftime=lambda fmt, t=None: _time.strftime(fmt, localtime() if t is None else t),
    )
    return _module(_time, overrides)


class _InstanceOf(type):
    """Metaclass that makes real datetimes instances of the virtual classes too."""

    _real: type

    def __instancecheck__(cls, obj: object) -> bool:
        return isinstance(obj, cls._real)

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, cls._real)


def _datetime_module(svc: ServiceSide) -> types.ModuleType:
    def tz_arg(tz: Any) -> list[Any]:
        return [] if tz is None else [repr(tz)]

    class datetime(_dt.datetime, metaclass=_InstanceOf):  # noqa: N801 - the real name
        _real = _dt.datetime

        @classmethod
        def now(cls, tz: _dt.tzinfo | None = None) -> _dt.datetime:  # type: ignore[override]
            return svc.effect("datetime.now", tz_arg(tz), lambda: _dt.datetime.now(tz))

        @classmethod
        def utcnow(cls) -> _dt.datetime:  # type: ignore[override]
            return svc.effect("datetime.utcnow", [], _dt.datetime.utcnow)

        @classmethod
        def today(cls) -> _dt.datetime:  # type: ignore[override]
            return svc.effect("datetime.today", [], _dt.datetime.today)

    class date(_dt.date, metaclass=_InstanceOf):  # noqa: N801 - the real name
        _real = _dt.date

        @classmethod
        def today(cls) -> _dt.date:  # type: ignore[override]
            return svc.effect("date.today", [], _dt.date.today)

    for cls in (datetime, date):
        cls.__module__ = "datetime"
    return _module(_dt, {"datetime": datetime, "date": date})


# -- randomness -------------------------------------------------------------------------------


def _seed(svc: ServiceSide) -> int:
    return svc.effect("random.seed", [], lambda: int.from_bytes(_os.urandom(16), "big"))


def _random_module(svc: ServiceSide) -> types.ModuleType:
    class Random(_random.Random):
        """``random.Random``; with no seed, seeded from the journal."""

        def __init__(self, x: Any = None) -> None:
            super().__init__(_seed(svc) if x is None else x)

        def seed(self, a: Any = None, version: int = 2) -> None:
            super().seed(_seed(svc) if a is None else a, version)

    class SystemRandom(_random.SystemRandom):
        def random(self) -> float:
            return svc.effect("random.system", [], _random.random)

        def getrandbits(self, k: int) -> int:
            return svc.effect("random.systembits", [k], lambda: _random.getrandbits(k))

    shared: list[Random] = []

    def instance() -> Random:
        if not shared:
            shared.append(Random())
        return shared[0]

    def method(name: str) -> Callable[..., Any]:
        return lambda *a, **k: getattr(instance(), name)(*a, **k)

    overrides: dict[str, Any] = {
        name: method(name)
        for name in (
            "random", "uniform", "triangular", "randint", "choice", "randrange", "sample",
            "shuffle", "choices", "normalvariate", "lognormvariate", "expovariate",
            "vonmisesvariate", "gammavariate", "gauss", "betavariate", "paretovariate",
            "weibullvariate", "getstate", "setstate", "getrandbits", "randbytes",
        )
    }

    def seed(a: Any = None, version: int = 2) -> None:
        instance().seed(a, version)

    overrides.update(Random=Random, SystemRandom=SystemRandom, seed=seed)
    return _module(_random, overrides)


def _uuid_module(svc: ServiceSide) -> types.ModuleType:
    def uuid1(node: int | None = None, clock_seq: int | None = None) -> _uuid.UUID:
        return svc.effect("uuid.uuid1", [node, clock_seq], lambda: _uuid.uuid1(node, clock_seq))

    def uuid4() -> _uuid.UUID:
        return svc.effect("uuid.uuid4", [], _uuid.uuid4)

    return _module(_uuid, {"uuid1": uuid1, "uuid4": uuid4})


def _secrets_module(svc: ServiceSide) -> types.ModuleType:
    def journaled(name: str) -> Callable[..., Any]:
        real = getattr(_secrets, name)
        return lambda *args: svc.effect(f"secrets.{name}", list(args), lambda: real(*args))

    overrides = {
        name: journaled(name)
        for name in ("token_bytes", "token_hex", "token_urlsafe", "randbelow", "randbits", "choice")
    }
    overrides["SystemRandom"] = _random_module(svc).SystemRandom
    return _module(_secrets, overrides)


# -- the operating system ---------------------------------------------------------------------


class _Environ(MutableMapping[str, str]):
    """``os.environ`` for a service: reads are journaled; writes stay inside the service."""

    def __init__(self, svc: ServiceSide) -> None:
        self._svc = svc
        self._own: dict[str, str | None] = {}

    def _read(self, key: str) -> str | None:
        if key in self._own:
            return self._own[key]
        return self._svc.effect("env.get", [key], lambda: _os.environ.get(key))

    def __getitem__(self, key: str) -> str:
        value = self._read(key)
        if value is None:
            raise KeyError(key)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        value = self._read(key)
        return default if value is None else value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._read(key) is not None

    def _keys(self) -> list[str]:
        keys: list[str] = self._svc.effect("env.keys", [], lambda: list(_os.environ))
        keys += [k for k, v in self._own.items() if v is not None and k not in keys]
        return [k for k in keys if self._own.get(k, "") is not None]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    def __setitem__(self, key: str, value: str) -> None:
        self._own[key] = value

    def __delitem__(self, key: str) -> None:
        self[key]  # KeyError if absent, as os.environ does
        self._own[key] = None


def _os_module(svc: ServiceSide) -> types.ModuleType:
    environ = _Environ(svc)
    overrides: dict[str, Any] = {
        "environ": environ,
        "getenv": lambda key, default=None: environ.get(key, default),
        "urandom": lambda n: svc.effect("os.urandom", [n], lambda: _os.urandom(n)),
        "getpid": lambda: svc.effect("os.getpid", [], _os.getpid),
    }
    for name in (
        "system", "popen", "fork", "forkpty", "execv", "execve", "execl", "execle", "execlp",
        "execvp", "execvpe", "spawnv", "spawnve", "spawnl", "spawnle", "spawnlp", "spawnvp",
        "posix_spawn", "posix_spawnp",
    ):
        if hasattr(_os, name):
            overrides[name] = _refusing(svc, f"os.{name} (starting a process)", getattr(_os, name))
    for name in ("remove", "unlink", "rename", "replace", "mkdir", "makedirs", "rmdir", "write"):
        overrides[name] = _refusing(svc, f"os.{name} (changing files)", getattr(_os, name))
    return _module(_os, overrides)


def _pathlib_module(svc: ServiceSide, service_open: Callable[..., Any]) -> types.ModuleType:
    class Path(_pathlib.PosixPath):  # distdev runs on POSIX (fdatasync, Unix sockets)
        """``pathlib.Path`` whose reads are journaled and whose writes are refused."""

        def open(self, mode: str = "r", buffering: int = -1, encoding: str | None = None,
                 errors: str | None = None, newline: str | None = None) -> Any:
            return service_open(self, mode, buffering, encoding, errors, newline)

        def read_text(self, encoding: str | None = None, errors: str | None = None) -> str:
            with self.open("r", encoding=encoding, errors=errors) as f:
                text: str = f.read()
            return text

        def read_bytes(self) -> bytes:
            with self.open("rb") as f:
                data: bytes = f.read()
            return data

        def write_text(self, *args: Any, **kwargs: Any) -> int:
            svc.refuse("Path.write_text (writing a file)")
            return super().write_text(*args, **kwargs)

        def write_bytes(self, data: ReadableBuffer) -> int:
            svc.refuse("Path.write_bytes (writing a file)")
            return super().write_bytes(data)

    Path.__module__ = "pathlib"
    return _module(_pathlib, {"Path": Path, "PosixPath": Path})


def _threading_module(svc: ServiceSide) -> types.ModuleType:
    import threading as _threading

    class Thread(_threading.Thread):
        def start(self) -> None:
            svc.refuse("starting a thread")
            super().start()

    class Timer(_threading.Timer):
        def start(self) -> None:
            svc.refuse("starting a timer thread")
            super().start()

    return _module(_threading, {"Thread": Thread, "Timer": Timer})


def _thread_module(svc: ServiceSide) -> types.ModuleType:
    import _thread

    return _module(_thread, {
        "start_new_thread": _refusing(svc, "starting a thread", _thread.start_new_thread),
        "start_new": _refusing(svc, "starting a thread", _thread.start_new_thread),
    })


def _subprocess_module(svc: ServiceSide) -> types.ModuleType:
    import subprocess as _subprocess

    names = ("run", "Popen", "call", "check_call", "check_output", "getoutput", "getstatusoutput")
    return _module(_subprocess, {
        n: _refusing(svc, f"subprocess.{n} (starting a process)", getattr(_subprocess, n))
        for n in names
    })


def _socket_module(svc: ServiceSide) -> types.ModuleType:
    import socket as _socket

    names = ("socket", "create_connection", "create_server", "socketpair", "fromfd")
    return _module(_socket, {
        n: _refusing(svc, f"socket.{n} (network IO)", getattr(_socket, n)) for n in names
    })


def _multiprocessing_module(svc: ServiceSide) -> types.ModuleType:
    import multiprocessing as _mp

    names = ("Process", "Pool", "get_context")
    return _module(_mp, {
        n: _refusing(svc, f"multiprocessing.{n} (starting a process)", getattr(_mp, n))
        for n in names
    })


# -- builtins -------------------------------------------------------------------------------


def _service_open(svc: ServiceSide, root: Path) -> Callable[..., Any]:
    def open(file: Any, mode: str = "r", buffering: int = -1, encoding: str | None = None,
             errors: str | None = None, newline: str | None = None, closefd: bool = True,
             opener: Any = None) -> Any:
        if state.service is not svc or state.effect_depth or isinstance(file, int):
            return _real_open(file, mode, buffering, encoding, errors, newline, closefd, opener)
        if any(c in mode for c in "wax+"):
            svc.refuse(f"opening {file!s} for writing")
        path = _os.fspath(file)

        def read() -> bytes:
            with _real_open(path, "rb") as f:
                return f.read()

        data: bytes = svc.effect("file.read", [_journaled_path(root, path)], read)
        stream = io.BytesIO(data)
        if "b" in mode:
            stream.name = str(path)
            return stream
        text = io.TextIOWrapper(stream, encoding=encoding or "utf-8", errors=errors,
                                newline=newline)
        text.mode = mode  # type: ignore[misc]
        return text

    return open


def _journaled_path(app_root: Path, path: str | bytes) -> str:
    """A file's name as journaled: relative to the application folder when inside it, so a
    replay from a bundle elsewhere (where ``__file__`` differs) asks for the same file."""
    full = _os.path.abspath(_os.fsdecode(path))
    root = str(app_root)
    return _os.path.relpath(full, root) if full.startswith(root + _os.sep) else full


def _service_print(svc: ServiceSide) -> Callable[..., None]:
    def print(*values: Any, sep: str | None = " ", end: str | None = "\n", file: Any = None,
              flush: bool = False) -> None:
        import sys

        stream = {None: "stdout", sys.stdout: "stdout", sys.stderr: "stderr"}.get(file)
        if stream is None or state.service is not svc or state.effect_depth:
            _real_print(*values, sep=sep, end=end, file=file, flush=flush)
            return
        text = (" " if sep is None else sep).join(map(str, values)) + ("\n" if end is None else end)
        if svc.output(stream, text):
            out = sys.stdout if stream == "stdout" else sys.stderr
            out.write(text)
            if flush:
                out.flush()

    return print


def virtual_builtins(svc: ServiceSide, root: Path, importer: Callable[..., Any]) -> dict[str, Any]:
    """The builtins dict a service's modules run with."""
    table = dict(builtins.__dict__)
    table.update(__import__=importer, open=_service_open(svc, root), print=_service_print(svc))
    table["input"] = _refusing(svc, "reading standard input", builtins.input)
    return table


_FACTORIES: dict[str, Callable[[ServiceSide, Path], types.ModuleType]] = {
    "time": lambda svc, _root: _time_module(svc),
    "datetime": lambda svc, _root: _datetime_module(svc),
    "random": lambda svc, _root: _random_module(svc),
    "uuid": lambda svc, _root: _uuid_module(svc),
    "secrets": lambda svc, _root: _secrets_module(svc),
    "os": lambda svc, _root: _os_module(svc),
    "pathlib": lambda svc, root: _pathlib_module(svc, _service_open(svc, root)),
    "threading": lambda svc, _root: _threading_module(svc),
    "_thread": lambda svc, _root: _thread_module(svc),
    "subprocess": lambda svc, _root: _subprocess_module(svc),
    "socket": lambda svc, _root: _socket_module(svc),
    "multiprocessing": lambda svc, _root: _multiprocessing_module(svc),
}
