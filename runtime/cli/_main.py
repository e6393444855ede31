"""Argument parsing and the exit-code contract.

Exit codes: 0 ok; 1 a user error (a message, no Python traceback); 2 a journal that is damaged
or that the code diverges from.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import DistdevError, JournalError, ReplayDivergenceError
from . import _check, _commands, _engine, _queue, _upgrade
from ._render import Out

EXIT_OK, EXIT_USER, EXIT_DAMAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="distdev",
        description="Build, run, replay and inspect distdev applications.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("build", help="run the build and write journals, bundles and a manifest")
    p.add_argument("app", type=Path, metavar="APP.py")
    p.add_argument("-o", "--out", type=Path, default=Path(".distdev/build"))
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    p.set_defaults(handler=_commands.build)

    p = sub.add_parser("dev", help="build and keep every service live in this process")
    p.add_argument("app", type=Path, metavar="APP.py")
    p.add_argument("--watch", action="store_true",
                   help="when a .py file changes, reload the services it is code of: each "
                   "replays its journal against the new code and keeps its state")
    p.add_argument("--port", type=int, help="serve the ingress on this port (0: any free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default loopback)")
    p.add_argument("-o", "--out", type=Path, default=Path(".distdev/build"))
    p.add_argument("--state", type=Path, default=Path(".distdev/dev-state"))
    p.set_defaults(handler=_commands.dev)

    p = sub.add_parser("debug", help="print the launch configuration for debugging an app")
    p.add_argument("target", type=Path, metavar="APP.py|JOURNAL")
    p.set_defaults(handler=_commands.debug)

    p = sub.add_parser("replay", help="restore a service from its journal and print its state")
    p.add_argument("journal", type=Path, metavar="JOURNAL")
    p.add_argument("--until", type=int, metavar="SEQ", help="stop after event SEQ")
    p.add_argument("--source", type=Path, metavar="DIR", help="replay this code instead")
    p.add_argument("--secrets", type=Path, metavar="DIR",
                   help="the secret store (STATE/secrets, OUT/secrets) of a service that "
                   "revealed a secret: its journal holds a reference, never the value")
    p.add_argument("--json", action="store_true")
    p.add_argument("--interactive", action="store_true", help="open a prompt in the service")
    p.set_defaults(handler=_commands.replay)

    p = sub.add_parser("inspect", help="list a journal's events")
    p.add_argument("journal", type=Path, metavar="JOURNAL")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_commands.inspect)

    p = sub.add_parser("check", help="replay journals against the code: compatible, or "
                       "where it diverges (exit 2)")
    p.add_argument("journals", nargs="+", metavar="JOURNAL|DIR",
                   help="journal files, or folders holding them (a copied state folder)")
    p.add_argument("--source", type=Path, metavar="APP_DIR",
                   help="the application to check (default: each journal's own code)")
    p.add_argument("--secrets", type=Path, metavar="DIR",
                   help="the secret store of the journals' deployment (STATE/secrets), for "
                   "services that revealed a secret")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_check.check)

    p = sub.add_parser("graph", help="print the service tree with hosting and exports")
    p.add_argument("target", type=Path, metavar="APP.py|OUT")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_commands.graph)

    p = sub.add_parser("up", help="run every service of a build as its own process")
    p.add_argument("out", type=Path, nargs="?", default=Path(".distdev/build"), metavar="OUT")
    p.add_argument("--state", type=Path, default=Path(".distdev/state"))
    p.add_argument("--detach", action="store_true", help="run in the background")
    p.add_argument("--tcp", action="store_true", help="loopback TCP instead of Unix sockets")
    p.add_argument("--port", type=int, help="serve the root's ingress on this port instead")
    p.add_argument("--no-sync", action="store_true",
                   help="journal without fdatasync (faster; a crash may lose recent calls)")
    p.add_argument("--postgres", action="append", metavar="[ID=]DSN",
                   help="serve a resources.sql(engine='postgres') from this PostgreSQL server "
                   "instead of one distdev runs in the state folder (ID: which resource, when "
                   "the build has several); a database distdev has not used yet starts with "
                   "what the build wrote")
    p.set_defaults(handler=_engine.up)

    p = sub.add_parser(
        "upgrade", help="move a deployment to a new build, keeping every service's state",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Move the deployment in --state to the build in OUT, keeping its state.",
        epilog="""Every service whose code changed has its whole journal replayed against the new
