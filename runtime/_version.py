"""distdev's version, and the hash seed this process runs under."""

from __future__ import annotations

import os

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
