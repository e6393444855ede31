"""Restoring one service from its journal alone.

The service's code comes from the journal (its header's bundle, written to a cache folder so
tracebacks and debuggers can show it) or from ``source`` for checking new code against an old
journal. Its top level runs again, every effect is served from the journal, incoming calls are
re-delivered, outgoing calls are checked and answered from the journal, and no other service is
contacted. At the end of the journal the service is live, detached: what is done with it after
that (at a prompt, in a test) is not written anywhere.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import uuid
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, Protocol

from .._version import local_time, recorded_hash_seed
from ..compartment import observing
from ..errors import DistdevError, HashSeedError, ReplayDivergenceError, ServiceUnavailableError
from ..journal import (
    BundleFile,
    CallIn,
    Checkpoint,
    Event,
    Header,
    JournalContents,
    Raise,
    ResultIn,
    Return,
    Source,
    Switch,
    TornTail,
    read_journal,
)
from ..membrane import (
    ServiceProxy,
    args_to_wire,
    from_wire,
    make_proxy,
    rebuild_exception,
    service_state,
    with_the_outside,
)
from ..rules import secret_reference
from ..service import CallFailed, Detached, Service, StopReplay
from ._checkpoint import load_snapshot
from ._replayer import LiveTape, Replayer

__all__ = ["replay", "ReplayedService", "SourceDifference", "Transport", "source_differences",
           "code_changed_at"]


@dataclasses.dataclass(frozen=True)
class SourceDifference:
    """A bundle file whose replacement source differs: "changed", "missing" or "added"."""

    path: str
    change: str


def bundle_files(contents: JournalContents) -> dict[str, tuple[str, bytes]]:
    """path -> (sha256, source) for every file the journal carries."""
    files = {f.path: (f.sha256, f.source) for f in contents.header.bundle}
    for event in contents.events:
        if type(event) is Source:
            files[event.file.path] = (event.file.sha256, event.file.source)
        elif type(event) is Checkpoint:
            files.update((f.path, (f.sha256, f.source)) for f in event.sources)
    return files


def _same_code(contents: JournalContents, at: int) -> bool:
    """Whether the checkpoint at ``at`` was taken with the code the journal ends with (no
    upgrade since): only then does loading it equal replaying the records before it."""
    checkpoint: Checkpoint = contents.events[at]  # type: ignore[assignment]
    then = {f.path: f.sha256 for f in contents.header.bundle}
    then.update((f.path, f.sha256) for f in checkpoint.sources)
    return all(then.get(path) == sha for path, (sha, _) in bundle_files(contents).items())


def code_changed_at(contents: JournalContents) -> int:
    """The seq of the last source record that replaced a file the journal already carried
    with other content: where ``distdev upgrade`` gave the service new code (0: never). The
    state digests before it were recorded by the code it replaced."""
    digests = {f.path: f.sha256 for f in contents.header.bundle}
    changed_at = 0
    for event in contents.events:
        if type(event) is Source:
            known = digests.get(event.file.path)
            if known is not None and known != event.file.sha256:
                changed_at = event.seq
            digests[event.file.path] = event.file.sha256
    return changed_at


def source_differences(contents: JournalContents, source: Path) -> list[SourceDifference]:
    """How the files under ``source`` differ from the code the journal carries."""
    diffs = []
    for rel, (digest, _) in bundle_files(contents).items():
        path = source / rel
        if not path.is_file():
            diffs.append(SourceDifference(rel, "missing"))
        elif hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            diffs.append(SourceDifference(rel, "changed"))
    return diffs


def materialize_bundle(contents: JournalContents) -> Path:
    """Write the journal's bundle to a cache folder named by its content; return the folder.
    A replay without ``source`` runs its code from there (a debugger maps breakpoints to it)."""
    files = bundle_files(contents)
    key = hashlib.sha256()
    for rel in sorted(files):
        key.update(rel.encode() + b"\0" + files[rel][0].encode())
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    root = cache / "distdev" / "bundles" / key.hexdigest()[:24]
    for rel, (_, source) in files.items():
        target = root / rel
        if not target.is_file() or target.read_bytes() != source:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
            tmp.write_bytes(source)
            tmp.replace(target)
    return root


class Transport(Protocol):
    """Carries a restored service's calls to the other services once it is live."""

    def send(self, caller: Service, target: str, export: str, args: list[Any],
             kwargs: dict[str, Any], call_seq: int | str | None) -> Any:
        """Send one call; return the result's wire form or raise ``CallFailed``."""
        ...

    def exports(self, target: str) -> Collection[str] | None: ...


