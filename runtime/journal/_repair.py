"""Checking and repairing a journal: cut a torn tail (or, forced, corruption) aside into a side
file. Nothing is ever deleted but free space: the zeros a journal's file was allocated ahead in
(``_file``), which never held a record."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from ..errors import JournalCorruptError
from ._codec import CRC_PREFIX
from ._reader import JournalContents, is_free_space, parse_journal, read_bytes, read_journal

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
    """Where the ``cut_bytes`` went (None: nothing was cut)."""


def repair_journal(path: str | os.PathLike[str], *, force: bool = False) -> RepairReport:
    """Cut a journal back to its last good record, moving the bytes cut into a side file.

    A torn tail is always safe to cut. Corruption in the middle is cut only with ``force``:
    the later records are then kept in the side file, not in the journal.
    """
    p = Path(path)
    data = read_bytes(p)
    try:
        contents = parse_journal(data, str(p))
        if contents.torn is None:  # intact (free space after the records is no damage)
            return RepairReport(p, len(contents.events), 0, None)
        cut_at = contents.good_size
        kept = len(contents.events)
    except JournalCorruptError as exc:
        if not force or exc.seq == 0:  # an empty journal is no repair of a damaged header
            raise
        cut_at = exc.offset
        kept = exc.seq
    kept_end = _end_of_records(data, cut_at)
    return RepairReport(p, kept, kept_end - cut_at, cut_journal(p, data, cut_at))


def cut_journal(p: Path, data: bytes, cut_at: int) -> Path:
    """Truncate the journal at ``cut_at``, first moving the bytes after it to a side file
    (never overwriting one) up to where free space begins; return the side file."""
    side = p.with_name(f"{p.name}.cut-at-{cut_at}")
    serial = 1
    while side.exists():  # never overwrite what an earlier repair set aside
        serial += 1
        side = p.with_name(f"{p.name}.cut-at-{cut_at}.{serial}")
    with open(side, "xb") as f:  # durable before the journal is cut
        f.write(data[cut_at:_end_of_records(data, cut_at)])
        f.flush()
        os.fsync(f.fileno())
    with open(p, "r+b") as f:
        f.truncate(cut_at)
        os.fsync(f.fileno())
    return side


def _end_of_records(data: bytes, start: int) -> int:
    """Where the bytes from ``start`` that records occupy, whole or torn, end: before a run of
    zeros to the end of the file that begins where a record would (free space), else at the
    end. Records are followed by the lengths their heads claim, unchecked, so a torn record
    keeps every byte it claims, zeros included; a head that cannot be read keeps everything."""
    pos = start
    while pos < len(data):
        if not data[pos] and is_free_space(data, pos):
            return pos
        claimed = _claimed_end(data, pos)
        if claimed is None or claimed >= len(data):
            break
        pos = claimed
    return len(data)


def _claimed_end(data: bytes, offset: int) -> int | None:
    """Where the record at ``offset`` ends by its head (prefix and byte-string length), or
    None if the head is not a record's (``_codec`` has the layout)."""
    head = offset + 8  # 82 1a crc(4) d8 18, then the byte string's initial byte
    if data[offset:offset + 2] != CRC_PREFIX or head >= len(data):
        return None
    initial = data[head]
    if 0x40 <= initial < 0x58:
        return head + 1 + initial - 0x40
    if 0x58 <= initial <= 0x5B:
        width = 1 << (initial - 0x58)
        return head + 1 + width + int.from_bytes(data[head + 1:head + 1 + width], "big")
    return None
