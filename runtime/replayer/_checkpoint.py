"""Checkpoints: a service's state as bytes, taken where no call is open, verified before it is
written, and loaded by a restore in place of the records before it.

What a snapshot holds is what the journal's records before it built and nothing they can
rebuild: the state globals of each of the service's application modules (its own, and the
helpers it imported), and what the service holds of its own behind the interposed functions
(its random generator, its ``os.environ`` writes, the command line and flags it saw, its
``decimal`` context, its working folder, what the proxies it holds export). Functions, classes
and modules are not in it: the restore re-runs the top level, from the journal's own records of
it, and the snapshot names them (``persistent_id``) to be found in that fresh copy of the code.
So are proxies, re-made for the restored service. Anything else pickle cannot write (an open
generator, a lambda, a lock) makes the snapshot fail, naming the global: the journal then
takes no checkpoint and a restore replays it whole.

Why verify in a fresh copy of the modules in this process, not in a fresh interpreter: a
restore loads a checkpoint into exactly such a copy (the top level replayed from the journal,
then the snapshot), so the check runs the very procedure a restore runs, for the cost of that
top level; a fresh interpreter would add the start of Python and distdev to every checkpoint
(a tenth of a second and more, on the call that takes it) and would see nothing more that the
state digest covers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import hashlib
import io
import os
import pickle
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import msgspec

from ..compartment import environ_writes, observing, restore_environ_writes
from ..errors import DistdevError
from ..journal import CHECKPOINT_INDEX, BundleFile, Checkpoint, ErrorInfo, Event, Header
from ..membrane import ServiceProxy, target_of
from ..membrane._snapshot import is_state
from ..rules import app_module_name
from ..service import Recorder, Service

__all__ = ["CheckpointPolicy", "Checkpointer", "SnapshotError", "take_snapshot",
           "load_snapshot", "latest_checkpoint", "checkpoint_answered"]

_PROTOCOL = 5
_clock = time.perf_counter  # the real one: what a checkpoint costs is distdev's business


class SnapshotError(DistdevError):
    """A service's state that a snapshot cannot hold; ``name`` is the global that holds it."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"global {name!r} cannot be snapshotted: {reason}")
        self.name = name
        self.reason = reason


# -- writing ----------------------------------------------------------------------------------


class _Pickler(pickle.Pickler):
    """Pickles one service's state: its own code's functions and classes, its modules and
    proxies as names that the restored copy resolves.

    The names are written as calls of ``_resolve`` from ``reducer_override``, which pickle asks
    only about objects that are not plain data: a ``persistent_id`` is asked about every object
    (each str, int and dict of the state), which made it most of what a snapshot cost."""

    def __init__(self, file: io.BytesIO, service: Service) -> None:
        super().__init__(file, protocol=_PROTOCOL)
        self.service = service
        compartment = service.compartment
        self.modules = {id(m): name for name, m in compartment.modules.items()}
        self.module_names = {m.__name__: name for name, m in compartment.modules.items()}

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is ServiceProxy:
            return _resolve, ("proxy", target_of(obj))
        if isinstance(obj, types.ModuleType):
            name = self.modules.get(id(obj))
            return NotImplemented if name is None else (_resolve, ("module", name))
        if isinstance(obj, (type, types.FunctionType)):
            module = self.module_names.get(getattr(obj, "__module__", None) or "")
            if module is None:
                return NotImplemented  # a shared module's, pickled by reference as usual
            return _resolve, ("code", module, self._resolvable(obj, module))
        return NotImplemented

    def _resolvable(self, obj: Any, module: str) -> str:
        qualname: str = obj.__qualname__
        found: Any = self.service.compartment.modules[module]
        for part in qualname.split("."):
            found = getattr(found, part, None)
        if found is not obj:
            what = "a lambda" if obj.__name__ == "<lambda>" else (
                f"{'class' if isinstance(obj, type) else 'function'} {qualname}")
            raise pickle.PicklingError(
                f"it holds {what}, which is not reachable by name in {module} (defined inside a "
                "function, or rebound since): a restored copy could not find it again")
        return qualname


def _resolve(*name: Any) -> Any:
    """What a snapshot calls for a name of the service's own (a proxy, a module, a function or
    class of its code): ``_Unpickler`` resolves it in the restored copy instead."""
    raise DistdevError(f"{name!r} is a name in a service's snapshot: only load_snapshot "
                       "resolves it")


