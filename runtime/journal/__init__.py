"""Journals: one per service, an append-only CBOR sequence of typed events (docs/journal-format.md).

This is a public module, for tools as much as for the runtime: the typed event union
(``Event`` and its members), reading with validation (``read_journal``), writing
(``JournalWriter``), checking and repairing (``check_journal``, ``repair_journal``), and
compacting a journal to start at its last checkpoint (``compact_journal``).

Layer: above ``membrane`` (events hold values in their wire form and exceptions as
``ErrorInfo``); imports nothing of the layers above.
"""

from __future__ import annotations

from ..membrane import ErrorInfo as ErrorInfo
from ._codec import encode_record as encode_record
from ._compact import CompactReport as CompactReport
from ._compact import compact_journal as compact_journal
from ._compact import compacted_events as compacted_events
from ._events import EVENT_TYPES as EVENT_TYPES
from ._events import FORMAT_NAME as FORMAT_NAME
from ._events import FORMAT_VERSION as FORMAT_VERSION
from ._events import READ_PAST as READ_PAST
from ._events import READABLE_VERSIONS as READABLE_VERSIONS
from ._events import BundleFile as BundleFile
from ._events import CallIn as CallIn
from ._events import CallOut as CallOut
from ._events import Checkpoint as Checkpoint
from ._events import Effect as Effect
from ._events import ErrorIn as ErrorIn
from ._events import Event as Event
from ._events import EventBase as EventBase
from ._events import Header as Header
from ._events import Output as Output
from ._events import Raise as Raise
from ._events import ResultIn as ResultIn
from ._events import Return as Return
from ._events import Source as Source
from ._events import Spawn as Spawn
from ._events import StateDigest as StateDigest
from ._events import Switch as Switch
from ._events import describe as describe
from ._events import is_boundary as is_boundary
from ._file import sync_data as sync_data
from ._reader import CHECKPOINT_INDEX as CHECKPOINT_INDEX
from ._reader import JournalContents as JournalContents
from ._reader import TornTail as TornTail
from ._reader import parse_journal as parse_journal
from ._reader import read_from_checkpoint as read_from_checkpoint
from ._reader import read_journal as read_journal
from ._repair import RepairReport as RepairReport
from ._repair import check_journal as check_journal
from ._repair import cut_journal as cut_journal
from ._repair import repair_journal as repair_journal
from ._schedule import TOP_LEVEL as TOP_LEVEL
from ._schedule import Schedule as Schedule
from ._writer import JournalWriter as JournalWriter

__all__ = [
    "Event", "EventBase", "Header", "CallIn", "Return", "Raise", "CallOut", "ResultIn", "ErrorIn",
    "Effect", "Output", "Checkpoint", "Spawn", "Source", "StateDigest", "Switch", "BundleFile",
    "ErrorInfo", "EVENT_TYPES",
    "FORMAT_NAME", "FORMAT_VERSION", "READABLE_VERSIONS", "describe", "encode_record",
    "READ_PAST", "is_boundary", "Schedule", "TOP_LEVEL",
    "JournalContents", "TornTail", "read_journal", "read_from_checkpoint", "CHECKPOINT_INDEX",
    "parse_journal", "JournalWriter", "sync_data",
    "check_journal", "repair_journal", "cut_journal", "RepairReport", "compact_journal",
    "compacted_events", "CompactReport",
]
