"""Journal files: writing, reading with validation, checking and repairing.

A journal is an RFC 8742 CBOR sequence. Each record is the CBOR array ``[crc32, 24(payload)]``:
the payload is the event's own CBOR encoding wrapped in tag 24 (embedded CBOR data item), and
the CRC-32 covers the payload bytes. CBOR itself has no checksum, so a torn or flipped write could
otherwise decode as a valid, wrong event. The CRC is always written as a 4-byte unsigned integer
(``0x1a``), which keeps every record's prefix the same shape and lets a reader find record
boundaries without decoding. See docs/journal-format.md for a worked example.

Damage is classified, never guessed at:

* a final record that is incomplete or fails its check, with no valid record after it, is a
  **torn tail** — the usual result of a crash mid-write. Readers use the journal up to the last
  good record and report the tail; ``repair_journal`` moves the tail bytes aside.
* any other bad record is **corruption**: ``JournalCorruptError`` names its byte offset and
  sequence number, because records after it exist and silently dropping them would lose data.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import struct
import threading
import zlib
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import cbor2
import msgspec

from ._events import EVENT_TYPES, FORMAT_NAME, FORMAT_VERSION, Header, _Event
from .errors import JournalCorruptError, JournalError, JournalFormatError

__all__ = [
    "JournalWriter",
    "JournalContents",
    "TornTail",
    "read_journal",
    "check_journal",
    "repair_journal",
    "RepairReport",
    "cut_journal",
]

_WHAT_TO_PASS = (
    "Pass the journal.cbor of a service (OUT/services/<id>/ of a build, or <state>/<id>/)."
)
_CRC_PREFIX = b"\x82\x1a"  # array(2), then a uint32 CRC
_TAG24 = b"\xd8\x18"
_PREFIX_LEN = 2 + 4 + 2  # up to the byte string's initial byte


def encode_record(tree: list[Any]) -> bytes:
    """Frame one event (already in CBOR-ready list form) as a journal record."""
    payload = cbor2.dumps(tree)
    n = len(payload)
    if n < 24:
        length = _BSTR_HEADS[n]
    elif n < 0x100:
        length = bytes((0x58, n))
    elif n < 0x10000:
        length = b"\x59" + n.to_bytes(2, "big")
    elif n < 0x100000000:
        length = b"\x5a" + n.to_bytes(4, "big")
    else:
        length = b"\x5b" + n.to_bytes(8, "big")
    return _CRC_PREFIX + zlib.crc32(payload).to_bytes(4, "big") + _TAG24 + length + payload


_BSTR_HEADS = [bytes((0x40 + n,)) for n in range(24)]


def _event_tree(event: msgspec.Struct) -> list[Any]:
    fields = [
        _event_tree(f) if isinstance(f, msgspec.Struct) else f
        for f in msgspec.structs.astuple(event)
    ]
    tag = event.__struct_config__.tag
    if isinstance(event, Header):
        fields[-1] = [list(msgspec.structs.astuple(b)) for b in event.bundle]
    return fields if tag is None else [tag, *fields]


class JournalWriter:
    """Appends records to one service's journal.

    ``flush`` hands buffered records to the OS; ``sync`` also makes them durable (fdatasync).
    """

    def __init__(self, path: str | os.PathLike[str], file: BinaryIO, next_seq: int) -> None:
        self.path = Path(path)
        self._file = file
        self.next_seq = next_seq
        self.dirty = False
        # Writes come from one call at a time, but a group commit flushes from another thread:
        # the lock keeps a flush from losing the dirty mark of a record written during it.
        self._lock = threading.Lock()

    @classmethod
    def create(cls, path: str | os.PathLike[str], header: Header) -> JournalWriter:
        """Start a new journal at ``path`` (replacing any file there) with its header record."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        writer = cls(path, open(path, "wb"), 0)
        writer.write(header)
        return writer

    @classmethod
    def append_to(cls, path: str | os.PathLike[str]) -> JournalWriter:
        """Continue an existing journal. A torn tail must be repaired first."""
        contents = read_journal(path)
        if contents.torn is not None:
            raise JournalError(
                f"{path} ends in a torn record ({contents.torn.reason}); run "
                f"`distdev journal repair {path}` before appending to it"
            )
        return cls(path, open(path, "ab"), len(contents.events))

    def write(self, event: _Event) -> int:
        """Append one event; its ``seq`` must be ``next_seq``. Returns the seq."""
        return self.write_fields(_event_tree(event))

    def write_fields(self, tree: list[Any]) -> int:
        """Append one event given as ``[kind, seq, ...fields]``, its seq set here (the hot
        path: no Struct is built; nested Structs must already be lists)."""
        with self._lock:
            tree[1] = self.next_seq
            self._file.write(encode_record(tree))
            self.next_seq += 1
            self.dirty = True
            return self.next_seq - 1

    def flush(self) -> None:
        with self._lock:
            if self.dirty:
                self._file.flush()
                self.dirty = False

    def fileno(self) -> int:
        return self._file.fileno()

    def sync(self) -> None:
        self.flush()
        os.fdatasync(self._file.fileno())

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            self._file.close()


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
    events: list[_Event]
    offsets: list[int]
    torn: TornTail | None
    size: int

    @property
    def good_size(self) -> int:
        """Bytes up to the end of the last good record."""
        return self.torn.offset if self.torn else self.size


