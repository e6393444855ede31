"""A service process of the local engine: restore one service from its journal, then serve it.

Started by the supervisor as ``python -P -m distdev.engines.local._host --state STATE --id
SERVICE --keys KEYFILE`` under the deployment's hash seed; an instance of a function is started
the same way by its pool (``_pool``), with ``--instance N`` and the journal, address and ingress
port of its own. It needs the state journal, the
deployment file and its own key file only: the code comes from the journal's bundle, not from
the application's source tree. Before it serves its first call it confines itself (``_confine``):
from then on nothing in the process can read the build's secret or any key file, its own
included (its keys are in memory).
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import threading
from pathlib import Path

from ...build import APP_FILES
from ...errors import DistdevError
from .._client import Network
from .._confine import confine
from .._dispatch import InstanceNetwork
from .._keys import read_key_file
from .._live import ServedService, go_live
from ._deployment import READY, Deployment, log_line
from ._resources import serve_resource


@dataclasses.dataclass(frozen=True)
class InstanceSpec:
    """One instance of a function, as its pool starts it: where it journals and listens."""

    number: int
    journal: Path
    address: str
    http: int | None


def serve(state: Path, service_id: str, keys: Path, *, durable: bool = True,
          instance: InstanceSpec | None = None) -> None:
    deployment = Deployment.load(state)
    if service_id in deployment.resources:  # a resource: no journal to restore
        stop_resource = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop_resource.set())
        serve_resource(deployment, service_id, read_key_file(keys, service_id), stop_resource,
                       log_line, READY)
        return
    entry = deployment.services[service_id]
    addresses = {k: v.address for k, v in deployment.services.items()}
    key_material = read_key_file(keys, service_id)
    network = (Network(service_id, addresses, deployment.exports, key_material)
               if instance is None else
               InstanceNetwork(service_id, addresses, deployment.exports, key_material,
                               instance=instance.number))
    journal = deployment.journal(service_id) if instance is None else instance.journal
    address = entry.address if instance is None else instance.address
    http = entry.http if instance is None else instance.http
    # The restore runs the service's code against its journal (effects served from it, any
    # other IO refused): nothing it does reaches a file. Confined only after it, the process
    # can read the code the restore wrote to its cache, wherever that is.
    live = go_live(journal, network, durable=durable,
                   app_files=Path(deployment.out) / APP_FILES, log=log_line,
                   secrets=network.reveal)
    confine(deployment.key_material(), log_line)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    served = ServedService(live, network, address, log_line,
                           ingress_ports=() if http is None else (http,))
    log_line(READY)
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
    parser.add_argument("--instance", type=int, help="a function's instance: its number")
    parser.add_argument("--journal", type=Path, help="the instance's journal")
    parser.add_argument("--address", help="the instance's own address")
    parser.add_argument("--http", type=int, help="the instance's own ingress port")
    args = parser.parse_args(argv)
    instance = None
    if args.instance is not None:
        instance = InstanceSpec(args.instance, args.journal, args.address, args.http)
    try:
        serve(args.state, args.id, args.keys, durable=not args.no_sync, instance=instance)
    except DistdevError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