def _state_of(module: types.ModuleType) -> dict[str, Any]:
    """A module's state globals, and the globals that hold a function or class (a handler a
    call rebound, a lambda): the restored copy's top level binds them by name otherwise."""
    return {name: value for name, value in module.__dict__.items()
            if is_state(name, value) or isinstance(value, (types.FunctionType, type))
            and not (name.startswith("__") and name.endswith("__"))}


def _own(service: Service) -> dict[str, Any]:
    """What the service holds of its own outside its modules that no record repeats."""
    held = service.interposed
    return {
        "random": held.get("random"),
        "environ": environ_writes(service),
        "argv": held.get("argv"),
        "flags": held.get("flags"),
        "decimal": held.get("decimal"),
        "cwd": service.files._cwd,
        "exports": dict(service._held._exports),
    }


def take_snapshot(service: Service) -> bytes:
    """The service's state as bytes, or ``SnapshotError`` naming the first global that cannot
    be written."""
    modules = {name: _state_of(module) for name, module in service.compartment.modules.items()}
    payload = (modules, _own(service))
    out = io.BytesIO()
    try:
        _Pickler(out, service).dump(payload)
    except Exception as exc:  # what pickle raises differs by object: find the global
        raise _culprit(service, modules, exc) from None
    return out.getvalue()


def _culprit(service: Service, modules: dict[str, dict[str, Any]],
             failure: Exception) -> SnapshotError:
    for module, state in modules.items():
        for name, value in state.items():
            try:
                _Pickler(io.BytesIO(), service).dump(value)
            except Exception as exc:
                where = name if module == next(iter(modules)) else f"{module}.{name}"
                return SnapshotError(where, _reason(exc))
    return SnapshotError("(the service's own)", _reason(failure))


def _reason(exc: Exception) -> str:
    text = str(exc)
    if "cannot pickle" in text:
        return f"it holds a {text.split('cannot pickle', 1)[1].strip(' ')}, which has no state to copy"
    return text


# -- loading ----------------------------------------------------------------------------------


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, service: Service) -> None:
        super().__init__(file)
        self.service = service

    def persistent_load(self, pid: Any) -> Any:
        """A name as ``_resolve`` is called with (snapshots written before names were
        written as calls hold them as persistent ids)."""
        kind = pid[0]
        if kind == "proxy":
            return self.service.make_proxy(pid[1])
        module = self._module(pid[1])
        if kind == "module":
            return module
        found: Any = module
        for part in pid[2].split("."):
            found = getattr(found, part)
        return found

    def find_class(self, module: str, name: str) -> Any:
        """A class or function pickled by reference to a module of the service's copy (a
        ``TypeVar``, a cached function): the same name in this copy."""
        if module == __name__ and name == _resolve.__name__:
            return lambda *pid: self.persistent_load(pid)
        app_name = app_module_name(module)
        if app_name == module:
            return super().find_class(module, name)
        found: Any = self._module(app_name)
        for part in name.split("."):
            found = getattr(found, part)
        return found

    def _module(self, name: str) -> types.ModuleType:
        compartment = self.service.compartment
        if name not in compartment.modules:
            compartment.resolve_class(name, "__class__")  # imported lazily: import it here
        return compartment.modules[name]


def load_snapshot(service: Service, data: bytes, *, same_code: bool = True) -> None:
    """Put a snapshot's state into ``service``, whose top level has run (from its journal).
    With other code than the snapshot's (a compacted journal upgraded), a global the snapshot
    does not know is the new code's, and stays."""
    modules, own = _Unpickler(io.BytesIO(data), service).load()
    compartment = service.compartment
    for name, state in modules.items():
        if name not in compartment.modules:
            compartment.resolve_class(name, "__class__")
        namespace = compartment.modules[name].__dict__
        gone = [k for k, v in namespace.items() if is_state(k, v) and k not in state]
        for name_gone in gone if same_code else ():
            del namespace[name_gone]  # the top level set it; a call deleted it since
        namespace.update(state)
    held = service.interposed
    for key in ("random", "argv", "flags", "decimal"):
        if own[key] is None:
            held.pop(key, None)
        else:
            held[key] = own[key]
    restore_environ_writes(service, own["environ"])
    service.files._cwd = own["cwd"]
    service._held._exports.update(own["exports"])


def latest_checkpoint(events: list[Event]) -> int | None:
    """The index of the journal's last checkpoint record, or None."""
    for index in range(len(events) - 1, 0, -1):
        if type(events[index]) is Checkpoint:
            return index
    return None