class _JournalRouter:
    """Routes the restored service's calls. Outgoing calls are answered by the journal while
    replaying (``Replayer`` never performs them); afterwards they go to the ``transport`` if
    the service was connected, and are refused if it was restored alone. Calls from the
    outside run here, followed by ``after_call`` (a durability barrier, when live)."""

    def __init__(self) -> None:
        self.service: Service | None = None
        self.transport: Transport | None = None
        self.after_call: Callable[[], None] | None = None

    def create_service(self, service_id: str, parent: str | None, entry: str) -> Service:
        raise AssertionError("a replay re-finds its children in the journal; it creates none")

    def create_resource(self, resource_id: str, parent: str, kind: str,
                        options: dict[str, Any]) -> None:
        raise AssertionError("a replay re-finds its resources in the journal; it creates none")

    def exports(self, target: str) -> Collection[str] | None:
        if self.service is not None and target == self.service.id:
            return self.service.exports()
        return self.transport.exports(target) if self.transport is not None else None

    def call(self, holder: Any, target: str, export: str, args: tuple[Any, ...],
             kwargs: dict[str, Any]) -> Any:
        service = self.service
        assert service is not None
        if isinstance(holder, Service):
            args_wire, kwargs_wire = args_to_wire(args, kwargs, target, export)
            return holder.call_out(target, export, args_wire, kwargs_wire,
                                   self._sender(holder, target, export, args_wire, kwargs_wire))
        with with_the_outside():  # the outside imports no service module
            args_wire, kwargs_wire = args_to_wire(args, kwargs, target, export)
        try:
            wire = service.handle_call("", uuid.uuid4().hex, export, args_wire, kwargs_wire)
        except CallFailed as failed:
            raise rebuild_exception(failed.info, target, service) from None
        finally:
            if self.after_call is not None:
                self.after_call()
        return from_wire(wire, service)

    def _sender(self, holder: Service, target: str, export: str, args: list[Any],
                kwargs: dict[str, Any]) -> Callable[[int | str | None], Any]:
        def send(call_seq: int | str | None) -> Any:
            # Looked up when sent: a call that was out when the journal ended is sent once the
            # restored service is connected (``ReplayedService.resume_open_calls``).
            transport = self.transport
            if transport is None:
                raise ServiceUnavailableError(
                    f"{holder.id} was restored alone from its journal, so {target} is not "
                    f"reachable from here; run the application (distdev dev / up) to call it"
                )
            return transport.send(holder, target, export, args, kwargs, call_seq)

        return send


class ReplayedService:
    """A service restored from a journal, live and detached."""

    def __init__(self, service: Service, contents: JournalContents, replayed: int,
                 stopped_inside_call: bool, source_diffs: list[SourceDifference]) -> None:
        self.service = service
        self.id = service.id
        self.journal = contents
        self.events = replayed
        """How many events (after the header) were replayed."""
        self.stopped_inside_call = stopped_inside_call
        self.source_differences = source_diffs
        self.state_note: str | None = None
        """Replayed with other code: where its state first differed from the journal's
        digests (not a divergence: other code may hold other state)."""
        self.top_level = 1
        """The seq of the first record after the top level's (a checkpoint's ``top_level``)."""
        self.checkpoint: int | None = None
        """The seq of the checkpoint it was restored from (None: replayed whole)."""
        self._replayer: Replayer | None = None

    @property
    def torn(self) -> TornTail | None:
        return self.journal.torn

    @property
    def namespace(self) -> dict[str, Any]:
        """The restored module's globals."""
        return self.service.module.__dict__

    def state(self) -> dict[str, Any]:
        """The JSON-ready state (the same mapping ``distdev replay --json`` prints)."""
        return service_state(self.namespace)

    def connect(self, transport: Transport, after_call: Callable[[], None] | None = None) -> None:
        """Let the live service reach the other services through ``transport``; run
        ``after_call`` after each call from the outside (``proxy()``)."""
        router = self.service.router
        assert isinstance(router, _JournalRouter)
        router.transport = transport
        router.after_call = after_call

    def resume_open_calls(self, tape: LiveTape,
                          ended: Callable[[CallIn, bool, Any], None]) -> None:
        """Let the calls a ``resume_open`` replay left waiting at the journal's end go on
        live, recording to ``tape`` (the service's own, by now) under the service's gate;
        ``ended`` is told each one's outcome. Connect first: a call that was out when the
        journal ended is sent again."""
        if self._replayer is not None:
            self._replayer.resume(tape, self.service.gate, ended)

    def proxy(self) -> ServiceProxy:
        """A proxy for calling the restored service; nothing it does is journaled."""
        return make_proxy(self.id, self.service.router, None)


