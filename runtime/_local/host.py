"""A service process of the local engine: restore one service from its journal, then serve it.

Started by the supervisor as ``python -m distdev._local.host --state STATE --id SERVICE`` under
the deployment's hash seed. It needs the state journal and the deployment file only: the code
comes from the journal's bundle, not from the application's source tree.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import threading
from pathlib import Path
from typing import Callable

from .._http import Ingress
from .._journal import JournalWriter
from .._replay import ReplayedService, Transport, replay
from .._service import Service
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


@dataclasses.dataclass
class LiveService:
    """A service restored from its state journal that journals again, durably."""

    restored: ReplayedService
    writer: JournalWriter
    commit: GroupCommit
    dedup: DedupTable

    @property
    def service(self) -> Service:
        return self.restored.service


def go_live(journal: Path, transport: Transport, *, durable: bool,
            log: Callable[[str], None]) -> LiveService:
    """Restore a service from its state journal (cutting a torn tail and an unfinished call
    aside), then let it journal again and reach the others through ``transport``. Shared by
    every engine: what a restart restores must not depend on where the service runs."""
    contents = restorable_journal(journal, log)
    restored = replay(contents)
    log(f"restored from {len(contents.events)} journal records")
    writer = JournalWriter.append_to(journal)
    commit = GroupCommit(writer, enabled=durable)
    restored.service.tape = Recorder(writer)
    restored.service.phase = "runtime"
    restored.connect(transport, after_call=commit.wait_durable)
    return LiveService(restored, writer, commit, DedupTable.from_journal(contents))


def serve(state: Path, service_id: str, *, durable: bool = True) -> None:
    deployment = Deployment.load(state)
    entry = deployment.services[service_id]
    network = Network(service_id, {k: v.address for k, v in deployment.services.items()},
                      deployment.exports, deployment.secret())
    live = go_live(deployment.journal(service_id), network, durable=durable, log=_log)
    restored, writer, service = live.restored, live.writer, live.service

    server = ServiceServer(service, entry.address, deployment.secret(), live.commit,
                           live.dedup, _log)
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
