"""distdev: distributed Python applications that build, debug and test as one program.

Service code uses ``import_service``, ``host``, ``effect``, ``phase`` and ``patched``. Tools (the
command line, the debugger, the language server, tests) use ``App``, ``replay``,
``distdev.journal`` and ``distdev.tools``.

Importing distdev changes nothing process-wide: the process-wide guards are installed when the
first service is created. The one exception is when distdev *is* the program (``python -m
distdev...`` without ``-P``): the working folder that ``-m`` put on ``sys.path`` is taken off
again, so an application file named like a standard-library module cannot replace it.

The layers, lowest first (``docs/architecture.md``): ``rules`` and ``errors``; ``membrane``;
``journal``; ``compartment``; ``service``; ``replayer``; ``build``; ``engines``; then ``cli``,
``testing`` and ``tools``.
"""

from __future__ import annotations

from ._spawn import leave_working_folder_off_sys_path

leave_working_folder_off_sys_path()  # first: before any import an app file could shadow

# ruff: noqa: E402 (the imports below follow the sys.path fix on purpose)
from ._version import VERSION as __version__  # noqa: N811
from .build import App as App
from .build import BuildOutput as BuildOutput
from .errors import (
    CallTimeoutError as CallTimeoutError,
)
from .errors import (
    DeploymentError as DeploymentError,
)
from .errors import (
    DeterminismError as DeterminismError,
)
from .errors import (
    DistdevError as DistdevError,
)
from .errors import (
    ExportError as ExportError,
)
from .errors import (
    FrozenStateError as FrozenStateError,
)
from .errors import (
    HashSeedError as HashSeedError,
)
from .errors import (
    HTTPError as HTTPError,
)
from .errors import (
    JournalCorruptError as JournalCorruptError,
)
from .errors import (
    JournalError as JournalError,
)
from .errors import (
    JournalFormatError as JournalFormatError,
)
from .errors import (
    MembraneError as MembraneError,
)
from .errors import (
    PhaseError as PhaseError,
)
from .errors import (
    ReplayDivergenceError as ReplayDivergenceError,
)
from .errors import (
    ServiceError as ServiceError,
)
from .errors import (
    ServiceIdClashError as ServiceIdClashError,
)
from .errors import (
    ServiceLoadError as ServiceLoadError,
)
from .errors import (
    ServiceUnavailableError as ServiceUnavailableError,
)
from .journal import JournalContents as JournalContents
from .journal import JournalWriter as JournalWriter
from .journal import RepairReport as RepairReport
from .journal import TornTail as TornTail
from .journal import read_journal as read_journal
from .journal import repair_journal as repair_journal
from .membrane import ServiceProxy as ServiceProxy
from .membrane import service_state as service_state
from .replayer import ReplayedService as ReplayedService
from .replayer import SourceDifference as SourceDifference
from .replayer import replay as replay
from .service import deprecated_patch as deprecated_patch
from .service import effect as effect
from .service import host as host
from .service import import_service as import_service
from .service import patched as patched
from .service import phase as phase

ServiceProxy.__module__ = __name__  # annotations and reprs say distdev.ServiceProxy

__all__ = [
    "import_service",
    "host",
    "effect",
    "phase",
    "patched",
    "deprecated_patch",
    "ServiceProxy",
    "App",
    "BuildOutput",
    "replay",
    "ReplayedService",
    "SourceDifference",
    "service_state",
    "read_journal",
    "repair_journal",
    "JournalContents",
    "JournalWriter",
    "RepairReport",
    "TornTail",
    "DistdevError",
    "DeploymentError",
    "DeterminismError",
    "ExportError",
    "FrozenStateError",
    "HashSeedError",
    "HTTPError",
    "JournalCorruptError",
    "JournalError",
    "JournalFormatError",
    "MembraneError",
    "PhaseError",
    "ReplayDivergenceError",
    "ServiceError",
    "ServiceIdClashError",
    "ServiceLoadError",
    "ServiceUnavailableError",
    "CallTimeoutError",
    "__version__",
]
