"""A service brought back to life from its state journal, and served: shared by every engine,
so what a restart restores, and how a service stops, do not depend on where it runs."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .._version import pin_zone
from ..errors import DistdevError
from ..journal import CallIn, Checkpoint, JournalWriter, read_journal
from ..replayer import (
    Checkpointer,
    CheckpointPolicy,
    ReplayedService,
    Transport,
    VerifyingCopy,
    replay,
)
from ..service import Recorder, Service
from ._client import Network
from ._durable import GroupCommit
from ._ingress import Ingress
from ._restore import DedupTable, restorable_journal
from ._server import ServiceServer

__all__ = ["LiveService", "go_live", "ServedService", "checkpoint_restored"]

DEFAULT_POLICY = CheckpointPolicy()


@dataclasses.dataclass
class LiveService:
    """A service restored from its state journal that journals again, durably."""

    restored: ReplayedService
    writer: JournalWriter
    commit: GroupCommit
    dedup: DedupTable
    checkpoints: Checkpointer | None = None
    closed: bool = False
    stopping: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    """Held by ``close`` and by a checkpoint taken after a reply: a server's connection
    threads outlive its shutdown, and the journal must not close under one's checkpoint."""

    @property
    def service(self) -> Service:
        return self.restored.service

    def after_reply(self) -> None:
        """A server's answer to a call has left: take the checkpoint the call found due, if
        any and if no call has come in since, and make it durable (the next call's sync
        would otherwise write it)."""
        if not self.service.checkpoint_waits:
            return  # every reply asks: the common answer costs no lock
        with self.stopping:
            if not self.closed and self.service.after_reply():
                self.commit.wait_durable()

    def close(self) -> None:
        """The service stopped: checkpoint it if it journaled anything since its last
        checkpoint (the next start restores from here, replaying nothing), journal its last
        state (whatever the digest schedule skipped), make the journal durable and close it,
        and drop what verifying its checkpoints keeps."""
        with self.stopping:
            self.closed = True
            self._close()

    def _close(self) -> None:
        service, checkpoints = self.service, self.checkpoints
        if (checkpoints is not None and checkpoints.records_since
                and service.tape.idle() and not service.gate.held()):
            checkpoints.take()
        service.record_digest()
        self.writer.sync()
        self.writer.close()
        if self.checkpoints is not None:
            self.checkpoints.close()


def go_live(journal: Path, transport: Transport, *, durable: bool, app_files: Path | None,
            log: Callable[[str], None],
            secrets: Callable[[str, int], str] | None = None,
            checkpoints: CheckpointPolicy | None = DEFAULT_POLICY) -> LiveService:
    """Restore a service from its state journal (cutting a torn tail and an unfinished call
    aside, or resuming calls it must; from its last checkpoint, if it has one), then let it
    journal again and reach the others through ``transport``, reading the application's files
    from ``app_files`` (the build's copy of them), and the values of the secrets it reveals
    through ``secrets``. It writes checkpoints as ``checkpoints`` says (None: none)."""
    restore = restorable_journal(journal, log)
    if restore.resume_open and restore.contents.skipped:
        # Calls open at the end go on live, and the journal names them by their seqs in the
        # file: read it whole, numbered as the file is (records read from the checkpoint on
        # are numbered as a compacted journal would be).
        restore = restorable_journal(journal, log, whole=True)
    contents = restore.contents
    pin_zone(contents.header.tz)  # this process runs the service: in its journal's zone
    try:
        restored = replay(contents, resume_open=restore.resume_open, secrets=secrets)
    except DistdevError as exc:
        if not contents.skipped:
            raise
        # What the records the fast read left out hold (a file the code loaded lazily) was
        # needed after all: the whole journal has it.
        log(f"restoring from the checkpoint alone failed ({exc}); reading the whole journal")
        restore = restorable_journal(journal, log, whole=True)
        contents = restore.contents
        restored = replay(contents, resume_open=restore.resume_open, secrets=secrets)
    records = len(contents.events) + contents.skipped
    if restored.checkpoint is None:
        log(f"restored from {records} journal records")
    else:
        log(f"restored from the checkpoint at record {restored.checkpoint + contents.skipped} "
            f"and the {restored.events} records after it ({records} in the journal)")
    writer = JournalWriter.append_to(journal, contents)
    commit = GroupCommit(writer, enabled=durable)
    # The outcomes as the journal holds them, for checkpoints; the served table (``dedup``)
    # publishes one only once it is durable.
    journaled = DedupTable.from_journal(contents)
    recorder = Recorder(writer, _numbered(restored, contents.skipped), journaled.put)
    restored.service.tape = recorder
    restored.service.phase = "runtime"
    if app_files is not None and app_files.is_dir():
        restored.service.files.serve_from(app_files)
    restored.connect(transport, after_call=commit.wait_durable)
    dedup = DedupTable.from_journal(contents)  # the open calls are running: re-sends wait

    def ended(call: CallIn, ok: bool, outcome: Any) -> None:
        journaled.put(call.caller, call.caller_seq, call.args, call.kwargs, ok, outcome)
        commit.wait_durable()  # its outcome goes to a re-sent call: a promise it happened
        dedup.put(call.caller, call.caller_seq, call.args, call.kwargs, ok, outcome)
        log(f"a call of {call.export} open when the service stopped went on to its end "
            f"({'returned' if ok else 'raised'})")

    restored.resume_open_calls(recorder, ended)
    live = LiveService(restored, writer, commit, dedup)
    if checkpoints is not None:
        last = None if restored.checkpoint is None else contents.events[restored.checkpoint]
        assert last is None or type(last) is Checkpoint
        live.checkpoints = Checkpointer(restored.service, contents.header, restored.top_level,
                                        VerifyingCopy(restored), journaled.kept, log,
                                        checkpoints, restored_from=last)
        restored.service.checkpoints = live.checkpoints
    return live


