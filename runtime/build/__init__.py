"""The build: running the root service's top level, which creates every other service, and
writing what it produced (``OUT/``): each service's journal and bundle, the typed manifest
(``_manifest``), the deployment secret.

``App`` (``_app``) keeps the built services live in this process afterwards — the one-process
host behind ``distdev dev``, the debugger and the test helpers: a call between services runs on
the caller's thread, through both services' tapes.

Layer: above ``replayer`` and ``service``.
"""

from __future__ import annotations

from ._app import App as App
from ._manifest import ExportSpec as ExportSpec
from ._manifest import HostSpec as HostSpec
from ._manifest import Manifest as Manifest
from ._manifest import ParamSpec as ParamSpec
from ._manifest import ResourceSpec as ResourceSpec
from ._manifest import ServiceSpec as ServiceSpec
from ._manifest import read_manifest as read_manifest
from ._output import APP_FILES as APP_FILES
from ._output import BuildOutput as BuildOutput
from ._output import held_proxies as held_proxies

__all__ = ["App", "ExportSpec", "HostSpec", "Manifest", "ParamSpec", "ResourceSpec", "ServiceSpec",
           "read_manifest", "APP_FILES", "BuildOutput", "held_proxies"]