# -- taking checkpoints -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CheckpointPolicy:
    """When a live service writes a checkpoint: at the first idle point after ``events``
    records or ``bytes`` bytes since the last one, and only once those records fill
    ``growth`` times the last checkpoint's bytes, and never so often that checkpoints take
    more than ``share`` of the service's time. (None for either: whatever they cost, as tests
    want.)

    ``growth`` is what keeps a large state from being written over and over: without it, a
    service holding half a megabyte wrote it whole every thousand records of a few dozen
    kilobytes, a journal nine parts snapshot to one part history, and every call that met one
    waited for it. With it, the journal holds at most as many bytes of checkpoints as of
    records, and a restore replays at most a checkpoint's size of records after loading it: a
    restart's time follows the state's size, never the service's age."""

    events: int = 1000
    bytes: int = 4 << 20
    growth: float | None = 1.0
    share: float | None = 0.05

    def __post_init__(self) -> None:
        if (self.events < 1 or self.bytes < 1 or self.growth is not None and self.growth <= 0
                or self.share is not None and not 0 < self.share <= 1):
            raise DistdevError("a checkpoint policy needs events >= 1, bytes >= 1, growth > 0 "
                               "(or growth=None) and 0 < share <= 1 (or share=None)")


class Verifier(Protocol):
    """Loads a snapshot into a fresh copy of the service and returns that copy's state digest
    (``VerifyingCopy``); ``close`` drops what it keeps for the next one."""

    def __call__(self, snapshot: bytes) -> dict[str, list[str]]: ...

    def close(self) -> None: ...

Answered = Callable[[], list[list[Any]]]
"""The answered calls a checkpoint keeps (``DedupTable.kept``)."""


class Checkpointer:
    """Takes a live service's checkpoints (installed as its ``checkpoints``).

    Each one is verified before it is written: ``verify`` loads it into a fresh copy of the
    service, and its digest must be the live one. A state that cannot be snapshotted, or a copy
    that differs, writes no checkpoint: ``warn`` is told once, naming the global, and the
    journal goes on without (a restore replays it whole from its last good checkpoint)."""

    def __init__(self, service: Service, header: Header, top_level: int, verify: Verifier,
                 answered: Answered, warn: Callable[[str], None],
                 policy: CheckpointPolicy | None = None,
                 restored_from: Checkpoint | None = None) -> None:
        self.service = service
        self.header = header
        self.top_level = top_level
        self.verify = verify
        self.answered = answered
        self.warn = warn
        self.policy = policy or CheckpointPolicy()
        self.written = 0
        self.seconds = 0.0
        """Time spent taking checkpoints (for what one costs a call)."""
        self._warned: set[str] = set()
        tape = service.tape
        assert isinstance(tape, Recorder)
        self._since_seq = tape.writer.next_seq
        self._since_bytes = self._offset()
        self._step = min(64, self.policy.events)
        """Records between looks at the journal's size (``tell`` is a system call)."""
        self._look_at = self._step
        self._grown_by = 0 if restored_from is None or self.policy.growth is None else int(
            self.policy.growth * len(restored_from.snapshot))
        """Bytes the records since the last checkpoint must fill first (``growth``)."""
        self._not_before = 0.0
        self._cost: float | None = None
        """What a checkpoint costs, smoothed: one slow one (a collection, a busy machine) does
        not hold the next back for long."""

    @property
    def records_since(self) -> int:
        """Records the service has written since its last checkpoint (or since it went live)."""
        tape = self.service.tape
        assert isinstance(tape, Recorder)
        return tape.writer.next_seq - self._since_seq

    def _offset(self) -> int:
        tape = self.service.tape
        assert isinstance(tape, Recorder)
        return tape.writer.size()

    def due(self) -> bool:
        """Whether the policy asks for a checkpoint now (asked at the end of each call)."""
        tape = self.service.tape
        if not isinstance(tape, Recorder):
            return False
        records = self.records_since
        if records < self._look_at:
            return False
        events = self.policy.events
        self._look_at = records + self._step
        if records < events:
            self._look_at = min(self._look_at, events)  # and at ``events`` itself
        journaled = self._offset() - self._since_bytes
        return not (records < events and journaled < self.policy.bytes
                    or journaled < self._grown_by or _clock() < self._not_before)

    def take(self) -> bool:
        """Snapshot, verify and write a checkpoint now (the service must be idle); return
        whether one was written."""
        service, tape = self.service, self.service.tape
        assert isinstance(tape, Recorder)
        started, before = _clock(), self._offset()
        try:
            with _no_collections():
                written = self._write(service, tape)
        finally:
            took = _clock() - started
            self.seconds += took
            self._since_seq = tape.writer.next_seq
            self._since_bytes, self._look_at = self._offset(), self._step
            if self.policy.growth is not None:  # what it wrote (nothing, when it failed)
                self._grown_by = int(self.policy.growth * (self._since_bytes - before))
            self._cost = took if self._cost is None else 0.8 * self._cost + 0.2 * took
            if self.policy.share is not None:
                self._not_before = started + self._cost / self.policy.share
        return written

    def _write(self, service: Service, tape: Recorder) -> bool:
        try:
            with observing():  # what pickling runs of a value's own code is not the service acting
                digest = service.state_digest()
                snapshot = take_snapshot(service)
        except SnapshotError as exc:
            self._warn_once(exc.name, f"{service.id} took no checkpoint: {exc}; its journal "
                            "replays whole from its last checkpoint on a restart")
            return False
        try:
            restored = self.verify(snapshot)
        except Exception as exc:
            self._warn_once(f"verify:{type(exc).__name__}", f"{service.id} took no checkpoint: "
                            f"its snapshot does not load into a fresh copy ({exc})")
            return False
        differing = sorted(n for n in set(digest) | set(restored)
                           if digest.get(n, [None])[0] != restored.get(n, [None])[0])
        if differing:
            self.verify.close()  # the next checkpoint is verified in a copy made afresh
            self._warn_once(f"digest:{differing[0]}", f"{service.id} took no checkpoint: "
                            f"global {differing[0]!r} loads from its snapshot with other state "
                            "than it holds (a value whose copy is not equal to it)")
            return False
        writer = tape.writer
        seq, offset = writer.next_seq, writer.size()
        writer.write(Checkpoint(seq, self.top_level, snapshot, digest, sorted(service.patches),
                                self.answered(), seq + tape.numbered, self._sources()))
        _write_index(writer.path, offset, seq)
        service.digest_recorded(digest)
        self.written += 1
        return True

    def close(self) -> None:
        """The service stopped: drop what verifying its checkpoints keeps."""
        self.verify.close()

    def _sources(self) -> list[BundleFile]:
        """The service's code where it differs from its journal's header."""
        header = {f.path: f.sha256 for f in self.header.bundle}
        files = []
        for rel, data in self.service.compartment.bundle.items():
            sha = hashlib.sha256(data).hexdigest()
            if header.get(rel) != sha:
                files.append(BundleFile(rel, sha, data))
        return files

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.warn(f"WARNING: {message}")


