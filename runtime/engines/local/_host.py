"""A service process of the local engine: restore one service from its journal, then serve it.

Started by the supervisor as ``python -P -m distdev.engines.local._host --state STATE --id
SERVICE --keys KEYFILE`` under the deployment's hash seed. It needs the state journal, the
deployment file and its own key file only: the code comes from the journal's bundle, not from
the application's source tree. Before it serves its first call it confines itself (``_confine``):
from then on nothing in the process can read the build's secret or any key file, its own
included (its keys are in memory).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from ...build import APP_FILES
from ...errors import DistdevError
from .._client import Network
from .._confine import confine
from .._keys import read_key_file
from .._live import ServedService, go_live
from ._deployment import Deployment
from ._resources import serve_resource

READY = "distdev-service-ready"


def _log(message: str) -> None:
    print(message, flush=True)


def serve(state: Path, service_id: str, keys: Path, *, durable: bool = True) -> None:
    deployment = Deployment.load(state)
    if service_id in deployment.resources:  # a resource: no journal to restore
        stop_resource = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop_resource.set())
        serve_resource(deployment, service_id, read_key_file(keys, service_id), stop_resource,
                       _log, READY)
        return
    entry = deployment.services[service_id]
    network = Network(service_id, {k: v.address for k, v in deployment.services.items()},
                      deployment.exports, read_key_file(keys, service_id))
    # The restore runs the service's code against its journal (effects served from it, any
    # other IO refused): nothing it does reaches a file. Confined only after it, the process
    # can read the code the restore wrote to its cache, wherever that is.
    live = go_live(deployment.journal(service_id), network, durable=durable,
                   app_files=Path(deployment.out) / APP_FILES, log=_log,
                   secrets=network.reveal)
    confine(deployment.key_material(), _log)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    served = ServedService(live, network, entry.address, _log,
                           ingress_ports=() if entry.http is None else (entry.http,))
    _log(READY)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    served.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m distdev.engines.local._host")
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--id", required=True)
    parser.add_argument("--keys", type=Path, required=True, help="this service's key file")
    parser.add_argument("--no-sync", action="store_true", help="journal without fdatasync")
    args = parser.parse_args(argv)
    try:
        serve(args.state, args.id, args.keys, durable=not args.no_sync)
    except DistdevError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
