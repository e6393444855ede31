"""A plain module both services import: its classes cross between them."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class Contact:
    email: str
    phones: dict[str, str] = dataclasses.field(default_factory=dict)
    """A dict inside a dataclass: over a socket, it arrives inside a tag."""
