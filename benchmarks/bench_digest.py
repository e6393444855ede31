"""Measurement 9: what a state digest costs, against the size of the state.

A service's journal records a digest of its globals (``distdev.membrane.state_digest``: each
global's digest form hashed) after its build, at stops, and after calls — after every call
while that costs little, every N calls once it costs more than about 5% of a membrane call
(``service._service._DigestSchedule``). The figure is one digest of a module namespace holding
about 1 KB, 100 KB and 10 MB of ordinary state (a dict of records: strings, ints, floats,
nested lists); the baseline is what a user would write to fingerprint the same state,
``hashlib.blake2b(pickle.dumps(state))``. The "per call" note is the amortized cost under the
schedule: one digest every N calls.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from typing import Any

from bench_util import Row, Settings, median_seconds, progress

from distdev.membrane import state_digest
from distdev.service._service import _DigestSchedule

SIZES = {"1 KB": 10, "100 KB": 1_000, "10 MB": 100_000}  # records of ~100 bytes each
SHARE, TYPICAL_CALL = _DigestSchedule.SHARE, _DigestSchedule.TYPICAL_CALL


def _namespace(records: int) -> dict[str, Any]:
    orders = {f"order-{i:07d}": {"user": f"user-{i % 97}", "cents": i * 7, "rate": i / 3,
                                 "items": [i, i + 1, "x"]} for i in range(records)}
    return {"orders": orders, "count": records, "names": sorted({f"user-{i % 97}"
                                                               for i in range(records)})}


def measure(tmp: Path, settings: Settings) -> list[Row]:
    rows = []
    reps = 3 if settings.quick else 7
    for label, records in SIZES.items():
        if settings.quick and records > 10_000:
            continue
        namespace = _namespace(records)
        size = len(pickle.dumps(namespace))
        progress(f"digest: {label} of state ({size:,} bytes pickled), {reps} reps")
        took = median_seconds(lambda n=namespace: state_digest(n), reps)
        base = median_seconds(lambda n=namespace: hashlib.blake2b(
            pickle.dumps(n), digest_size=12).hexdigest(), reps)
        every = max(1, min(1000, int(took / (SHARE * TYPICAL_CALL))))
        rows.append(Row(
            key=f"digest.{label.replace(' ', '')}", title=f"state digest, {label} of state",
            unit="ms", distdev=took * 1e3, baseline_name="blake2b(pickle.dumps(state))",
            baseline=base * 1e3, higher_is_better=False,
            note=f"{size:,} bytes pickled; scheduled every {every} call(s): "
                 f"{took / every * 1e6:.1f} us a call amortized; {reps} reps, median"))
    return rows
