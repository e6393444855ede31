"""The debuggee side of a journal replay: stops at journal events, and runs the replay again
when the debugger travels back.

A replay is deterministic, so going back in time is running it again from the start, in this
process, up to an earlier point. The debug adapter asks for that with the ``REWIND`` question
(``_evaluate``) on a stopped thread, then continues: the current run is abandoned at its next
journal event (``StopReplay``), and a new run starts from the top of the journal. Each run is
numbered, and the ``JOURNAL_POSITION`` answer tells the adapter which run a stop belongs to, so
it can hide the stops of an abandoned run and the breakpoint hits a new run passes on its way.

Where a run stops:

- at a *boundary*, just before a journal event is delivered (``stopAtEvent``, or the target of
  a step back), with the service's code that is waiting for the event live on the stack;
- at the *end* of the journal, with the restored service's globals.

Both stops happen in a small real file that says where the replay stands (debugpy shows it as
the current location); its frame's globals are the service's, so watches evaluate against them.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from distdev.journal import Checkpoint, Event, JournalContents, describe, is_boundary
from distdev.tools import ReplayedService, Service, StopReplay, in_effect, replay

from ._evaluate import JOURNAL_POSITION, REWIND
from ._time_travel import Position

__all__ = ["ReplayLoop", "start"]

Where = Literal["boundary", "end"]


@dataclass
class Rewind:
    """A request to run the replay again from the start; ``before`` is the event to stop
    before in the new run (None: stop only where the debugger stops it)."""

    before: int | None
    from_checkpoint: bool = False
    """The run may start from the journal's last checkpoint before ``before`` (a step back)."""


