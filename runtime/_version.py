"""distdev's version, and the hash seed this process runs under."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator

VERSION = "0.1.0"

# Read once, at import: service code sees a virtual os.environ, and a later change to the real
# one does not change the seed the interpreter started with.
_HASH_SEED = os.environ.get("PYTHONHASHSEED")

PINNED_HASH_SEED = "0"
"""The seed ``distdev`` commands pin when none is set (str/bytes hashing, set order)."""


def recorded_hash_seed() -> str | None:
    """The PYTHONHASHSEED this interpreter started with; None if hashing is randomized."""
    if _HASH_SEED in (None, "", "random"):
        return None
    return _HASH_SEED


def local_zone() -> str:
    """The local time zone this process converts times in: TZ if set, else the zone
    /etc/localtime names, else UTC. Journals record it, and a replay converts in it too."""
    zone = os.environ.get("TZ")
    if zone:
        return zone
    try:
        target = os.path.realpath("/etc/localtime")
    except OSError:
        return "UTC"
    return target.split("/zoneinfo/", 1)[1] if "/zoneinfo/" in target else "UTC"


@contextlib.contextmanager
def local_time(zone: str | None) -> Iterator[None]:
    """Convert local times in ``zone`` for the block (process-wide: C's localtime reads TZ),
    then as before."""
    if zone is None or zone == local_zone():
        yield
        return
    previous = os.environ.get("TZ")
    pin_zone(zone)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = previous
        time.tzset()


def pin_zone(zone: str | None) -> None:
    """Convert local times in ``zone`` from now on (a service process restored from a journal
    runs in the zone its journal was recorded in)."""
    if zone is not None and zone != local_zone():
        os.environ["TZ"] = zone
        time.tzset()
