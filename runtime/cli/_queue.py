"""``distdev queue ls|retry``: a running deployment's queues and topics, and their dead letters.

Both ask the resource itself (its ``stats``, ``dead_letters`` and ``retry`` exports, as the
operator, the way ``distdev call`` does): the process that owns a queue's store is the only one
that writes it, so the command line never opens the file of a running queue.
"""

from __future__ import annotations

import argparse
import json
import uuid
from typing import Any

from rich.table import Table

from ..engines import Connection, engine
from ..errors import DistdevError
from ..service import CallFailed
from ._render import Out

MESSAGING_KINDS = ("queue", "topic")


def messaging_ids(report: dict[str, Any]) -> list[str]:
    """The queues and topics of a deployment, from its ``status`` report."""
    return [row["id"] for row in report.get("services", [])
            if row.get("kind") in MESSAGING_KINDS]


def ask(args: argparse.Namespace, resource_id: str, export: str, *call_args: Any) -> Any:
    """Call one export of a queue or topic as the operator; its result as plain values."""
    address, operator = engine(args.engine).target(args.state, resource_id)
    try:
        connection = Connection(address, operator, "", 60.0, service=resource_id)
    except OSError as exc:
        raise DistdevError(f"{resource_id} is not reachable at {address} ({exc}); is the "
                           "deployment up? (`distdev status`)") from None
    try:
        return connection.call("", uuid.uuid4().hex, None, export, list(call_args), {})
    except CallFailed as failed:
        raise DistdevError(f"{resource_id}.{export} failed: {failed.info.message}") from None
    finally:
        connection.close()


def _chosen(args: argparse.Namespace) -> list[str]:
    known = messaging_ids(engine(args.engine).status(args.state))
    if args.resource is None:
        return known
    if args.resource not in known:
        listed = ", ".join(known) or "none"
        raise DistdevError(f"{args.resource} is no queue or topic of the deployment in "
                           f"{args.state} (its queues and topics: {listed})")
    return [args.resource]


def ls(args: argparse.Namespace, out: Out) -> int:
    """``distdev queue ls [ID]``: each queue's and topic's counts, then its dead letters."""
    report = []
    for resource_id in _chosen(args):
        stats = ask(args, resource_id, "stats")
        dead = ask(args, resource_id, "dead_letters")
        report.append({"id": resource_id, **stats, "dead_letters": dead})
    if out.json_mode:
        out.json(report)
        return 0
    if not report:
        out.info(f"the deployment in {args.state} has no queue or topic")
        return 0
    print_counts(out, report)
    return 0


def status_of(args: argparse.Namespace, report: dict[str, Any]) -> list[dict[str, Any]]:
    """For ``distdev status``: each running queue's and topic's counts and dead letters (one
    that does not answer now says so instead)."""
    found: list[dict[str, Any]] = []
    if not report.get("running"):
        return found
    for resource_id in messaging_ids(report):
        try:
            found.append({"id": resource_id, **ask(args, resource_id, "stats"),
                          "dead_letters": ask(args, resource_id, "dead_letters")})
        except DistdevError as exc:
            found.append({"id": resource_id, "error": str(exc)})
    return found


def print_counts(out: Out, report: list[dict[str, Any]]) -> None:
    """The counts table, then the dead letters, of queues and topics as ``ask`` found them."""
    answered = [r for r in report if "error" not in r]
    for resource in report:
        if "error" in resource:
            out.warn(resource["error"])
    if answered:
        out.print(_counts_table(answered))
    letters = [(r["id"], d) for r in answered for d in r["dead_letters"]]
    if letters:
        out.print(_dead_table(letters))
        out.info("`distdev queue retry ID [MESSAGE_ID]` delivers them again")


def retry(args: argparse.Namespace, out: Out) -> int:
    """``distdev queue retry ID [MESSAGE_ID]``: dead letters get their attempts again."""
    [resource_id] = _chosen(args)
    retried = ask(args, resource_id, "retry", args.message_id)
    if retried == 0:
        which = "no dead letter" if args.message_id is None else \
            f"no dead letter with id {args.message_id}"
        raise DistdevError(f"{resource_id} has {which}; `distdev queue ls {resource_id}` lists "
                           "them")
    if out.json_mode:
        out.json({"id": resource_id, "retried": retried})
    else:
        out.info(f"{resource_id}: {retried} message(s) will be delivered again")
    return 0


def _counts_table(report: list[dict[str, Any]]) -> Table:
    table = Table("resource", "kind", "subscriber", "messages", "delivered", "pending",
                  "in flight", "dead", box=None)
    for resource in report:
        for group, counts in resource["groups"].items():
            table.add_row(resource["id"], resource["kind"], group, str(resource["messages"]),
                          str(counts["delivered"]), str(counts["pending"]),
                          str(counts["in_flight"]), str(counts["dead"]))
    return table


def _dead_table(letters: list[tuple[str, dict[str, Any]]]) -> Table:
    table = Table("resource", "id", "subscriber", "attempts", "last error", "message", box=None)
    for column in (table.columns[4], table.columns[5]):
        column.overflow = "fold"
    for resource_id, letter in letters:
        message = json.dumps(letter["message"], ensure_ascii=False)
        table.add_row(resource_id, str(letter["id"]), letter["subscriber"],
                      str(letter["attempts"]), letter["error"], message[:200])
    return table