class VerifyingCopy:
    """What verifies ``restored``'s checkpoints: a copy of the service — its top level
    replayed from the journal's own records, as a restore does — into which each snapshot is
    loaded; called with a snapshot, it returns the copy's state digest.

    The copy is made at the first checkpoint and kept for the next ones (replaying the top
    level again at every checkpoint was most of what one cost). A kept copy digests as a fresh
    one would: a snapshot holds every global that is state, and loading it replaces them all
    and deletes those it lacks, the way a restore loads it into a fresh copy. The copy is made
    again when the live service has loaded files it lacks (a module imported lazily), and
    after a load that failed (a half-loaded copy is not trusted). ``close`` drops it."""

    def __init__(self, restored: ReplayedService) -> None:
        self._restored = restored
        contents = restored.journal
        self._prefix = contents.events[:restored.top_level]
        self._in_header = {f.path: f.sha256 for f in contents.header.bundle}
        self._copy: ReplayedService | None = None
        self._loaded: frozenset[str] = frozenset()

    def __call__(self, snapshot: bytes) -> dict[str, list[str]]:
        bundle = self._restored.service.compartment.bundle
        if self._copy is None or self._loaded != bundle.keys():
            self.close()
            self._copy = self._fresh(bundle)
            self._loaded = frozenset(bundle)
        copy = self._copy
        try:
            with observing():
                load_snapshot(copy.service, snapshot)
            return copy.service.state_digest()
        except BaseException:
            self.close()
            raise

    def _fresh(self, bundle: dict[str, bytes]) -> ReplayedService:
        # The service's files where its header does not have them as they are: those it has
        # loaded since (lazily imported modules, data files), and its new code after an
        # upgrade — whether or not the records read at its restore hold them.
        # Numbered after the top level, as in a journal: a file they replace is new code from
        # there on (``code_changed_at``), and the top level's digests were the old code's.
        loaded: list[Event] = []
        for rel, data in bundle.items():
            digest = hashlib.sha256(data).hexdigest()
            if self._in_header.get(rel) != digest:
                seq = len(self._prefix) + len(loaded)
                loaded.append(Source(seq, BundleFile(rel, digest, data)))
        contents = self._restored.journal
        top = self._restored.top_level
        return replay(JournalContents(contents.path, contents.header, [*self._prefix, *loaded],
                                      contents.offsets[:top], None, contents.size))

    def close(self) -> None:
        """Drop the copy (unloading its compartment)."""
        copy, self._copy = self._copy, None
        if copy is not None:
            copy.service.compartment.unload()


def check_hash_seed(header: Header) -> None:
    here = recorded_hash_seed()
    if header.hash_seed is not None and header.hash_seed != here:
        raise HashSeedError(
            f"{header.service}'s journal was recorded under PYTHONHASHSEED={header.hash_seed}, "
            f"but this process runs under {here or 'a random seed'}; set order would differ. "
            f"Run under PYTHONHASHSEED={header.hash_seed} (`distdev replay` does this by itself)."
        )


