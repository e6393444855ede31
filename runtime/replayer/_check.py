"""The compatibility gate: does this code still replay these journals?

A journal copied from a running deployment (or kept as a fixture) is replayed against the code
about to be deployed. Each is compatible, or diverges at a first event, which is reported with
both sides: what the new code did and where, and where the journal's own code was when it wrote
that event (found by replaying the journal with its own code up to it).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

from ..errors import DistdevError, JournalError, ReplayDivergenceError
from ..journal import Event, JournalContents, Raise, Return, read_journal
from ..service import Service, StopReplay
from ._replay import ReplayedService, replay
from ._replayer import Replayer

__all__ = ["Verdict", "check_journal", "check_and_restore", "journals_in"]


@dataclasses.dataclass
class Verdict:
    """What checking one journal found."""

    journal: str
    service: str | None
    events: int
    result: Literal["compatible", "diverged", "unreadable"]
    message: str = ""
    """Why it diverged or could not be read; for a compatible journal, where the code's state
    first differs from the journal's (other code may hold other state), if it does."""
    seq: int | None = None
    expected: str | None = None
    """What the journal holds at the first divergence."""
    actual: str | None = None
    """What the code checked did instead."""
    location: str | None = None
    """Where the code checked did it (file:line)."""
    journal_location: str | None = None
    """Where the journal's own code was when it wrote that event (file:line)."""

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def journals_in(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The journals named: files as given; in a folder, every ``*.cbor`` file beneath it (a
    copied state folder holds ``<service id>/journal.cbor``), in path order."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*.cbor") if p.is_file()))
        else:
            found.append(path)
    return found


def check_journal(journal: str | os.PathLike[str],
                  source: str | os.PathLike[str] | None = None,
                  secrets: Callable[[str, int], str] | None = None) -> Verdict:
    """Replay ``journal`` against ``source`` (an application folder; the journal's own code
    when None) and say whether it is compatible; ``secrets`` reads the secrets it revealed
    (``replay``)."""
    verdict, restored = check_and_restore(journal, source, secrets)
    if restored is not None:
        restored.service.compartment.unload()
    return verdict


def check_and_restore(journal: str | os.PathLike[str],
                      source: str | os.PathLike[str] | None = None,
                      secrets: Callable[[str, int], str] | None = None
                      ) -> tuple[Verdict, ReplayedService | None]:
    """``check_journal``, and for a compatible journal the service as the code checked
    restored it: its state at the journal's end (the caller unloads it)."""
    name = str(journal)
    try:
        contents = read_journal(journal)
    except (JournalError, OSError) as exc:
        return Verdict(name, None, 0, "unreadable", str(exc)), None
    service, events = contents.header.service, len(contents.events)
    try:
        # every record of its history, not only those after its last checkpoint (a compacted
        # journal has no others)
        restored = replay(contents, source=source, from_checkpoint=None,
                          secrets=secrets)
    except ReplayDivergenceError as exc:
        return Verdict(name, service, events, "diverged", str(exc), exc.seq, exc.expected,
                       exc.actual, exc.location, _journal_code_at(contents, exc.seq)), None
    except DistdevError as exc:
        return Verdict(name, service, events, "unreadable", str(exc)), None
    return Verdict(name, service, events, "compatible", restored.state_note or ""), restored


def _journal_code_at(contents: JournalContents, seq: int) -> str | None:
    """Where the journal's own code stands just before event ``seq``: replayed up to it with
    the journal's code, stopped there with its frames live."""
    where: list[str] = []

    def before_event(service: Service, event: Event) -> None:
        if event.seq == seq:
            tape = service.tape
            # A call's outcome is awaited once its frames are gone: its export's def says where.
            outcome = (tape.outcome_location() if type(event) in (Return, Raise)
                       and isinstance(tape, Replayer) else None)
            where.append(outcome or service.code_location())
            raise StopReplay()

    try:
        replay(contents, until=seq, before_event=before_event)
    except DistdevError:
        return None  # the journal's own code does not replay either: nothing to point at
    return where[0] if where else None
