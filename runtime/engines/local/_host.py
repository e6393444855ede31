"""A service process of the local engine: restore one service from its journal, then serve it.

Started by the supervisor as ``python -P -m distdev.engines.local._host --state STATE --id
SERVICE`` under the deployment's hash seed. It needs the state journal and the deployment file
only: the code comes from the journal's bundle, not from the application's source tree.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from ...errors import DistdevError
from .._client import Network
from .._live import ServedService, go_live
from ._deployment import Deployment

READY = "distdev-service-ready"


def _log(message: str) -> None:
    print(message, flush=True)


def serve(state: Path, service_id: str, *, durable: bool = True) -> None:
    deployment = Deployment.load(state)
    entry = deployment.services[service_id]
    network = Network(service_id, {k: v.address for k, v in deployment.services.items()},
                      deployment.exports, deployment.secret())
    live = go_live(deployment.journal(service_id), network, durable=durable, log=_log)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    served = ServedService(live, network, entry.address, deployment.secret(), _log,
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
    parser.add_argument("--no-sync", action="store_true", help="journal without fdatasync")
    args = parser.parse_args(argv)
    try:
        serve(args.state, args.id, durable=not args.no_sync)
    except DistdevError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