def replay(
    journal: str | os.PathLike[str] | JournalContents,
    *,
    until: int | None = None,
    source: str | os.PathLike[str] | None = None,
    before_start: Callable[[list[SourceDifference]], None] | None = None,
    before_event: Callable[[Service, Event], None] | None = None,
    from_checkpoint: bool | None = True,
    checkpoint_before: int | None = None,
    resume_open: bool = False,
    secrets: Callable[[str, int], str] | None = None,
) -> ReplayedService:
    """Restore a service from its journal and return it live.

    A journal with checkpoints is restored from the last one (before ``until``): its top
    level replayed, the checkpoint's snapshot loaded, and only the records after it replayed
    (``events`` counts those); ``checkpoint_before`` takes the last one before that seq instead
    (a debugger stopping there). ``from_checkpoint=False`` replays every record, checking each
    checkpoint's state on the way (a compacted journal has no records to do that with); None
    starts from a checkpoint only when it must (a compacted journal).

    ``until`` stops after the event with that sequence number. ``source`` replays other code
    (a folder laid out like the application); ``before_start`` is told how it differs from the
    journal's code before replay begins. ``before_event`` is called with the service and each event
    (output and source records aside) just before it is delivered, on the service's thread with the
    code waiting for it on the stack: a debugger stops there, and raising ``StopReplay`` in it
    ends the replay where it stands. ``resume_open``: calls still open at the journal's end
    wait there, to go on live once the service is (``ReplayedService.resume_open_calls``),
    instead of unwinding. Raises ``ReplayDivergenceError`` if the code does not do what the
    journal says.

    ``secrets`` reads a secret's value, (resource id, version) -> value: a journal in which
    the service revealed one holds only a reference, so it replays only with the store
    (``distdev replay --secrets DIR``); without it, the replay is refused before it starts.
    """
    contents = journal if isinstance(journal, JournalContents) else read_journal(journal)
    header = contents.header
    check_hash_seed(header)
    if secrets is None:
        _refuse_without_secrets(contents)
    diffs: list[SourceDifference] = []
    if source is not None:
        root = Path(source).resolve()
        diffs = source_differences(contents, root)
    else:
        root = materialize_bundle(contents)
    if before_start is not None:
        before_start(diffs)
    router = _JournalRouter()
    service = Service(header.service, None, root, header.entry, router, app_root=header.app_root,
                      coverage=header.version, build_services=header.services)
    router.service = service
    service.secrets = secrets
    checkpoint = _checkpoint_to_use(contents, until, from_checkpoint, checkpoint_before)
    if checkpoint is not None and diffs and not _compacted(contents):
        checkpoint = None  # other code: it replays the history, not a snapshot of another's
    end = None if until is None else until + 1
    tape = Replayer(service, contents.events, 1, end,
                    before_event if checkpoint is None else None, resume_open=resume_open)
    if checkpoint is not None:
        tape.until = contents.events[checkpoint].top_level  # type: ignore[union-attr]
    tape.same_code = not diffs
    tape.code_since = code_changed_at(contents)
    service.tape = tape
    service.phase = "replay"
    with local_time(header.tz):
        top_level = _run(service, tape, checkpoint, end, before_event)
    service.tape = Detached()
    service.phase = "runtime"
    # What the journal's digests add up to: if the service journals on, its next digest says
    # what changed since them (a global gone since is named gone), or all of it after new code.
    service.digest_recorded(tape.digested_state)
    start = 1 if checkpoint is None else checkpoint + 1
    restored = ReplayedService(service, contents, tape.pos - start, tape.stopped_inside_call,
                               diffs)
    restored.state_note = tape.state_note
    restored.top_level = top_level
    restored.checkpoint = checkpoint
    restored._replayer = tape
    return restored


def _refuse_without_secrets(contents: JournalContents) -> None:
    for event in contents.events:
        if type(event) is ResultIn:
            revealed = secret_reference(event.value)
            if revealed is not None:
                raise DistdevError(
                    f"{contents.header.service} revealed secret {revealed[0]} (journal record "
                    f"{event.seq}), and a secret's value is in no journal: replay it with "
                    "`distdev replay --secrets DIR`, DIR being the secret store of the "
                    "deployment that recorded it (STATE/secrets) or of its build (OUT/secrets)")


