"""Compaction: a journal rewritten to start at its last checkpoint, the old one kept aside.

A restore needs the header, the top level's records (they define the module's functions and
classes again), the last checkpoint and the records after it; everything between the top level
and that checkpoint is history the checkpoint already holds. The compacted journal keeps
exactly those, in order, and the application files loaded lazily in between (``source``
records: its code). Records after the top level are numbered afresh (a journal's seqs are its
record indexes), so a ``switch`` names its call by the new number; the checkpoint keeps the
number it had when first written (``Checkpoint.numbered``), from which the service numbers its
later calls out as it would have.

The old journal is never deleted: it stays beside the new one, hard-linked before the new one
is moved into place, so that a crash at any point leaves a complete journal at the path.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

import msgspec

from ..errors import DistdevError, JournalError
from ._codec import encode_record, event_tree
from ._events import Checkpoint, Event, Source, Switch
from ._reader import JournalContents, read_journal

__all__ = ["compact_journal", "compacted_events", "CompactReport"]


@dataclasses.dataclass(frozen=True)
class CompactReport:
    """What compaction did: records and bytes before and after, where the old journal is."""

    path: Path
    kept_aside: Path
    events_before: int
    events_after: int
    bytes_before: int
    bytes_after: int
    checkpoint: int
    """The seq of the checkpoint the compacted journal starts at, in the old journal."""


def compacted_events(contents: JournalContents) -> tuple[list[Event], int]:
    """The records of the compacted journal, and the old seq of its checkpoint."""
    events = contents.events
    at = next((i for i in range(len(events) - 1, 0, -1) if type(events[i]) is Checkpoint), None)
    if at is None:
        raise DistdevError(
            f"{contents.path} has no checkpoint to start a compacted journal at. A live "
            "service writes one every so many records (docs/journal-format.md, Checkpoints); "
            "run it longer, or check its log for the global that keeps it from taking one")
    checkpoint: Checkpoint = events[at]  # type: ignore[assignment]
    top = checkpoint.top_level
    kept: list[Event] = list(events[:top])
    kept += [e for e in events[top:at] if type(e) is Source]
    shift = at - len(kept)  # the checkpoint and every record after it move down by this
    for event in events[at:]:
        changes: dict[str, int] = {"seq": event.seq - shift}
        if type(event) is Switch and event.call >= at:
            changes["call"] = event.call - shift
        kept.append(event if not shift else _renumbered(event, changes))
    for seq, event in enumerate(kept):
        if event.seq != seq:
            kept[seq] = _renumbered(event, {"seq": seq})
    return kept, at


def _renumbered(event: Event, changes: dict[str, int]) -> Event:
    return msgspec.structs.replace(event, **changes)


def compact_journal(path: str | os.PathLike[str],
                    verify: Callable[[Path], None] | None = None) -> CompactReport:
    """Rewrite the journal at ``path`` to start at its last checkpoint; keep the old one
    beside it (``<name>.before-compact-<seq>``). ``verify`` is given the compacted journal
    before it takes the old one's place, and raises to leave everything as it was (the command
    line replays it). Compact the journal of a stopped service: one that a live service
    appends to would lose the records written meanwhile."""
    p = Path(path)
    contents = read_journal(p)
    if contents.torn is not None:
        raise JournalError(
            f"{p} ends in a torn record ({contents.torn.reason}); run `distdev journal repair "
            f"{p}` before compacting it")
    kept, at = compacted_events(contents)
    tmp = p.with_name(f".{p.name}.compacting")
    with open(tmp, "wb") as f:
        for event in kept:
            f.write(encode_record(event_tree(event)))
        f.flush()
        os.fsync(f.fileno())
    if verify is not None:
        try:
            verify(tmp)
        except BaseException:
            tmp.unlink()
            raise
    aside = _aside_name(p, at)
    os.link(p, aside)  # the old journal, whole, under its new name first
    os.replace(tmp, p)
    _sync_folder(p.parent)
    return CompactReport(p, aside, len(contents.events), len(kept), contents.size,
                         p.stat().st_size, at)


def _aside_name(p: Path, at: int) -> Path:
    aside = p.with_name(f"{p.name}.before-compact-{at}")
    serial = 1
    while aside.exists():  # never overwrite a journal an earlier compaction kept
        serial += 1
        aside = p.with_name(f"{p.name}.before-compact-{at}.{serial}")
    return aside


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
