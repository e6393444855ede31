"""Services: one module in its compartment, behind its membrane, with its tape.

``Service`` (``_service``) is the callee side of every call and the owner of its effect seam;
the ``CallGate`` (``_gate``) gives it actor semantics, one call at a time, re-entry on the chain
already inside; the ``Tape`` (``_tape``) decides whether what it does is recorded or just
performed; a function's globals are frozen after its build (``_frozen``). ``_api`` holds what
service code itself calls: ``import_service``, ``host``, ``effect``, ``phase``, ``patched``.

Layer: above ``compartment`` (a service lives in one) and ``journal`` (a recorder writes one).
"""

from __future__ import annotations

from ._api import deprecated_patch as deprecated_patch
from ._api import effect as effect
from ._api import host as host
from ._api import import_service as import_service
from ._api import patched as patched
from ._api import phase as phase
from ._frozen import BUILD_CHAIN as BUILD_CHAIN
from ._gate import CallGate as CallGate
from ._gate import CallGateReference as CallGateReference
from ._service import Service as Service
from ._service import ServiceRouter as ServiceRouter
from ._tape import PATCH_MARKER as PATCH_MARKER
from ._tape import CallFailed as CallFailed
from ._tape import Detached as Detached
from ._tape import Recorder as Recorder
from ._tape import StopReplay as StopReplay
from ._tape import Tape as Tape
from ._tape import listed as listed
from ._tape import same as same

__all__ = ["effect", "host", "import_service", "patched", "deprecated_patch", "phase",
           "BUILD_CHAIN", "CallGate", "CallGateReference", "Service", "ServiceRouter", "CallFailed",
           "Detached",
           "PATCH_MARKER", "Recorder", "StopReplay", "Tape", "listed", "same"]