class ReplayLoop:
    """Runs one service's journal under the debugger, as many times as the debugger asks."""

    def __init__(self, contents: JournalContents, source: str | None,
                 stop_before: int | None) -> None:
        self.contents = contents
        self.source = source
        self.service = contents.header.service
        self.run = 0
        self.target = stop_before
        self.delivered = 0
        """The sequence number of the last event delivered in this run (0: none yet)."""
        self.stopped_at: Where | None = None
        self.next_event: int | None = None
        """While stopped at a boundary: the event about to be delivered."""
        self.pending: Rewind | None = None
        self.from_checkpoint = False
        self.checkpoint: int | None = None
        """The checkpoint the current run started from (None: the journal's start)."""
        self._untraced = False

    # -- asked by the debug adapter, on a stopped thread ------------------------------------

    def position(self) -> Position:
        return Position(self.service, self.delivered, self.run, self.stopped_at, self.next_event,
                        self.checkpoint)

    def rewind(self, before: int | None, from_checkpoint: bool = False) -> int:
        """Abandon this run when the program continues, and run again from the start (or, if
        ``from_checkpoint``, from the last checkpoint before ``before``)."""
        self.pending = Rewind(before, from_checkpoint)
        return self.run + 1

    # -- running ------------------------------------------------------------------------------

    def serve(self) -> ReplayedService:
        """Replay until the debugger lets the replay end at the end of the journal."""
        while True:
            self.run += 1
            self.delivered = 0
            self.checkpoint = self._checkpoint_to_start_from()
            if self.checkpoint is not None:
                print(f"distdev: {self.service} run {self.run} starts from the checkpoint at "
                      f"record {self.checkpoint}", flush=True)
                self.delivered = self._delivered_before(self.checkpoint)
            # A step back passes every stop on its way to the event before: the run gets
            # there unseen by the debugger, whose tracing of every frame is most of a replay's
            # time, and is seen again from its stop on (``_before_event``).
            self._trace(not (self.from_checkpoint and self.target is not None))
            try:
                restored = replay(self.contents, source=self.source,
                                  before_event=self._before_event,
                                  from_checkpoint=None if self.checkpoint is None else True,
                                  checkpoint_before=self.target)
            finally:
                self._trace(True)
            if self._take_rewind():
                continue
            events = restored.events
            print(f"distdev: {self.service} replayed {events} events; stopped at the end of "
                  f"its journal (run {self.run})", flush=True)
            self._stop("end", None, restored.namespace)
            if self._take_rewind():
                continue
            return restored

    def _take_rewind(self) -> bool:
        pending, self.pending = self.pending, None
        if pending is not None:
            self.target = pending.before
            self.from_checkpoint = pending.from_checkpoint and pending.before is not None
        return pending is not None

    def _delivered_before(self, seq: int) -> int:
        """The last event delivered before record ``seq``, had the run started at the start."""
        events = self.contents.events
        return next((e.seq for e in reversed(events[:seq]) if is_boundary(e)), 0)

    def _checkpoint_to_start_from(self) -> int | None:
        """The last checkpoint before the target, if this run may start from one (otherwise
        the replay starts from the journal's start, or where a compacted journal must)."""
        if not self.from_checkpoint:
            return None
        found = [e.seq for e in self.contents.events
                 if type(e) is Checkpoint and self.target is not None and e.seq < self.target]
        return found[-1] if found else None

    def _before_event(self, service: Service, event: Event) -> None:
        if self.pending is not None:
            raise StopReplay()  # the debugger travels back: abandon this run here
        if self.target is not None and event.seq >= self.target:
            self.target = None
            self._trace(True)
            print(f"distdev: {self.service} stopped before event {event.seq} "
                  f"(run {self.run})", flush=True)
            self._stop("boundary", event, service.module.__dict__)
            if self.pending is not None:
                raise StopReplay()
        self.delivered = int(event.seq)

    def _trace(self, on: bool) -> None:
        """Let the debugger trace this thread, or not (a run on its way to a step back's
        target)."""
        if self._untraced != on:
            return
        try:
            import debugpy
        except ImportError:
            return
        debugpy.trace_this_thread(on)
        self._untraced = not on

    def _stop(self, where: Where, pending: Event | None, namespace: dict[str, Any]) -> None:
        """Stop the debugger in a frame that says where the replay stands; its globals are the
        service's, so its state is there to inspect and to evaluate against."""
        try:
            import debugpy
        except ImportError:
            return
        if pending is not None:
            name = f"before event {pending.seq}"
            said = (f"# distdev replay of {self.service}: stopped before event {pending.seq} "
                    f"is delivered:\n#   {describe(pending)}\n"
                    "# The code waiting for it is below this frame in the call stack.\n")
        else:
            name = "end of journal"
            said = (f"# distdev replay of {self.service}: the journal ends here "
                    f"({self.delivered} events delivered).\n")
        text = (said + "# Globals are the service's state; expressions evaluate against them.\n"
                "# Continue to go on; Step Back and Reverse Continue travel back.\n"
                "_stop()\n"
                "pass  # the replay stands here\n")
        path = _marker_file(self.service, f"before_event_{pending.seq}.py" if pending is not None
                            else "end_of_journal.py", text)
        code = compile(text, str(path), "exec").replace(co_name=name)
        self.stopped_at = where
        self.next_event = int(pending.seq) if pending is not None else None
        try:
            # debugpy stops at the next line of the frame that called breakpoint().
            exec(code, namespace, {"_stop": debugpy.breakpoint})
        finally:
            self.stopped_at = self.next_event = None


def _marker_file(service: str, name: str, text: str) -> Path:
    """Write the stop's file: distdev's own IO, not the service's (whose writes are refused)."""
    with in_effect():
        folder = Path(tempfile.gettempdir()) / "distdev-dap" / service.replace("/", "__")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
    return path


def start(contents: JournalContents, source: str | None,
          stop_before: int | None) -> ReplayedService:
    """Replay one service's journal under the debugger, answering the relay's questions."""
    loop = ReplayLoop(contents, source, stop_before)
    JOURNAL_POSITION.answered_by(loop.position)
    REWIND.answered_by(loop.rewind)
    return loop.serve()
