"""Process-wide interposition: the outside world, as ``_surface`` classifies it, reached by
any code that runs for a service — its own files, the standard library, installed packages.

Installed once, when the first service is created: each journaled or refused function of a
covered module is replaced, in its module and wherever another module already holds it (as
``from time import time`` leaves it), by a dispatcher. A dispatcher asks ``acting_service``
whether service code is behind this call — directly, or through libraries it called — and if
so goes through that service's effect seam; otherwise it calls the real function, unchanged.
distdev's own code, a debugger's (pydevd runs on a service's thread when it stops there) and
Python's import machinery are never service code, whatever thread they run on.
"""

from __future__ import annotations

import datetime as _dt
import decimal as _decimal
import functools
import gc
import importlib
import os
import random as _random
import sqlite3
import sys
import threading
import types
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

from ..membrane import can_cross
from ._context import ServiceSide, state
from ._surface import MODULES, SURFACE, Journaled, Refused, Rule

__all__ = ["acting_service", "install_interposition", "installed", "enter_decimal",
           "leave_decimal", "restore_decimal", "environ_writes", "restore_environ_writes"]

_INTERNAL = ("distdev.", "pydevd", "_pydevd", "_pydev", "debugpy", "coverage.",
             "importlib._bootstrap", "zipimport", "_distutils_hack")
"""Modules whose frames are not service code (the name, or its start)."""


_FORMAT_1_MODULES = frozenset({"os", "posixpath", "pathlib", "random", "datetime", "time",
                               "uuid", "secrets"})
"""The modules format 1 gave service code its own copies of: their frames between the
service's code and the call were still the service's."""


def acting_service(frame: types.FrameType | None = None) -> ServiceSide | None:
    """The service whose code makes this call, or None (no service on this thread, inside an
    effect, or the call comes from distdev's, a debugger's or the import system's code).

    The stack is read from ``frame`` (the caller's, by default) outwards, past this module's
    dispatchers, to the first frame that is either service code or distdev's own. A service
    replaying a journal of format 1 is covered as format 1 covered it: its own code only (the
    first frame), so the journal meets the same calls it was written with."""
    service = state.service
    if service is None or state.effect_depth:
        return None
    if frame is None:
        frame = sys._getframe(1)
    lexical = service.coverage == 1
    tracing = sys.gettrace() is not None or sys.getprofile() is not None
    tools = _host_tool_codes() if tracing or gc.callbacks else None
    while frame is not None:
        if tools is not None and (frame.f_code in tools or _local_tracer(frame)):
            return None  # a host tool observing the service (a tracer, a gc callback)
        g = frame.f_globals
        if "__distdev_service__" in g:
            return service
        name = g.get("__name__")
        if name != __name__ and (lexical and name not in _FORMAT_1_MODULES or isinstance(
                name, str) and (name == "distdev" or name.startswith(_INTERNAL))):
            return None
        frame = frame.f_back
    return None


def _host_tool_codes() -> set[types.CodeType]:
    """The code of the hooks the interpreter calls on top of whatever runs — the trace and
    profile functions, the garbage collector's callbacks. They run on a service's thread, above
    its frames, but they are the host's tools (coverage, a profiler, a test framework), and what
    they do is not the service's: at replay they are not there."""
    hooks = [sys.gettrace(), sys.getprofile(), *gc.callbacks]
    return {code for hook in hooks if hook is not None
            for code in [_code_of(hook)] if code is not None}


def _local_tracer(frame: types.FrameType) -> bool:
    """Whether ``frame`` runs the local trace function of the frame it was called over."""
    traced = frame.f_back
    hook = traced.f_trace if traced is not None else None
    return hook is not None and _code_of(hook) is frame.f_code


def _code_of(hook: Any) -> types.CodeType | None:
    function = getattr(hook, "__func__", hook)
    code = getattr(function, "__code__", None)
    if code is None:
        code = getattr(type(hook).__dict__.get("__call__"), "__code__", None)
    return code if isinstance(code, types.CodeType) else None


def _journal_arg(value: Any) -> Any:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    return value if can_cross(value) else f"<{type(value).__name__}>"


def _args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
    return [_journal_arg(a) for a in args] + [[k, _journal_arg(v)] for k, v in kwargs.items()]


# -- dispatchers ------------------------------------------------------------------------------

_PATH_FIRST = frozenset({"stat", "lstat", "listdir", "scandir", "access", "readlink",
                         "getxattr", "listxattr", "statvfs"})
"""os functions whose first argument is a path: named as the service's files are named."""


