"""Checking and repairing a journal: cut a torn tail (or, forced, corruption) aside into a side
file. Nothing is ever deleted."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from ..errors import JournalCorruptError
from ._reader import JournalContents, parse_journal, read_bytes, read_journal

__all__ = ["check_journal", "repair_journal", "RepairReport", "cut_journal"]


def check_journal(path: str | os.PathLike[str]) -> JournalContents:
    """``read_journal``, for the ``journal check`` command: raises on corruption."""
    return read_journal(path)


@dataclasses.dataclass(frozen=True)
class RepairReport:
    path: Path
    kept_events: int
    cut_bytes: int
    side_file: Path | None


def repair_journal(path: str | os.PathLike[str], *, force: bool = False) -> RepairReport:
    """Cut a journal back to its last good record, moving the bytes cut into a side file.

    A torn tail is always safe to cut. Corruption in the middle is cut only with ``force``:
    the later records are then kept in the side file, not in the journal.
    """
    p = Path(path)
    data = read_bytes(p)
    try:
        contents = parse_journal(data, str(p))
        cut_at = contents.good_size
        kept = len(contents.events)
    except JournalCorruptError as exc:
        if not force or exc.seq == 0:  # an empty journal is no repair of a damaged header
            raise
        cut_at = exc.offset
        kept = exc.seq
    if cut_at == len(data):
        return RepairReport(p, kept, 0, None)
    return RepairReport(p, kept, len(data) - cut_at, cut_journal(p, data, cut_at))


def cut_journal(p: Path, data: bytes, cut_at: int) -> Path:
    """Truncate the journal at ``cut_at``, first moving the bytes after it to a side file
    (never overwriting one); return the side file."""
    side = p.with_name(f"{p.name}.cut-at-{cut_at}")
    serial = 1
    while side.exists():  # never overwrite what an earlier repair set aside
        serial += 1
        side = p.with_name(f"{p.name}.cut-at-{cut_at}.{serial}")
    with open(side, "xb") as f:  # durable before the journal is cut
        f.write(data[cut_at:])
        f.flush()
        os.fsync(f.fileno())
    with open(p, "r+b") as f:
        f.truncate(cut_at)
        os.fsync(f.fileno())
    return side
