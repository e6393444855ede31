"""The engines' commands: up and deploy, down, status, call (``--engine local|ray``)."""

from __future__ import annotations

import argparse
import base64
import json
import uuid
from pathlib import Path
from typing import Any

from cbor2 import CBORTag
from rich.table import Table

from .. import _marshal as m
from .._events import ErrorInfo
from .._journal import read_journal
from .._local import supervisor
from .._local.client import Connection
from .._local.deployment import Deployment
from .._tape import CallFailed
from ..errors import DistdevError, JournalError
from ._render import Out


def up(args: argparse.Namespace, out: Out) -> int:
    transport = "tcp" if args.tcp else "unix"
    if args.detach:
        argv = ["up", str(args.out), "--state", str(args.state)]
        argv += ["--tcp"] if args.tcp else []
        argv += ["--port", str(args.port)] if args.port is not None else []
        argv += ["--no-sync"] if args.no_sync else []
        deployment = supervisor.start_detached(argv, args.state)
        out.info(f"deployment up in the background: {_services(len(deployment.services))} "
                 f"(supervisor pid {deployment.supervisor}); `distdev down` stops it")
        return 0

    def echo(line: str) -> None:
        print(line, flush=True)

    supervisor.run_foreground(args.out, args.state, transport, args.port, echo,
                              durable=not args.no_sync)
    return 0


def _services(n: int) -> str:
    return f"{n} service" if n == 1 else f"{n} services"


def deploy(args: argparse.Namespace, out: Out) -> int:
    """``distdev deploy OUT --engine local|ray``: start a deployment in the background."""
    if args.engine == "local":
        if args.address is not None:
            raise DistdevError("--address names a Ray cluster; use it with --engine ray")
        args.detach, args.tcp = True, False
        return up(args, out)
    from .._ray import deploy as ray_deploy

    deployment = ray_deploy.deploy(args.out, args.state, args.address, args.port,
                                   not args.no_sync, out.info)
    where = ("a local Ray instance started for it" if deployment.head_pid is not None
             else f"Ray at {deployment.address}")
    out.info(f"deployment up on {where}: {_services(len(deployment.services))} as actors; "
             f"`distdev down --engine ray --state {args.state}` stops it")
    return 0


def _ray(connects: bool = True) -> Any:
    """The Ray engine's commands, or an error that says how to install Ray. Commands that do
    not connect to Ray (status, call) only check that it is installed."""
    from .._ray import cluster, deploy

    if connects:
        cluster.require_ray()
    else:
        cluster.check_ray_installed()
    return deploy


def down(args: argparse.Namespace, out: Out) -> int:
    if args.engine == "ray":
        stopped = _ray().down(args.state, out.info)
        out.info(f"Ray deployment in {args.state} stopped ({stopped} actors)" if stopped
                 else "no actor was running")
        return 0
    stopped = supervisor.down(args.state, out.info)
    out.info(f"deployment in {args.state} stopped" if stopped else "nothing was running")
    return 0


def _status_table(rows: list[dict[str, Any]]) -> Table:
    """Each service on a row; ids and addresses fold rather than being cut on a terminal."""
    table = Table("service", "pid", "alive", "events", "restarts", "address", "http", box=None)
    for column in (table.columns[0], table.columns[5], table.columns[6]):
        column.overflow = "fold"
    for row in rows:
        http = row.get("http")
        url = f"http://127.0.0.1:{http}" if isinstance(http, int) else http
        table.add_row(row["id"], str(row["pid"] or "-"), "yes" if row["alive"] else "no",
                      str(row["events"]), str(row["restarts"]), row["address"] or "-",
                      url or "-")
    return table


def status(args: argparse.Namespace, out: Out) -> int:
    if args.engine == "ray":
        report = _ray(connects=False).status(args.state)
    else:
        report = _local_status(args.state)
    if out.json_mode:
        out.json(report)
    else:
        out.print(_status_table(report["services"]))
    return 0


def _local_status(state: Path) -> dict[str, Any]:
    deployment = Deployment.load(state)
    rows: list[dict[str, Any]] = []
    for entry in deployment.services.values():
        try:
            events: int | None = len(read_journal(deployment.journal(entry.id)).events)
        except JournalError:
            events = None
        rows.append({"id": entry.id, "pid": entry.pid, "alive": supervisor.pid_alive(entry.pid),
                     "events": events, "restarts": entry.restarts, "address": entry.address,
                     "http": entry.http})
    return {"supervisor": deployment.supervisor,
            "running": supervisor.pid_alive(deployment.supervisor), "services": rows}


def call(args: argparse.Namespace, out: Out) -> int:
    service_id, dot, export = args.target.rpartition(".")
    if not dot or not service_id or not export:
        raise DistdevError(f"{args.target!r} is not SERVICE_ID.EXPORT (e.g. app/orders.place)")
    values = []
    for i, text in enumerate(args.args, 1):
        try:
            values.append(json.loads(text))
        except json.JSONDecodeError as exc:
            raise DistdevError(
                f"argument {i} ({text!r}) is not JSON ({exc}); quote strings: '\"ann\"'"
            ) from None
    address, secret = _call_target(args, service_id)
    try:
        connection = Connection(address, secret, "", None)
    except OSError as exc:
        raise DistdevError(f"{service_id} is not reachable at {address} ({exc}); is the "
                           "deployment up? (`distdev status`)") from None
    try:
        result = connection.call("", uuid.uuid4().hex, None, export,
                                 [m.to_wire(v, f"argument {i}") for i, v in enumerate(values)],
                                 {})
    except CallFailed as failed:
        info: ErrorInfo = failed.info
        out.error(info.type, info.message)
        if out.json_mode:
            out.json({"error": info.type, "message": info.message})
        return 1
    finally:
        connection.close()
    out.json(wire_json(result))
    return 0


def _call_target(args: argparse.Namespace, service_id: str) -> tuple[str, bytes]:
    """Where the service listens, and the deployment's secret."""
    if args.engine == "ray":
        address, secret = _ray(connects=False).service_address(args.state, service_id)
        return address, secret
    deployment = Deployment.load(args.state)
    entry = deployment.services.get(service_id)
    if entry is None:
        raise DistdevError(f"no service {service_id!r} (services: "
                           f"{', '.join(deployment.services)})")
    return entry.address, deployment.secret()


def wire_json(wire: Any) -> Any:
    """A wire value as JSON-ready data (for printing results outside any service)."""
    if type(wire) is list:
        return [wire_json(v) for v in wire]
    if type(wire) is dict:
        return {k if isinstance(k, str) else json.dumps(wire_json(k)): wire_json(v)
                for k, v in wire.items()}
    if type(wire) is bytes:
        return {"$bytes": base64.b64encode(wire).decode()}
    if type(wire) is not CBORTag:
        return wire
    tag, v = wire.tag, wire.value
    if tag in (m.TAG_TUPLE, m.TAG_SET, m.TAG_FROZENSET):
        return [wire_json(x) for x in v]
    if tag == m.TAG_UUID:
        return str(uuid.UUID(bytes=bytes(v)))
    if tag == m.TAG_PROXY:
        return {"$service": v}
    if tag == m.TAG_TIMEDELTA:
        return v[0] * 86400 + v[1] + v[2] / 1e6
    if tag == m.TAG_ENUM:
        return wire_json(v[1])
    if tag == m.TAG_OBJECT:
        return {k: wire_json(x) for k, x in v[1].items()}
    return v  # datetime, date, time and Decimal travel as their ISO text