def _journaled(kind: str, real: Callable[..., Any], rule: Journaled) -> Callable[..., Any]:
    encode, decode = rule.encode, rule.decode
    paths = kind.startswith("os.") and kind[3:] in _PATH_FIRST

    @functools.wraps(real)
    def dispatch(*args: Any, **kwargs: Any) -> Any:
        service = acting_service()
        if service is None:
            return real(*args, **kwargs)
        if paths and args and not isinstance(args[0], int):
            name, rel = service.files.locate(args[0])
            if rel is None and service.files.installed(name):
                return real(*args, **kwargs)  # installed code, as importing reads it
            where = service.files.real_path(args[0])
            journaled = [name, *_args(args[1:], kwargs)]
            args = (where, *args[1:])
        else:
            journaled = _args(args, kwargs)
        if encode is None or decode is None:
            return service.effect(kind, journaled, lambda: real(*args, **kwargs))
        code = encode
        return decode(service.effect(kind, journaled, lambda: code(real(*args, **kwargs))))

    return dispatch


def _refusing(kind: str, what: str, real: Callable[..., Any]) -> Callable[..., Any]:
    """Refused outside an effect: ``kind (what)``, naming the file a path-first os function
    was given (as the journal names files, so a message the code keeps is the same at replay)."""
    paths = kind.startswith("os.")

    @functools.wraps(real)
    def dispatch(*args: Any, **kwargs: Any) -> Any:
        service = acting_service()
        if service is not None:
            named = _paths_named(service, args) if paths else []
            on = f" on {' -> '.join(named)}" if named else ""
            service.refuse(f"{kind}{on} ({what})")
        return real(*args, **kwargs)

    return dispatch


def _paths_named(service: ServiceSide, args: tuple[Any, ...]) -> list[str]:
    """The leading path arguments (rename's two, unlink's one), named as the journal names
    files."""
    named = []
    for arg in args[:2]:
        if not isinstance(arg, (str, bytes, os.PathLike)):
            break
        named.append(repr(service.files.locate(arg)[0]))
    return named


def _refuse_class(kind: str, what: str, cls: type) -> None:
    """Refuse making one (its ``__init__``, its own or inherited); a type of C's own is left to
    the audit hook."""
    init = next((c.__dict__["__init__"] for c in cls.__mro__ if "__init__" in c.__dict__), None)
    if not isinstance(init, types.FunctionType):
        return
    try:
        cls.__init__ = _refusing(kind, what, init)  # type: ignore[misc]
    except TypeError:
        pass


# -- what a service has of its own ------------------------------------------------------------


def _fresh_seed() -> int:
    return int.from_bytes(_real_urandom(16), "big")


_real_urandom = os.urandom
_real_seed = _random.Random.seed


def _own_random(service: ServiceSide) -> _random.Random:
    """The service's generator behind ``random.random()`` and friends, seeded from its journal
    the first time its code asks for one."""
    generator = service.interposed.get("random")
    if generator is None:
        generator = _random.Random(service.effect("random.seed", [], _fresh_seed))
        service.interposed["random"] = generator
    return generator


def _random_function(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(real)
    def dispatch(*args: Any, **kwargs: Any) -> Any:
        service = acting_service()
        if service is None:
            return real(*args, **kwargs)
        return getattr(_own_random(service), name)(*args, **kwargs)

    return dispatch


def _system(kind: str, real: Callable[..., Any]) -> Callable[..., Any]:
    """A ``SystemRandom`` method: the operating system's randomness, journaled per call."""

    @functools.wraps(real)
    def method(self: _random.SystemRandom, *args: Any) -> Any:
        service = acting_service()
        if service is None:
            return real(self, *args)
        return service.effect(kind, list(args), lambda: real(self, *args))

    return method


def _seed(self: _random.Random, a: Any = None, version: int = 2) -> None:
    """``Random.seed(None)`` (what ``Random()`` does) from service code takes a journaled seed."""
    if a is None:
        service = acting_service()
        if service is not None:
            a = service.effect("random.seed", [], _fresh_seed)
    _real_seed(self, a, version)


class _Environ(MutableMapping[str, str]):
    """``os.environ``: the real one for everyone but service code, which sees its journaled
    reads and keeps its writes to itself."""

    def __init__(self, real: os._Environ[str]) -> None:
        self._real = real

    def _view(self) -> MutableMapping[str, str]:
        service = acting_service()
        if service is None:
            return self._real
        view = service.interposed.get("environ")
        if view is None:
            view = service.interposed["environ"] = _ServiceEnviron(service, self._real)
        return view

    def __getitem__(self, key: str) -> str:
        return self._view()[key]

    def __setitem__(self, key: str, value: str) -> None:
        self._view()[key] = value

    def __delitem__(self, key: str) -> None:
        del self._view()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._view())

    def __len__(self) -> int:
        return len(self._view())

    def __contains__(self, key: object) -> bool:
        return key in self._view()

    def get(self, key: str, default: Any = None) -> Any:
        return self._view().get(key, default)

    def copy(self) -> dict[str, str]:
        return dict(self._view())

    def __repr__(self) -> str:
        return repr(self._view())

    # os._Environ's own, which callers such as subprocess use
    def encodekey(self, key: str) -> Any:
        return self._real.encodekey(key)

    def decodekey(self, key: Any) -> Any:
        return self._real.decodekey(key)


