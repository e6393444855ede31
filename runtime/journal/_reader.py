"""Reading a journal with validation: every record checked, damage classified, never guessed.

* a final record that is incomplete or fails its check, with no valid record after it, is a
  **torn tail** — the usual result of a crash mid-write. Readers use the journal up to the last
  good record and report the tail; ``repair_journal`` moves the tail bytes aside.
* any other bad record is **corruption**: ``JournalCorruptError`` names its byte offset and
  sequence number, because records after it exist and silently dropping them would lose data.

A run of zero bytes from a record boundary to the end of the file is **free space**, not a
record: a record never starts with a zero byte, and a journal's file is allocated ahead of its
records in zeros (``_file``). A record cut short, followed by zeros, is still a torn tail.
"""

from __future__ import annotations

import dataclasses
import gc
import mmap
import os
from collections.abc import Iterator
from pathlib import Path

import cbor2
import msgspec

from ..errors import JournalCorruptError, JournalError, JournalFormatError
from ._codec import CRC_PREFIX, BadRecord, frame_at
from ._events import EVENT_TYPES, FORMAT_NAME, READABLE_VERSIONS, Checkpoint, Event, Header, Switch

__all__ = ["JournalContents", "TornTail", "read_journal", "parse_journal", "read_bytes",
           "read_from_checkpoint", "CHECKPOINT_INDEX"]

_WHAT_TO_PASS = (
    "Pass the journal.cbor of a service (OUT/services/<id>/ of a build, or <state>/<id>/)."
)

@dataclasses.dataclass(frozen=True)
class TornTail:
    """An incomplete or damaged final record: where it starts and why it was refused."""

    offset: int
    seq: int
    reason: str


@dataclasses.dataclass(frozen=True)
class JournalContents:
    """A journal read and validated: its header, every event (header first) and any torn tail."""

    path: Path
    header: Header
    events: list[Event]
    offsets: list[int]
    torn: TornTail | None
    size: int
    free: int = 0
    """Zero bytes after the last record, to the end of the file: space allocated ahead."""
    skipped: int = 0
    """Records of the file that ``events`` leaves out (``read_from_checkpoint``: the ones
    between the top level and the checkpoint); the file holds ``len(events) + skipped``."""

    @property
    def good_size(self) -> int:
        """Bytes up to the end of the last good record."""
        return self.torn.offset if self.torn else self.size - self.free


def _decode_event(payload: bytes, seq: int) -> Event:
    try:
        tree = cbor2.loads(payload)
    except Exception as exc:
        raise BadRecord(f"its payload is not valid CBOR ({exc})", tail_like=False) from None
    if not isinstance(tree, list) or not tree or not isinstance(tree[0], str):
        raise BadRecord("its payload is not an event", tail_like=False)
    cls = EVENT_TYPES.get(tree[0])
    if cls is None:
        raise BadRecord(f"it has an unknown event kind {tree[0]!r}", tail_like=False)
    try:
        event: Event = msgspec.convert(tree, cls)
    except msgspec.ValidationError as exc:
        raise BadRecord(f"it is not a valid {tree[0]} event ({exc})", tail_like=False) from None
    if event.seq != seq:
        raise BadRecord(
            f"it carries sequence number {event.seq}, not {seq}", tail_like=False
        )
    return event


def _valid_record_after(data: bytes, offset: int) -> bool:
    """Whether any intact record starts after ``offset`` (so the damage is not a torn tail)."""
    pos = data.find(CRC_PREFIX, offset + 1)
    while pos != -1:
        try:
            frame_at(data, pos)
            return True
        except BadRecord:
            pos = data.find(CRC_PREFIX, pos + 1)
    return False


def _damaged_journal(data: bytes) -> bool:
    """Whether a file whose first record is unreadable is a damaged journal rather than some
    other kind of file: it starts the way every record does, or intact records follow."""
    return (data.startswith(CRC_PREFIX) and data[6:8] == b"\xd8\x18"
            or _valid_record_after(data, 0))


def is_free_space(data: bytes | mmap.mmap, offset: int) -> bool:
    """Whether everything from ``offset`` to the end is zero bytes (allocated, never written):
    a record starts with ``82``, so none starts there."""
    if offset < len(data) and data[offset]:
        return False
    if isinstance(data, bytes):
        return data.count(0, offset) == len(data) - offset
    return bytes(data[offset:]).count(0) == len(data) - offset


def _iter_records(data: bytes, path: str, offset: int = 0,
                  seq: int = 0) -> Iterator[tuple[int, Event]]:
    while offset < len(data):
        if seq and not data[offset] and is_free_space(data, offset):
            raise _FreeFrom(offset)
        try:
            payload, after = frame_at(data, offset)
            event = _decode_event(payload, seq)
        except BadRecord as bad:
            if seq == 0 and not (bad.tail_like and _damaged_journal(data)):
                raise JournalFormatError(
                    f"{path} is not a distdev journal: its first record is unreadable "
                    f"({bad.reason}). {_WHAT_TO_PASS}"
                ) from None
            if seq == 0:
                raise JournalCorruptError(
                    f"{path} is corrupt at byte offset 0 (record 0, its header): {bad.reason}. "
                    "The header says which service and format the records belong to, so none "
                    "can be read without it: restore this journal from a copy.",
                    path=path,
                    offset=0,
                    seq=0,
                ) from None
            if bad.tail_like and not _valid_record_after(data, offset):
                raise _TornAt(TornTail(offset, seq, bad.reason)) from None
            raise JournalCorruptError(
                f"{path} is corrupt at byte offset {offset} (record {seq}): {bad.reason}. "
                f"Records before it are intact; `distdev journal repair --force {path}` keeps "
                "them and moves the rest to a side file.",
                path=path,
                offset=offset,
                seq=seq,
            ) from None
        if seq == 0:
            _check_header(event, path)
        yield offset, event
        offset = after
        seq += 1


