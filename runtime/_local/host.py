"""A service process of the local engine: restore one service from its journal, then serve it.

Started by the supervisor as ``python -m distdev._local.host --state STATE --id SERVICE`` under
the deployment's hash seed. It needs the state journal and the deployment file only: the code
comes from the journal's bundle, not from the application's source tree.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from .._http import Ingress
from .._journal import JournalWriter
from .._replay import replay
from .._tape import Recorder
from ..errors import DistdevError
from .client import Network
from .deployment import Deployment
from .durable import GroupCommit
from .restore import DedupTable, restorable_journal
from .server import ServiceServer

READY = "distdev-service-ready"


def _log(message: str) -> None:
    print(message, flush=True)


def serve(state: Path, service_id: str, *, durable: bool = True) -> None:
    deployment = Deployment.load(state)
    entry = deployment.services[service_id]
    journal = deployment.journal(service_id)
    contents = restorable_journal(journal, _log)
    restored = replay(contents)
    _log(f"restored from {len(contents.events)} journal records")

    writer = JournalWriter.append_to(journal)
    commit = GroupCommit(writer, enabled=durable)
    service = restored.service
    service.tape = Recorder(writer)
    service.phase = "runtime"
    network = Network(service_id, {k: v.address for k, v in deployment.services.items()},
                      deployment.exports, deployment.secret())
    restored.connect(network, after_call=commit.wait_durable)

    server = ServiceServer(service, entry.address, deployment.secret(), commit,
                           DedupTable.from_journal(contents), _log)
    ingress = None
    if entry.http is not None:
        ingress = Ingress(restored.proxy(), service.exports(), entry.http)
        ingress.start()
        _log(f"serving the ingress on {ingress.url}")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, name="distdev-server", daemon=True)
    thread.start()
    _log(READY)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    server.shutdown()
    if ingress is not None:
        ingress.stop()
    network.close()
    writer.sync()
    writer.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m distdev._local.host")
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