@contextlib.contextmanager
def _no_collections() -> Iterator[None]:
    """No garbage collection while a checkpoint is taken: loading the snapshot into the
    verifying copy allocates as many objects as the state holds, and the collections that would
    set off scan the whole heap (a sixth of a large state's checkpoint) while every call waits.
    The service itself is idle throughout; what it left behind is collected after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _write_index(journal: Path, offset: int, seq: int) -> None:
    """Say where the checkpoint is (``journal.read_from_checkpoint``), so that a restart reads
    from it instead of the whole journal. Written before the record is durable: a restart
    that finds no such record there reads the whole journal.

    The index is one line of fixed width written over the last in place (a ``rename`` of a new
    file cost more than the rest of a small checkpoint): a write this short reaches the page
    cache whole, and a torn one leaves a line that names no checkpoint record — the restart
    then reads the whole journal, as for a missing index."""
    index = journal.with_name(journal.name + CHECKPOINT_INDEX)
    line = f"{offset:>20} {seq:>20}\n".encode()
    fd = os.open(index, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, line, 0)
        if os.fstat(fd).st_size > len(line):
            os.ftruncate(fd, len(line))  # an index of an older, shorter-lined form
    finally:
        os.close(fd)


def checkpoint_answered(checkpoint: Checkpoint) -> list[tuple[str, int | str, list[Any],
                                                              dict[str, Any], bool, Any]]:
    """A checkpoint's answered calls, their errors rebuilt as ``ErrorInfo``."""
    calls = []
    for caller, caller_seq, args, kwargs, ok, outcome in checkpoint.answered:
        calls.append((caller, caller_seq, args, kwargs, ok,
                      outcome if ok else msgspec.convert(outcome, ErrorInfo)))
    return calls
