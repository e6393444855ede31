"""The engines' commands: up and deploy, down, status, call (``--engine local|ray``). Each
goes through the ``Engine`` protocol; only ``up`` in the foreground is the local engine's own."""

from __future__ import annotations

import argparse
import base64
import json
import uuid
from typing import Any

from cbor2 import CBORTag
from rich.table import Table

from ..engines import Connection, DeployOptions, engine
from ..engines.local import supervisor
from ..errors import DistdevError
from ..membrane import ErrorInfo
from ..membrane import _values as m
from ..service import CallFailed
from ._render import Out


def up(args: argparse.Namespace, out: Out) -> int:
    options = DeployOptions(port=args.port, durable=not args.no_sync, tcp=args.tcp)
    if args.detach:
        out.info(engine("local").deploy(args.out, args.state, options, out.info))
        return 0

    def echo(line: str) -> None:
        print(line, flush=True)

    supervisor.run_foreground(args.out, args.state, "tcp" if args.tcp else "unix", args.port,
                              echo, durable=options.durable)
    return 0


def deploy(args: argparse.Namespace, out: Out) -> int:
    """``distdev deploy OUT --engine local|ray``: start a deployment in the background."""
    if args.engine == "local" and args.address is not None:
        raise DistdevError("--address names a Ray cluster; use it with --engine ray")
    options = DeployOptions(port=args.port, durable=not args.no_sync, address=args.address)
    out.info(engine(args.engine).deploy(args.out.resolve(), args.state.resolve(), options,
                                        out.info))
    return 0


def down(args: argparse.Namespace, out: Out) -> int:
    out.info(engine(args.engine).down(args.state, out.info))
    return 0


def status(args: argparse.Namespace, out: Out) -> int:
    report = engine(args.engine).status(args.state)
    if out.json_mode:
        out.json(report)
    else:
        out.print(_status_table(report["services"]))
    return 0


def _status_table(rows: list[dict[str, Any]]) -> Table:
    """Each service on a row; ids and addresses fold rather than being cut on a terminal."""
    table = Table("service", "state", "pid", "events", "restarts", "address", "http",
                  "last error", box=None)
    for column in (table.columns[0], table.columns[5], table.columns[6], table.columns[7]):
        column.overflow = "fold"
    for row in rows:
        http = row.get("http")
        url = f"http://127.0.0.1:{http}" if isinstance(http, int) else http
        state = row.get("state") or ("ready" if row["alive"] else "down")
        table.add_row(row["id"], state, str(row["pid"] or "-"), str(row["events"]),
                      str(row["restarts"]), row["address"] or "-", url or "-",
                      row.get("last_error") or "-")
    return table


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
    address, operator = engine(args.engine).target(args.state, service_id)
    try:
        connection = Connection(address, operator, "", None, service=service_id)
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