class _EnvironBytes(MutableMapping[bytes, bytes]):
    """``os.environb``: for service code, the bytes spelling of its ``os.environ`` view (one
    journal, one set of writes); for everyone else the real one."""

    def __init__(self, real: os._Environ[bytes], environ: _Environ) -> None:
        self._real = real
        self._environ = environ

    def _service(self) -> bool:
        return acting_service() is not None

    def __getitem__(self, key: bytes) -> bytes:
        if not self._service():
            return self._real[key]
        return os.fsencode(self._environ[os.fsdecode(key)])

    def __setitem__(self, key: bytes, value: bytes) -> None:
        if not self._service():
            self._real[key] = value
        else:
            self._environ[os.fsdecode(key)] = os.fsdecode(value)

    def __delitem__(self, key: bytes) -> None:
        if not self._service():
            del self._real[key]
        else:
            del self._environ[os.fsdecode(key)]

    def __iter__(self) -> Iterator[bytes]:
        if not self._service():
            return iter(self._real)
        return iter([os.fsencode(key) for key in self._environ])

    def __len__(self) -> int:
        return len(self._real) if not self._service() else len(self._environ)

    def copy(self) -> dict[bytes, bytes]:
        return dict(self)

    def __repr__(self) -> str:
        return repr(dict(self))


class _ServiceEnviron(MutableMapping[str, str]):
    def __init__(self, service: ServiceSide, real: os._Environ[str]) -> None:
        self._service = service
        self._real = real
        self._own: dict[str, str | None] = {}

    def _read(self, key: str) -> str | None:
        if key in self._own:
            return self._own[key]
        value: str | None = self._service.effect("env.get", [key], lambda: self._real.get(key))
        return value

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
        keys: list[str] = self._service.effect("env.keys", [], lambda: list(self._real))
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


def environ_writes(service: ServiceSide) -> dict[str, str | None]:
    """What the service's code set (a str) or deleted (None) in its ``os.environ``: state of its
    own that no journal record holds, so a checkpoint carries it."""
    view = service.interposed.get("environ")
    return dict(view._own) if isinstance(view, _ServiceEnviron) else {}


def restore_environ_writes(service: ServiceSide, writes: dict[str, str | None]) -> None:
    """Give a restored service the ``os.environ`` writes a checkpoint carries."""
    view = service.interposed.get("environ")
    if not isinstance(view, _ServiceEnviron):
        if not writes:
            return
        real = os.environ._real if isinstance(os.environ, _Environ) else os.environ
        view = service.interposed["environ"] = _ServiceEnviron(service, real)
    view._own = dict(writes)


class _Metaclass(type):
    """Makes the real class's instances instances of the journaled stand-in too."""

    _real: type

    def __instancecheck__(cls, obj: object) -> bool:
        return isinstance(obj, cls._real)

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, cls._real)


def _clock(kind: str, real: Callable[..., Any]) -> Any:
    def now(cls: type) -> Any:
        service = acting_service()
        if service is None:
            return real()
        return service.effect(kind, [], real)

    return classmethod(now)


_REAL_DATETIME = _dt.datetime


def _now(cls: type, tz: _dt.tzinfo | None = None) -> Any:
    service = acting_service()
    if service is None:
        return _REAL_DATETIME.now(tz)
    return service.effect("datetime.now", [] if tz is None else [repr(tz)],
                          lambda: _REAL_DATETIME.now(tz))


class datetime(_dt.datetime, metaclass=_Metaclass):  # noqa: N801 - stands for datetime
    _real = _dt.datetime
    now: Any = classmethod(_now)
    utcnow = _clock("datetime.utcnow", _dt.datetime.utcnow)
    today = _clock("datetime.today", _dt.datetime.today)


class date(_dt.date, metaclass=_Metaclass):  # noqa: N801 - stands for date
    _real = _dt.date
    today = _clock("date.today", _dt.date.today)


