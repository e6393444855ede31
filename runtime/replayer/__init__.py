"""Replay: restoring one service from its journal alone, and saying precisely where the code
does something else.

``replay`` (``_replay``) runs the service's code again, from the journal's bundle or from other
source, with the replaying tape (``_replayer``) answering every effect and outgoing call from the
journal and re-delivering every incoming call; the first difference is a
``ReplayDivergenceError`` naming the event, what the journal expected, what the code did and
the line that did it. A journal with checkpoints (``_checkpoint``: verified snapshots a live
service writes where no call is open) is restored from its last one and the records after
it. At the end the service is live and detached. ``check_journal`` (``_check``) is the
compatibility gate built on it: does other code still replay a journal?

Layer: above ``service``.
"""

from __future__ import annotations

from ._check import Verdict as Verdict
from ._check import check_and_restore as check_and_restore
from ._check import check_journal as check_journal
from ._check import journals_in as journals_in
from ._checkpoint import Checkpointer as Checkpointer
from ._checkpoint import CheckpointPolicy as CheckpointPolicy
from ._checkpoint import SnapshotError as SnapshotError
from ._checkpoint import checkpoint_answered as checkpoint_answered
from ._checkpoint import latest_checkpoint as latest_checkpoint
from ._checkpoint import load_snapshot as load_snapshot
from ._checkpoint import take_snapshot as take_snapshot
from ._replay import ReplayedService as ReplayedService
from ._replay import SourceDifference as SourceDifference
from ._replay import Transport as Transport
from ._replay import VerifyingCopy as VerifyingCopy
from ._replay import bundle_files as bundle_files
from ._replay import check_hash_seed as check_hash_seed
from ._replay import materialize_bundle as materialize_bundle
from ._replay import replay as replay
from ._replay import source_differences as source_differences
from ._replayer import Replayer as Replayer

__all__ = ["ReplayedService", "SourceDifference", "Transport", "bundle_files", "check_hash_seed",
           "materialize_bundle", "replay", "source_differences", "Replayer", "Verdict",
           "check_journal", "check_and_restore", "journals_in", "CheckpointPolicy", "Checkpointer",
           "SnapshotError",
           "checkpoint_answered", "latest_checkpoint", "load_snapshot", "take_snapshot",
           "VerifyingCopy"]
