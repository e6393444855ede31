"""distdev: distributed Python applications that build, debug and test as one program.

Service code uses ``import_service``, ``host``, ``effect`` and ``phase``. Tools (the command
line, the debugger, the language server, tests) use ``App``, ``replay`` and the journal readers.
"""

from __future__ import annotations

from ._spawn import leave_working_folder_off_sys_path

leave_working_folder_off_sys_path()  # first: before any import an app file could shadow

from . import _guard  # noqa: E402
from ._api import effect as effect
from ._api import host as host
from ._api import import_service as import_service
from ._api import phase as phase
from ._app import App as App
from ._build import BuildOutput as BuildOutput
from ._journal import JournalContents as JournalContents
from ._journal import JournalWriter as JournalWriter
from ._journal import RepairReport as RepairReport
from ._journal import TornTail as TornTail
from ._journal import read_journal as read_journal
from ._journal import repair_journal as repair_journal
from ._proxy import ServiceProxy as ServiceProxy
from ._replay import ReplayedService as ReplayedService
from ._replay import SourceDifference as SourceDifference
from ._replay import replay as replay
from ._state import service_state as service_state
from ._version import VERSION as __version__
from .errors import (
    DeploymentError as DeploymentError,
    DeterminismError as DeterminismError,
    DistdevError as DistdevError,
    ExportError as ExportError,
    HashSeedError as HashSeedError,
    JournalCorruptError as JournalCorruptError,
    JournalError as JournalError,
    JournalFormatError as JournalFormatError,
    MembraneError as MembraneError,
    PhaseError as PhaseError,
    ReplayDivergenceError as ReplayDivergenceError,
    ServiceError as ServiceError,
    ServiceIdClashError as ServiceIdClashError,
    ServiceLoadError as ServiceLoadError,
    ServiceUnavailableError as ServiceUnavailableError,
)

_guard.install()
ServiceProxy.__module__ = __name__  # annotations and reprs say distdev.ServiceProxy

__all__ = [
    "import_service",
    "host",
    "effect",
    "phase",
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
    "HashSeedError",
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
    "__version__",
]