def _checkpoint_to_use(contents: JournalContents, until: int | None,
                       from_checkpoint: bool | None, before: int | None) -> int | None:
    """The seq of the checkpoint a replay starts from (the last one at or before ``until``,
    and before ``before``), or None to replay every record. A compacted journal starts at a
    checkpoint: it has no records to replay whole, or to stop before it."""
    events = contents.events
    first = last = None
    depth = 0  # calls open: a checkpoint where the records say one is open is not used
    for index, event in enumerate(events):
        kind = type(event)
        if kind is CallIn:
            depth += 1
        elif kind is Return or kind is Raise:
            depth -= 1
        elif kind is Checkpoint:
            first = index if first is None else first
            if (until is None or index <= until) and (before is None or index < before) \
                    and depth == 0:
                last = index
    if first is None:
        return None
    compacted = events[first].numbered != first  # type: ignore[union-attr]
    if from_checkpoint is None:
        from_checkpoint = compacted
    if from_checkpoint and last is not None and not _same_code(contents, last):
        # The code changed since (an upgrade): the history replays with the new code, where
        # the journal still has it (read whole: records read from the checkpoint on do not).
        if contents.skipped:
            raise DistdevError(f"{contents.path}'s last checkpoint was taken with other code "
                               "than the journal's own now: its history replays whole")
        if not compacted:
            return None
    if compacted and (last is None or not from_checkpoint):
        stop = "stop before" if last is None else "replay every record up to"
        raise DistdevError(
            f"{contents.path} was compacted: it starts at its checkpoint (record {first}), so "
            f"a replay cannot {stop} it; the journal before compaction was kept beside it "
            f"({contents.path.name}.before-compact-*): replay that one")
    return last if from_checkpoint else None


def _same_code_here(tape: Replayer, at: int) -> bool:
    checkpoint: Checkpoint = tape.events[at]  # type: ignore[assignment]
    header = tape.events[0]
    assert isinstance(header, Header)
    then = {f.path: f.sha256 for f in header.bundle}
    then.update((f.path, f.sha256) for f in checkpoint.sources)
    now = dict(then)
    for event in tape.events[at:]:
        if type(event) is Source:
            now[event.file.path] = event.file.sha256
    return now == then


def _compacted(contents: JournalContents) -> bool:
    first = next((e for e in contents.events if type(e) is Checkpoint), None)
    return first is not None and first.numbered != first.seq


def _run(service: Service, tape: Replayer, checkpoint: int | None, end: int | None,
         before_event: Callable[[Service, Event], None] | None) -> int:
    """Replay the top level, then (from a checkpoint: after loading it) the calls; return the
    seq of the first record after the top level's."""
    top_level = 1
    try:
        try:
            service.run_top_level("replay")
            top_level = tape.pos
        except (StopReplay, ReplayDivergenceError):
            raise
        except Exception as exc:
            if tape.divergence is None:
                tape.diverge(None, f"raised {type(exc).__name__}: {exc} in its top level",
                             _where(exc, service))
        if checkpoint is not None:
            top_level = _load_checkpoint(service, tape, checkpoint, end)
            tape.before_event = before_event
        while not tape.at_end:
            event: Event = tape._next()
            if type(event) is CallIn:
                tape.deliver(event)
            elif type(event) is Switch:
                tape.switch(event)
            else:
                tape.diverge(event, "had finished and was waiting for calls")
        if tape.strands is not None and tape.strands.threaded_open() and not tape.resume_open:
            tape.stopped_inside_call = tape.until == len(tape.events)
    except StopReplay:
        pass
    finally:
        tape.finish()
    if tape.divergence is not None:
        raise tape.divergence
    return top_level


def _load_checkpoint(service: Service, tape: Replayer, at: int, end: int | None) -> int:
    """Load the checkpoint at ``at`` over the top level's state and move the tape past it;
    its state must then have its digest, or the replay diverges there."""
    checkpoint: Checkpoint = tape.events[at]  # type: ignore[assignment]
    try:
        with observing():  # code a value's __setstate__ runs is not the service acting
            load_snapshot(service, checkpoint.snapshot,
                          same_code=tape.same_code and _same_code_here(tape, at))
    except Exception as exc:  # other code than the journal's: a class or global it lacks
        tape.diverge(checkpoint, f"could not load the checkpoint's state: {type(exc).__name__}: "
                     f"{exc}", service.entry)
    service.patches.update(checkpoint.patches)
    tape.numbered = checkpoint.numbered - checkpoint.seq
    tape.pos = at
    tape.until = len(tape.events) if end is None else min(end, len(tape.events))
    tape._skip_output()  # checks the state against the checkpoint's digest
    return checkpoint.top_level


def _where(exc: BaseException, service: Service) -> str:
    tb = exc.__traceback__
    location = f"{service.entry}"
    while tb is not None:
        if tb.tb_frame.f_code.co_filename in service.compartment.files:
            location = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"
        tb = tb.tb_next
    return location