code first, while the deployment still serves; if any diverges, nothing is changed and the
command exits 2, naming per service the first divergence (the event, what the journal holds,
what the new code did, and where). Otherwise the deployment stops, the new code is appended to
the changed services' journals, services the new build no longer has are retired (their state
moved under STATE/retired/, never deleted), and the new build starts over the state folder:
changed services restore from their journals with the new code, new services start from the
build. A deployment that was not running is only upgraded; start it with `distdev up OUT`.

example:
  distdev build app.py -o .distdev/build-2
  distdev upgrade .distdev/build-2 --state .distdev/state""")
    p.add_argument("out", type=Path, metavar="OUT", help="the new build")
    p.add_argument("--state", type=Path, default=Path(".distdev/state"),
                   help="the deployment's state folder (default .distdev/state)")
    p.add_argument("--port", type=int, help="serve the root's ingress on this port instead")
    sync = p.add_mutually_exclusive_group()
    sync.add_argument("--no-sync", action="store_true",
                      help="restart journaling without fdatasync (default: as the deployment "
                           "was started)")
    sync.add_argument("--sync", action="store_true",
                      help="restart journaling with fdatasync (default: as the deployment was "
                           "started)")
    p.add_argument("--json", action="store_true")
    _engine_option(p)
    p.set_defaults(handler=_upgrade.upgrade)

    p = sub.add_parser("deploy", help="deploy a build in the background on an engine")
    p.add_argument("out", type=Path, nargs="?", default=Path(".distdev/build"), metavar="OUT")
    _engine_option(p)
    p.add_argument("--address", metavar="ADDR",
                   help="the Ray cluster to deploy on (default: start a local Ray instance)")
    p.add_argument("--state", type=Path, default=Path(".distdev/state"))
    p.add_argument("--port", type=int, help="serve the root's ingress on this port instead")
    p.add_argument("--no-sync", action="store_true",
                   help="journal without fdatasync (faster; a crash may lose recent calls)")
    p.set_defaults(handler=_engine.deploy)

    p = sub.add_parser("down", help="stop a deployment started by `distdev up` or `deploy`")
    p.add_argument("--state", type=Path, default=Path(".distdev/state"))
    _engine_option(p)
    p.set_defaults(handler=_engine.down)

    p = sub.add_parser("status", help="list a deployment's services and their processes")
    p.add_argument("--state", type=Path, default=Path(".distdev/state"))
    p.add_argument("--json", action="store_true")
    _engine_option(p)
    p.set_defaults(handler=_engine.status)

    p = sub.add_parser(
        "call", help="call an export of a running deployment",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Call an export of a running deployment and print its result as JSON.",
        epilog="""arguments:
  JSON          a positional argument, as JSON: 1200, '"ann"', '{"amount": "9.50"}'
  NAME=VALUE    a keyword argument; VALUE is JSON if it parses as JSON, else the text
                itself: user=ann is "ann", cents=1200 is 1200, code='"007"' stays a string

The service converts each value to its parameter's annotation, as its HTTP ingress does: a
JSON object to a dataclass or msgspec Struct, a string to a datetime, UUID or Decimal, an
array to a set or tuple, {"$service": ID} to a proxy. Results print by the same rule
(datetimes in ISO 8601, Decimals as strings, sets and tuples as arrays, Enums by value).
An argument that does not fit, an unknown export or an error the service raised is one
line on stderr and exit status 1.