def checkpoint_restored(restored: ReplayedService, journal: Path,
                        log: Callable[[str], None]) -> bool:
    """Write a checkpoint of ``restored`` at the end of ``journal``: the service as it stands
    there (replayed to the journal's end; what the journal holds after that is source records
    only), verified as a live service's checkpoints are. Return whether one was written: a
    state that cannot be snapshotted writes none, and says so through ``log``."""
    contents = read_journal(journal)
    writer = JournalWriter.append_to(journal, contents)
    service = restored.service
    service.tape = Recorder(writer, _numbered(restored, restored.journal.skipped))
    checkpoints = Checkpointer(service, contents.header, restored.top_level,
                               VerifyingCopy(restored), DedupTable.from_journal(contents).kept,
                               log, CheckpointPolicy(share=None))
    try:
        return checkpoints.take()
    finally:
        writer.sync()
        writer.close()
        checkpoints.close()


def _numbered(restored: ReplayedService, skipped: int) -> int:
    """How many records of the service's history its journal file no longer holds (it was
    compacted): its last checkpoint's first number beside its seq in the file."""
    for event in reversed(restored.journal.events):
        if type(event) is Checkpoint:
            return event.numbered - (event.seq + skipped)
    return 0


class ServedService:
    """A live service answering calls on ``address`` and, for a root with an ingress, HTTP on
    the first of ``ingress_ports`` that is free; ``stop`` is the one way it ends. The ingress
    calls the service in this process, so it needs no key."""

    def __init__(self, live: LiveService, network: Network, address: str,
                 log: Callable[[str], None], *, ingress_ports: Sequence[int] = (),
                 ingress_host: str = "127.0.0.1") -> None:
        self.live = live
        self.network = network
        self.log = log
        # One key file for both ends: the keys it calls with are the network's, and the
        # keys its callers must prove themselves with are in the same file (``_keys``).
        self.server = ServiceServer(live.service, address, network.keys, live.commit,
                                    live.dedup, log, after_reply=live.after_reply)
        self.thread = threading.Thread(target=self.server.serve_forever, name="distdev-server",
                                       daemon=True)
        self.ingress = self._ingress(list(ingress_ports), ingress_host) if ingress_ports else None
        self.thread.start()
        if self.ingress is not None:
            self.ingress.start()
            log(f"serving the ingress on {self.ingress.url}")

    def _ingress(self, ports: list[int], host: str) -> Ingress:
        proxy, exports = self.live.restored.proxy(), self.live.service.exports()
        for port in ports[:-1]:
            try:
                return Ingress(proxy, exports, port, host, after_reply=self.live.after_reply)
            except DistdevError:
                continue  # taken: the next choice
        return Ingress(proxy, exports, ports[-1], host, after_reply=self.live.after_reply)

    @property
    def port(self) -> int:
        """The port the service's socket listens on (for a TCP address of port 0)."""
        return int(self.server.server.server_address[1])

    def stop(self) -> None:
        """Stop serving, then make the journal durable and close it."""
        self.server.shutdown()
        if self.ingress is not None:
            self.ingress.stop()
        self.network.close()
        self.live.close()
