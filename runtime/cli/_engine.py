"""The engines' commands: up and deploy, down, status, call (``--engine local|ray``). Each
goes through the ``Engine`` protocol; only ``up`` in the foreground is the local engine's own."""

from __future__ import annotations

import argparse
import json
import re
import uuid
from typing import Any

from rich.table import Table

from ..engines import Connection, DeployOptions, engine
from ..engines.local import supervisor
from ..errors import DistdevError
from ..membrane import ErrorInfo, json_call, json_ready, wire_to_json
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
        if row.get("hosting") == "function":  # a function: how many of its instances run
            state += f" ({len(row.get('instances') or [])}/{row['max_instances']} instances)"
        table.add_row(row["id"], state, str(row["pid"] or "-"), str(row["events"]),
                      str(row["restarts"]), row["address"] or "-", url or "-",
                      row.get("last_error") or "-")
    return table


def call(args: argparse.Namespace, out: Out) -> int:
    service_id, dot, export = args.target.rpartition(".")
    if not dot or not service_id or not export:
        raise DistdevError(f"{args.target!r} is not SERVICE_ID.EXPORT (e.g. app/orders.place)")
    positional, named = call_arguments(args.args)
    address, operator = engine(args.engine).target(args.state, service_id)
    try:
        connection = Connection(address, operator, "", None, service=service_id)
    except OSError as exc:
        raise DistdevError(f"{service_id} is not reachable at {address} ({exc}); is the "
                           "deployment up? (`distdev status`)") from None
    try:
        # JSON as typed: the callee converts it to its parameters' annotated types.
        result = connection.call("", uuid.uuid4().hex, None, export,
                                 json_call(positional, named), {})
    except CallFailed as failed:
        info: ErrorInfo = failed.info
        out.error(info.type, info.message)
        if out.json_mode:
            out.json({"error": info.type, "message": info.message,
                      **{k: json_ready(v) for k, v in info.attributes.items()
                         if k in ("status", "detail")}})
        return 1
    finally:
        connection.close()
    out.json_text(wire_to_json(result))
    return 0


KEYWORD = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", re.S)
"""``NAME=VALUE``: a keyword argument (any other argument is positional)."""


def call_arguments(texts: list[str]) -> tuple[list[Any], dict[str, Any]]:
    """Positional arguments are JSON; ``NAME=VALUE`` is a keyword argument whose VALUE is JSON
    if it parses as JSON, else the text itself (``user=ann`` is the string "ann",
    ``cents=1200`` the number, ``tags='["a"]'`` a list; ``code='"007"'`` keeps a string that
    looks like a number)."""
    positional: list[Any] = []
    named: dict[str, Any] = {}
    for i, text in enumerate(texts, 1):
        keyword = KEYWORD.fullmatch(text)
        if keyword is not None:
            name, value = keyword.groups()
            if name in named:
                raise DistdevError(f"{name}= is given twice; give each keyword argument once")
            try:
                named[name] = json.loads(value)
            except json.JSONDecodeError:
                named[name] = value
            continue
        try:
            positional.append(json.loads(text))
        except json.JSONDecodeError as exc:
            raise DistdevError(
                f"argument {i} ({text!r}) is not JSON ({exc}); quote strings: '\"ann\"', or "
                "name the argument: NAME=ann"
            ) from None
    return positional, named