for _cls in (datetime, date):
    _cls.__module__ = "datetime"
    _cls.__qualname__ = _cls.__name__


def _open(real: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(real)
    def open(file: Any, mode: str = "r", buffering: int = -1, encoding: str | None = None,
             errors: str | None = None, newline: str | None = None, closefd: bool = True,
             opener: Any = None) -> Any:
        service = acting_service()
        if service is None or isinstance(file, int) or opener is not None:
            return real(file, mode, buffering, encoding, errors, newline, closefd, opener)
        return service.files.open(file, mode, buffering, encoding, errors, newline)

    return open


def _start(real: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(real)
    def start(self: threading.Thread) -> None:
        service = acting_service()
        if service is not None:
            service.refuse("starting a thread")
        real(self)

    return start


_MEMORY = (":memory:", "")


def _connect(real: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(real)
    def connect(database: Any, *args: Any, **kwargs: Any) -> Any:
        service = acting_service()
        if service is not None:
            if not _in_memory(database, kwargs.get("uri", False)):
                service.refuse(f"opening the database file {database!s} (sqlite3)")
            # A service's calls run one at a time, but not always on one thread (a restored
            # service is rebuilt on one and serves on others): the gate, not the thread,
            # keeps the connection to one user at a time.
            if len(args) < 4:
                kwargs.setdefault("check_same_thread", False)
        return real(database, *args, **kwargs)

    return connect


def _in_memory(database: Any, uri: bool) -> bool:
    text = os.fsdecode(database) if isinstance(database, (str, bytes, os.PathLike)) else ""
    return text in _MEMORY or (bool(uri) and ("mode=memory" in text or text.startswith(
        "file::memory:")))


class _Argv(list):  # type: ignore[type-arg]
    """``sys.argv``: the process's own for everyone but service code, which sees the command
    line it saw first (journaled) — at build time that was ``distdev build``, at runtime the
    host's; a replay sees the recorded one."""

    def _seen(self) -> list[str]:
        service = acting_service()
        if service is None:
            return list(list.__iter__(self))
        seen = service.interposed.get("argv")
        if seen is None:
            seen = service.interposed["argv"] = list(service.effect(
                "sys.argv", [], lambda: list(list.__iter__(self))))
        return seen

    def __getitem__(self, index: Any) -> Any:
        return self._seen()[index]

    def __iter__(self) -> Iterator[str]:
        return iter(self._seen())

    def __len__(self) -> int:
        return len(self._seen())

    def __contains__(self, value: object) -> bool:
        return value in self._seen()

    def __eq__(self, other: object) -> bool:
        return self._seen() == other

    def __repr__(self) -> str:
        return repr(self._seen())

    __hash__ = None


class _Flags:
    """``sys.flags``: the interpreter's, except that service code sees the ones it saw first
    (the host's interpreter may run with other options than the build's)."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def _seen(self) -> dict[str, Any]:
        service = acting_service()
        real = self._real
        if service is None:
            return {name: getattr(real, name) for name in _FLAG_NAMES}
        seen = service.interposed.get("flags")
        if seen is None:
            seen = service.interposed["flags"] = service.effect(
                "sys.flags", [], lambda: {name: getattr(real, name) for name in _FLAG_NAMES})
        return seen

    def __getattr__(self, name: str) -> Any:
        if name in _FLAG_NAMES:
            return self._seen()[name]
        return getattr(self._real, name)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._seen().values())

    def __getitem__(self, index: int) -> Any:
        return list(self._seen().values())[index]

    def __len__(self) -> int:
        return len(_FLAG_NAMES)

    def __repr__(self) -> str:
        return "sys.flags(" + ", ".join(f"{k}={v!r}" for k, v in self._seen().items()) + ")"


_FLAG_NAMES = tuple(name for name in dir(sys.flags) if not name.startswith("_")
                    and not callable(getattr(sys.flags, name)))


class _Stdin:
    """``sys.stdin``: reading it is refused to service code (replay has no keyboard)."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        if name.startswith("read") or name in ("buffer", "fileno"):
            service = acting_service()
            if service is not None:
                service.refuse("reading standard input")
        return getattr(self._real, name)

    def __iter__(self) -> Any:
        service = acting_service()
        if service is not None:
            service.refuse("reading standard input")
        return iter(self._real)


def enter_decimal(service: ServiceSide) -> Any:
    """Give the thread the service's own ``decimal`` context (one service's precision must
    not be another's in one process); returns the context to restore (``restore_decimal``).
    The membrane imports ``decimal`` (a ``Decimal`` crosses it), so it is always loaded."""
    own = service.interposed.get("decimal")
    if own is None:
        own = service.interposed["decimal"] = _decimal.Context()
    previous = _getcontext()
    _setcontext(own)
    return previous


restore_decimal: Callable[[Any], None] = _decimal.setcontext
"""Put back the context ``enter_decimal`` returned (``decimal.setcontext`` itself: the hot
path calls it directly)."""


def leave_decimal(previous: Any) -> None:
    """``restore_decimal``, for a ``previous`` that may be None (``enter_decimal`` not run)."""
    if previous is not None:
        _setcontext(previous)


_getcontext, _setcontext = _decimal.getcontext, _decimal.setcontext


# -- installing -------------------------------------------------------------------------------

_installed = False


def installed() -> bool:
    return _installed


def install_interposition() -> None:
    """Replace what the table journals or refuses, once per process."""
    global _installed
    if _installed:
        return
    _installed = True
    replaced: dict[int, tuple[Any, Any]] = {}  # id(real) -> (real, replacement)
    replacements: set[int] = set()
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name, rule in SURFACE[module_name]().items():
            real = getattr(module, name, None)
            if real is None or id(real) in replacements:
                continue  # absent, or bound to a dispatcher already (timeit's default_timer
                # is time.perf_counter when timeit is first imported after time was covered)
            if id(real) in replaced and replaced[id(real)][0] is real:
                setattr(module, name, replaced[id(real)][1])  # one function, two names
                continue
            replacement = _replacement(f"{module_name}.{name}", name, real, rule)
            if replacement is not None and replacement is not real:
                setattr(module, name, replacement)
                replaced[id(real)] = (real, replacement)
                replacements.add(id(replacement))
    for real, replacement in _specials():
        replaced[id(real)] = (real, replacement)
    _swap_held_references(replaced)


def _replacement(kind: str, name: str, real: Any, rule: Rule) -> Any:
    if isinstance(rule, Journaled):
        return _journaled(kind, real, rule) if callable(real) else None
    if isinstance(rule, Refused):
        if isinstance(real, type):
            _refuse_class(kind, rule.what, real)
            return None
        return _refusing(kind, rule.what, real)
    return None  # deterministic, or special (``_specials``)


def _specials() -> Iterator[tuple[Any, Any]]:
    """The mechanisms ``_surface`` marks as special; each yields (real, replacement)."""
    for name in [n for n, r in SURFACE["random"]().items() if not isinstance(r, str)]:
        real = getattr(_random, name)
        if isinstance(real, type):
            continue
        replacement = _random_function(name, real)
        setattr(_random, name, replacement)
        yield real, replacement
    _random.Random.seed = _seed  # type: ignore[method-assign]
    system = _random.SystemRandom
    system.random = _system("random.system", system.random)  # type: ignore[method-assign]
    system.getrandbits = _system(  # type: ignore[method-assign]
        "random.systembits", system.getrandbits)
    system.randbytes = _system("random.systembytes", system.randbytes)  # type: ignore[method-assign]
    environ = _Environ(os.environ)
    yield os.environ, environ
    os.environ = environ  # type: ignore[assignment]  # noqa: B003 - a view, not a change
    if hasattr(os, "environb"):
        environb = _EnvironBytes(os.environb, environ)
        yield os.environb, environb
        os.environb = environb  # type: ignore[assignment]
    for real, stand_in in ((_dt.datetime, datetime), (_dt.date, date)):
        setattr(_dt, real.__name__, stand_in)
        yield real, stand_in
    threading.Thread.start = _start(threading.Thread.start)  # type: ignore[method-assign]
    import builtins
    import io

    real_open = builtins.open
    service_open = _open(real_open)
    builtins.open = io.open = service_open
    yield real_open, service_open
    sys.argv = _Argv(sys.argv)
    sys.flags = _Flags(sys.flags)  # type: ignore[assignment]
    if sys.stdin is not None:
        sys.stdin = _Stdin(sys.stdin)
    connect = _connect(sqlite3.connect)
    yield sqlite3.connect, connect
    sqlite3.connect = connect


_NOT_SWAPPED = ("distdev", "pydevd", "_pydevd", "_pydev", "debugpy", "_", "posix", "nt",
                "builtins", "sys")


def _swap_held_references(replaced: dict[int, tuple[Any, Any]]) -> None:
    """Where another module holds a replaced function (``from time import time``, random's
    ``_urandom``), give it the replacement too."""
    for name, module in list(sys.modules.items()):
        if module is None or name.startswith(_NOT_SWAPPED):
            continue
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for key, value in list(namespace.items()):
            found = replaced.get(id(value))
            if found is not None and found[0] is value:
                namespace[key] = found[1]