example:
  distdev call app/billing.charge '"ann"' 1200
  distdev call app.place_order user=ann item=book quantity=2""")
    p.add_argument("target", metavar="SERVICE_ID.EXPORT")
    p.add_argument("args", nargs="*", metavar="JSON|NAME=VALUE")
    p.add_argument("--state", type=Path, default=Path(".distdev/state"))
    p.add_argument("--json", action="store_true")
    _engine_option(p)
    p.set_defaults(handler=_engine.call)

    queue = sub.add_parser(
        "queue", help="a running deployment's queues and topics, and their dead letters",
        description="Show the queues and topics of a running deployment (messages delivered, "
        "pending, in flight and dead-lettered per consumer or subscriber), and deliver "
        "dead-lettered messages again. A message is dead-lettered once its consumer's code "
        "has raised on it max_attempts times (resources.queue(name, max_attempts=N)).")
    qsub = queue.add_subparsers(dest="queue_command", required=True, metavar="ACTION")
    p = qsub.add_parser("ls", help="counts per consumer, then every dead letter with its error")
    p.add_argument("resource", nargs="?", metavar="ID", help="one queue or topic (app/emails)")
    p.add_argument("--state", type=Path, default=Path(".distdev/state"))
    p.add_argument("--json", action="store_true")
    _engine_option(p)
    p.set_defaults(handler=_queue.ls)
    p = qsub.add_parser("retry", help="deliver dead letters again, with their attempts anew")
    p.add_argument("resource", metavar="ID", help="the queue or topic (app/emails)")
    p.add_argument("message_id", nargs="?", type=int, metavar="MESSAGE_ID",
                   help="one dead letter (default: all of them)")
    p.add_argument("--state", type=Path, default=Path(".distdev/state"))
    p.add_argument("--json", action="store_true")
    _engine_option(p)
    p.set_defaults(handler=_queue.retry)

    secret = sub.add_parser("secret", help="manage a deployment's secrets")
    ssub = secret.add_subparsers(dest="secret_command", required=True, metavar="ACTION")
    p = ssub.add_parser(
        "set", help="store a new value of a secret (its next reveal() returns it)",
        description="Store a new value of a secret resource in a deployment's secret store, "
        "as its next version: the next reveal() anywhere in the deployment returns it, and "
        "journals keep referring to the versions they revealed. The value is read from "
        "standard input (a prompt on a terminal), never from the command line, so that it "
        "stays out of shell history and process listings.")
    p.add_argument("secret", metavar="ID", help="the secret's id (app/payments-key), or its "
                   "name when only one secret has it")
    p.add_argument("--state", type=Path, default=Path(".distdev/state"))
    p.set_defaults(handler=_commands.secret_set)

    journal = sub.add_parser("journal", help="check or repair a journal file")
    jsub = journal.add_subparsers(dest="journal_command", required=True, metavar="ACTION")
    p = jsub.add_parser("check", help="validate every record")
    p.add_argument("journal", type=Path, metavar="JOURNAL")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_commands.journal_check)
    p = jsub.add_parser("repair", help="cut a torn tail (or, with --force, corruption) aside")
    p.add_argument("journal", type=Path, metavar="JOURNAL")
    p.add_argument("--force", action="store_true", help="also cut at corruption mid-file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_commands.journal_repair)
    p = jsub.add_parser(
        "compact", help="rewrite a journal to start at its last checkpoint (the old one kept)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
Rewrite JOURNAL to start at its last checkpoint: the header, the top level's records, the
checkpoint and the records after it. The compacted journal is replayed before it replaces the
old one, which is kept beside it as JOURNAL.before-compact-<seq> (never deleted). Compact the
journal of a stopped service (after `distdev down`): records a live service writes meanwhile
would be lost. A live service writes checkpoints by itself (docs/journal-format.md).""",
        epilog="""\
example:
  distdev down --state .distdev/state
  distdev journal compact .distdev/state/app/orders/journal.cbor""")
    p.add_argument("journal", type=Path, metavar="JOURNAL")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_commands.journal_compact)
    return parser


def _engine_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="local: a process per service here; ray: a Ray actor per service "
                        "(needs pip install 'distdev[ray]')")


def run(argv: list[str]) -> int:
    """Run one command in this process; return its exit code."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        # `call`'s arguments may follow its options (`call app.f --state S 1 2`), which
        # argparse leaves over: they are arguments still, in order; anything else is refused.
        if getattr(args, "command", None) != "call" or any(e.startswith("--") for e in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.args = [*args.args, *extra]
    out = Out(json_mode=bool(getattr(args, "json", False)))
    try:
        return int(args.handler(args, out))
    except ReplayDivergenceError as exc:
        out.error("replay diverged", str(exc))
        return EXIT_DAMAGE
    except JournalError as exc:
        out.error("journal error", str(exc))
        return EXIT_DAMAGE
    except DistdevError as exc:
        out.error(type(exc).__name__, str(exc))
        return EXIT_USER
    except KeyboardInterrupt:
        return 130
    except _commands.UserCodeFailed as failed:
        out.user_traceback(failed.title, failed.error)
        return EXIT_USER
    except OSError as exc:
        out.error(type(exc).__name__, str(exc))
        return EXIT_USER
    finally:
        sys.stdout.flush()