class _BadRecord(Exception):
    """A record that cannot be used. ``tail_like``: the damage a crash mid-write leaves (cut
    short, or bytes that fail their checksum); a record whose checksum holds but whose content
    is invalid was written that way, and is never taken for a torn tail."""

    def __init__(self, reason: str, *, tail_like: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.tail_like = tail_like


_HEAD = struct.Struct(">2sI2sB")  # array(2) + uint32 marker, CRC, tag 24, bstr initial byte
_WHERE_NOT_BOUNDARY = (
    (0, b"\x82"), (1, b"\x1a"), (6, b"\xd8"), (7, b"\x18"),
)


def _frame_at(data: bytes, offset: int) -> tuple[bytes, int]:
    """The payload of the record at ``offset`` and the offset after it, or ``_BadRecord``."""
    end = len(data)
    if offset + _HEAD.size > end:
        head = data[offset:]
        for i, byte in _WHERE_NOT_BOUNDARY:
            if i < len(head) and head[i : i + 1] != byte:
                raise _BadRecord(f"byte {offset + i} is not a record boundary")
        raise _BadRecord("the record is cut short")
    array_crc, crc, tag, initial = _HEAD.unpack_from(data, offset)
    if array_crc != _CRC_PREFIX or tag != _TAG24:
        for i, byte in _WHERE_NOT_BOUNDARY:
            if data[offset + i : offset + i + 1] != byte:
                raise _BadRecord(f"byte {offset + i} is not a record boundary")
    pos = offset + _HEAD.size
    if 0x40 <= initial < 0x58:
        n = initial - 0x40
    elif 0x58 <= initial <= 0x5B:
        width = 1 << (initial - 0x58)
        if pos + width > end:
            raise _BadRecord("the record is cut short")
        n = int.from_bytes(data[pos : pos + width], "big")
        pos += width
    else:
        raise _BadRecord(f"byte {offset + _PREFIX_LEN} is not a byte-string length")
    if pos + n > end:
        raise _BadRecord("the record is cut short")
    payload = data[pos : pos + n]
    if zlib.crc32(payload) != crc:
        raise _BadRecord("its checksum does not match its contents")
    return payload, pos + n


def _decode_event(payload: bytes, seq: int) -> _Event:
    try:
        tree = cbor2.loads(payload)
    except Exception as exc:
        raise _BadRecord(f"its payload is not valid CBOR ({exc})", tail_like=False) from None
    if not isinstance(tree, list) or not tree or not isinstance(tree[0], str):
        raise _BadRecord("its payload is not an event", tail_like=False)
    cls = EVENT_TYPES.get(tree[0])
    if cls is None:
        raise _BadRecord(f"it has an unknown event kind {tree[0]!r}", tail_like=False)
    try:
        event = msgspec.convert(tree, cls)
    except msgspec.ValidationError as exc:
        raise _BadRecord(f"it is not a valid {tree[0]} event ({exc})", tail_like=False) from None
    if event.seq != seq:
        raise _BadRecord(
            f"it carries sequence number {event.seq}, not {seq}", tail_like=False
        )
    return event


def _valid_record_after(data: bytes, offset: int) -> bool:
    """Whether any intact record starts after ``offset`` (so the damage is not a torn tail)."""
    pos = data.find(_CRC_PREFIX, offset + 1)
    while pos != -1:
        try:
            _frame_at(data, pos)
            return True
        except _BadRecord:
            pos = data.find(_CRC_PREFIX, pos + 1)
    return False


def _iter_records(data: bytes, path: str) -> Iterator[tuple[int, _Event]]:
    offset = 0
    seq = 0
    while offset < len(data):
        try:
            payload, after = _frame_at(data, offset)
            event = _decode_event(payload, seq)
        except _BadRecord as bad:
            if seq == 0:
                raise JournalFormatError(
                    f"{path} is not a distdev journal: its first record is unreadable "
                    f"({bad.reason}). {_WHAT_TO_PASS}"
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


def _check_header(event: _Event, path: str) -> None:
    """Refuse a file that is not a journal this build can read, before reading further:
    a newer format's records would otherwise look like corruption."""
    if not isinstance(event, Header) or event.format != FORMAT_NAME:
        raise JournalFormatError(
            f"{path} is not a distdev journal: it has no distdev header. {_WHAT_TO_PASS}"
        )
    if event.version != FORMAT_VERSION:
        raise JournalFormatError(
            f"{path} has journal format version {event.version}; this distdev reads version "
            f"{FORMAT_VERSION}. Use a distdev release that matches the one that wrote it "
            f"({event.distdev})."
        )


class _TornAt(Exception):
    def __init__(self, torn: TornTail) -> None:
        self.torn = torn


def read_journal(path: str | os.PathLike[str]) -> JournalContents:
    """Read and validate a whole journal. A torn tail is reported in ``torn``, not raised."""
    p = Path(path)
    return parse_journal(_read_bytes(p), str(p))


def _read_bytes(p: Path) -> bytes:
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
    events: list[_Event] = []
    offsets: list[int] = []
    torn = None
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
    finally:
        if collecting:
            gc.enable()
    header = events[0]
    assert isinstance(header, Header)
    return JournalContents(Path(path), header, events, offsets, torn, len(data))


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
    data = _read_bytes(p)
    try:
        contents = parse_journal(data, str(p))
        cut_at = contents.good_size
        kept = len(contents.events)
    except JournalCorruptError as exc:
        if not force:
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
