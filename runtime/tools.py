"""The surface distdev's own tools build on: the debug adapter and the language server import
this module (and ``distdev``, ``distdev.journal``, ``distdev.rules``, ``distdev.errors``), never
a private one. It is low-level by design: what runs on which thread, the hooks of a replay, and
where each journal stands.
"""

from __future__ import annotations

from ._own_code import DISTDEV_DIRS as DISTDEV_DIRS
from ._own_code import is_distdev_file as is_distdev_file
from ._spawn import SAFE_PATH as SAFE_PATH
from ._spawn import python_module as python_module
from ._version import PINNED_HASH_SEED as PINNED_HASH_SEED
from .build import App
from .compartment import current_service as current_service
from .compartment import in_effect as in_effect
from .compartment import observing as observing
from .engines import DevHost as DevHost
from .replayer import ReplayedService as ReplayedService
from .replayer import materialize_bundle as materialize_bundle
from .replayer import replay as replay
from .resources import kinds
from .service import Service as Service
from .service import StopReplay as StopReplay

__all__ = [
    "PINNED_HASH_SEED", "DISTDEV_DIRS", "is_distdev_file", "SAFE_PATH", "python_module",
    "current_service", "in_effect", "observing", "DevHost", "ReplayedService", "replay",
    "materialize_bundle", "Service",
    "StopReplay", "running_app", "journal_positions", "resource_kinds",
]


def resource_kinds() -> dict[str, dict[str, tuple[str, str]]]:
    """Each kind of resource (``resources.sql`` ...) -> its methods: name -> (signature as
    ``(params) -> returns``, one-line doc). What the language server completes after ``db.``."""
    return {name: {method: (signature, kind.docs.get(method, ""))
                   for method, signature in kind.exports.items()}
            for name, kind in kinds().items()}


def running_app(host: DevHost | None = None) -> App | None:
    """The application this thread's service belongs to (a stop at build time, before the
    host holds it), else ``host``'s."""
    service = current_service()
    if isinstance(service, Service) and isinstance(service.router, App):
        return service.router
    return host.app if host is not None else None


def journal_positions(app: App | None) -> dict[str, int]:
    """Each service's last journal event (seq) in ``app``; empty without one."""
    return {} if app is None else app.journal_positions()
