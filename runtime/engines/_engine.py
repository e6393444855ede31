"""The engines by name: ``engine("local")``, ``engine("ray")``."""

from __future__ import annotations

from ..errors import DistdevError
from ._protocol import Engine

__all__ = ["ENGINES", "engine"]

ENGINES = ("local", "ray")


def engine(name: str) -> Engine:
    """The engine called ``name``."""
    if name == "local":
        from .local import LocalEngine

        return LocalEngine()
    if name == "ray":
        from .ray import RayEngine

        return RayEngine()
    raise DistdevError(f"no engine {name!r}: use one of {', '.join(ENGINES)}")