def _check_header(event: Event, path: str) -> None:
    """Refuse a file that is not a journal this build can read, before reading further:
    a newer format's records would otherwise look like corruption."""
    if not isinstance(event, Header) or event.format != FORMAT_NAME:
        raise JournalFormatError(
            f"{path} is not a distdev journal: it has no distdev header. {_WHAT_TO_PASS}"
        )
    if event.version not in READABLE_VERSIONS:
        raise JournalFormatError(
            f"{path} has journal format version {event.version}; this distdev reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}. Use a distdev release that matches the "
            f"one that wrote it ({event.distdev})."
        )


class _TornAt(Exception):
    def __init__(self, torn: TornTail) -> None:
        self.torn = torn


class _FreeFrom(Exception):
    def __init__(self, offset: int) -> None:
        self.offset = offset


def read_journal(path: str | os.PathLike[str]) -> JournalContents:
    """Read and validate a whole journal. A torn tail is reported in ``torn``, not raised."""
    p = Path(path)
    return parse_journal(read_bytes(p), str(p))


def read_bytes(p: Path) -> bytes:
    try:
        return p.read_bytes()
    except FileNotFoundError:
        raise JournalError(f"no journal at {p}: check the path") from None
    except IsADirectoryError:
        raise JournalError(f"{p} is a folder: pass the journal.cbor file inside it") from None


def parse_journal(data: bytes, path: str = "<journal>") -> JournalContents:
    """Validate journal bytes (see ``read_journal``)."""
    if not data:
        raise JournalFormatError(f"{path} is empty: it is not a distdev journal. {_WHAT_TO_PASS}")
    if is_free_space(data, 0):
        raise JournalFormatError(
            f"{path} holds only zero bytes: it is not a distdev journal, or one whose header "
            f"never reached the disk. {_WHAT_TO_PASS}")
    events: list[Event] = []
    offsets: list[int] = []
    torn = None
    free = 0
    # Parsing allocates many small objects that all stay alive: collections would only rescan
    # them (a quarter of the time on a 200k-event journal).
    collecting = gc.isenabled()
    gc.disable()
    try:
        for offset, event in _iter_records(data, path):
            offsets.append(offset)
            events.append(event)
    except _TornAt as t:
        torn = t.torn
    except _FreeFrom as f:
        free = len(data) - f.offset
    finally:
        if collecting:
            gc.enable()
    header = events[0]
    assert isinstance(header, Header)
    return JournalContents(Path(path), header, events, offsets, torn, len(data), free)


CHECKPOINT_INDEX = ".checkpoint"
"""The suffix of the file beside a journal that says where its last checkpoint is: "<byte
offset> <seq>", written after the record. Only a hint: the record there is read and checked."""


def read_from_checkpoint(path: str | os.PathLike[str]) -> JournalContents | None:
    """The journal as a restore needs it, without reading what its last checkpoint holds: the
    header, the top level's records, the checkpoint and every record after it, each checked,
    numbered as ``distdev journal compact`` would write them (``skipped`` says how many are
    left out). None when the index beside it is missing or does not name a checkpoint record
    (then read the whole journal). Only a torn tail is tolerated, as ``read_journal`` does."""
    p = Path(path)
    try:
        offset_text, seq_text = p.with_name(p.name + CHECKPOINT_INDEX).read_text().split()
        offset, at = int(offset_text), int(seq_text)
    except (OSError, ValueError):
        return None
    with open(p, "rb") as f:  # mapped: only the pages of the records read are read
        try:
            data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file
            return None
    with data:
        return _from_checkpoint(p, data, offset, at)


def _from_checkpoint(p: Path, data: mmap.mmap, offset: int, at: int) -> JournalContents | None:
    try:
        payload, after = frame_at(data, offset)  # type: ignore[arg-type]
        checkpoint = _decode_event(payload, at)
        header_payload, position = frame_at(data, 0)  # type: ignore[arg-type]
        header = _decode_event(header_payload, 0)
    except BadRecord:
        return None
    if type(checkpoint) is not Checkpoint or checkpoint.top_level > at:
        return None
    _check_header(header, str(p))
    assert isinstance(header, Header)
    events: list[Event] = [header]
    offsets = [0]
    try:
        for seq in range(1, checkpoint.top_level):
            payload, next_position = frame_at(data, position)  # type: ignore[arg-type]
            events.append(_decode_event(payload, seq))
            offsets.append(position)
            position = next_position
    except BadRecord:
        return None  # read whole, it is reported as ``read_journal`` reports it
    shift = at - len(events)
    torn = None
    free = 0
    try:
        for file_offset, event in _iter_records(data, str(p), offset, at):  # type: ignore[arg-type]
            events.append(_shifted(event, shift, at))
            offsets.append(file_offset)
    except _TornAt as t:
        torn = t.torn
    except _FreeFrom as f:
        free = len(data) - f.offset
    return JournalContents(p, header, events, offsets, torn, len(data), free=free, skipped=shift)


def _shifted(event: Event, shift: int, at: int) -> Event:
    if not shift:
        return event
    if type(event) is Switch and event.call >= at:
        return msgspec.structs.replace(event, seq=event.seq - shift, call=event.call - shift)
    return msgspec.structs.replace(event, seq=event.seq - shift)
