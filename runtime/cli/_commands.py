"""One function per command: parse nothing, call the library, render the answer."""

from __future__ import annotations

import argparse
import code
import getpass
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import msgspec
from rich.table import Table
from rich.tree import Tree

from ..build import App, HostSpec, Manifest, ResourceSpec, ServiceSpec, read_manifest
from ..engines import DevHost
from ..errors import DistdevError, JournalError, ServiceLoadError
from ..journal import compact_journal, describe, is_boundary, read_journal, repair_journal
from ..replayer import SourceDifference
from ..replayer import replay as replay_journal
from ..resources import SECRETS_FOLDER, SecretStore
from ._render import Out


class UserCodeFailed(Exception):
    """The application's own code raised while distdev ran it."""

    def __init__(self, title: str, error: BaseException) -> None:
        super().__init__(title)
        self.title = title
        self.error = error


def _build(app_path: Path, out_dir: Path, state: Path | None = None) -> App:
    app = App(app_path, out=out_dir, state=state)
    try:
        app.build()
    except DistdevError:
        app.close()
        raise
    except Exception as exc:
        app.close()
        title = f"the build of {app_path} failed in the application's code"
        raise UserCodeFailed(title, exc) from exc
    return app


def build(args: argparse.Namespace, out: Out) -> int:
    app = _build(args.app, args.out)
    app.close()
    assert app.build_output is not None
    manifest = app.build_output.manifest
    if out.json_mode:
        out.json(msgspec.to_builtins(manifest))
        return 0
    table = Table("service", "host", "exports", "events", "bundle", box=None)
    for service in manifest.services:
        events = len(read_journal(args.out / service.journal).events) - 1
        table.add_row(service.id, _host(service.host),
                      ", ".join(e.name for e in service.exports) or "-",
                      str(events), f"{len(service.bundle)} files")
    for resource in manifest.resources:
        table.add_row(resource.id, _resource_kind(resource),
                      ", ".join(e.name for e in resource.exports), "-",
                      resource.data or "-")
    out.print(table)
    resources = f" and {len(manifest.resources)} resources" if manifest.resources else ""
    out.info(f"built {len(manifest.services)} services{resources} into {args.out}")
    return 0


def _host(host: HostSpec | None) -> str:
    if host is None:
        return "-"
    how = f"function max_instances={host.instances}" if host.kind == "function" else host.kind
    return how + (f" http={host.http}" if host.http is not None else "")


def _resource_kind(resource: ResourceSpec) -> str:
    """A resource's kind as the tree shows it: ``sql (postgres)``, ``secret (from $VAR)``."""
    options = resource.options
    if resource.kind == "sql":
        return f"sql ({options.get('engine', 'sqlite')})"
    if resource.kind == "secret":
        return f"secret (from ${options['from_env']})" if "from_env" in options else \
            "secret (generated)"
    return resource.kind


def dev(args: argparse.Namespace, out: Out) -> int:
    host = DevHost(args.app, out=args.out, state=args.state, port=args.port, host=args.host,
                   report=out.info)

    def on_error(exc: BaseException) -> None:
        if isinstance(exc, DistdevError):
            out.error(type(exc).__name__, str(exc))
        else:
            out.user_traceback("the rebuild failed; waiting for the next change", exc)

    try:
        host.run(args.watch, on_error)
    except DistdevError:
        raise
    except Exception as exc:
        title = f"the build of {args.app} failed in the application's code"
        raise UserCodeFailed(title, exc) from exc
    return 0


def debug(args: argparse.Namespace, out: Out) -> int:
    """Print a launch.json for debugging an application (or replaying a journal) in VS Code."""
    target: Path = args.target
    if not target.is_file():
        raise ServiceLoadError(f"no file at {target}: pass the root service's .py file or a "
                               "journal.cbor")
    relative = os.path.relpath(target.resolve(), Path.cwd())
    config: dict[str, Any]
    if target.suffix == ".py":
        config = {"name": f"Debug {target.stem}", "app": f"${{workspaceFolder}}/{relative}"}
    else:
        contents = read_journal(target)
        config = {"name": f"Replay {contents.header.service}",
                  "journal": f"${{workspaceFolder}}/{relative}",
                  "stopAtEvent": len(contents.events) - 1}
    out.json({"version": "0.2.0",
              "configurations": [{"type": "distdev", "request": "launch", **config}]})
    out.info("paste this into .vscode/launch.json; the adapter is `python -m distdev.dap_adapter`")
    return 0


def replay(args: argparse.Namespace, out: Out) -> int:
    contents = read_journal(args.journal)
    if contents.torn is not None:
        out.warn(
            f"{args.journal} ends in a torn record at byte {contents.torn.offset} "
            f"(record {contents.torn.seq}: {contents.torn.reason}); replaying the "
            f"{len(contents.events)} good records before it. "
            f"`distdev journal repair {args.journal}` cuts it aside."
        )

    def before_start(diffs: list[SourceDifference]) -> None:
        if args.source is None:
            return
        if diffs:
            listed = ", ".join(f"{d.path} ({d.change})" for d in diffs)
            out.warn(f"replaying {args.source}, which differs from the journal's code: {listed}")
        else:
            out.info(f"replaying {args.source}: same code as the journal's")

    secrets = None
    if args.secrets is not None:
        if not args.secrets.is_dir():
            raise DistdevError(f"--secrets {args.secrets}: no such folder; pass a secret store "
                               "(a deployment's STATE/secrets or a build's OUT/secrets)")
        secrets = SecretStore(args.secrets).read
    restored = replay_journal(contents, until=args.until, source=args.source,
                              before_start=before_start, secrets=secrets)
    if restored.stopped_inside_call:
        out.warn("the journal ends inside a call; the state is as of its last event")
    if restored.state_note:
        out.warn(f"{args.source} replays every event of the journal, but {restored.state_note}")
    state = restored.state()
    if out.json_mode:
        out.json({"service": restored.id, "events": restored.events, "state": state})
    elif not args.interactive:
        out.info(f"{restored.id}: replayed {restored.events} events")
        out.json(state)
    if args.interactive:
        banner = (
            f"distdev: inside {restored.id}, restored from {args.journal} "
            f"({restored.events} events). Its variables are here; calls out are not reachable."
        )
        code.interact(banner=banner, local=restored.namespace, exitmsg="")
    return 0


def inspect(args: argparse.Namespace, out: Out) -> int:
    contents = read_journal(args.journal)
    rows: list[dict[str, Any]] = [
        {"seq": e.seq, "kind": e.__struct_config__.tag, "offset": off, "summary": describe(e),
         "boundary": is_boundary(e)}
        for e, off in zip(contents.events, contents.offsets)
    ]
    torn = None if contents.torn is None else vars(contents.torn)
    if out.json_mode:
        out.json({"service": contents.header.service, "events": rows, "torn": torn})
        return 0
    table = Table("seq", "kind", "summary", box=None)
    for row in rows:
        table.add_row(str(row["seq"]), row["kind"], row["summary"])
    out.print(table)
    if torn:
        out.warn(f"torn final record at byte {torn['offset']}: {torn['reason']}")
    return 0


def graph(args: argparse.Namespace, out: Out) -> int:
    target: Path = args.target
    manifest: Manifest
    if target.is_dir():
        if not (target / "manifest.json").is_file():
            raise ServiceLoadError(f"{target} has no manifest.json: pass a build folder or APP.py")
        manifest = read_manifest(target)
    else:
        with tempfile.TemporaryDirectory(prefix="distdev-graph-") as tmp:
            app = _build(target, Path(tmp) / "build", Path(tmp) / "state")
            app.close()
            assert app.build_output is not None
            manifest = app.build_output.manifest
    if out.json_mode:
        out.json({"root": manifest.root, "services": msgspec.to_builtins(manifest.services),
                  "resources": msgspec.to_builtins(manifest.resources)})
        return 0
    by_parent: dict[str | None, list[ServiceSpec]] = {}
    for service in manifest.services:
        by_parent.setdefault(service.parent, []).append(service)
    resources: dict[str, list[ResourceSpec]] = {}
    for resource in manifest.resources:
        resources.setdefault(resource.parent, []).append(resource)

    def add(tree: Tree, service: ServiceSpec) -> None:
        exports = ", ".join(e.signature for e in service.exports) or "no exports"
        node = tree.add(f"[bold]{service.id}[/bold]  [cyan]{_host(service.host)}[/cyan]"
                        f"\n[dim]{exports}[/dim]")
        for resource in resources.get(service.id, []):
            methods = ", ".join(e.name for e in resource.exports)
            node.add(f"[bold]{resource.id}[/bold]  [magenta]{_resource_kind(resource)}"
                     f"[/magenta]\n[dim]{methods}[/dim]")
        for child in by_parent.get(service.id, []):
            add(node, child)

    root = Tree(f"application {manifest.root}")
    for service in by_parent.get(None, []):
        add(root, service)
    out.print(root)
    return 0


def journal_check(args: argparse.Namespace, out: Out) -> int:
    contents = read_journal(args.journal)
    report = {
        "journal": str(args.journal),
        "service": contents.header.service,
        "events": len(contents.events),
        "ok": contents.torn is None,
        "torn": None if contents.torn is None else vars(contents.torn),
    }
    if out.json_mode:
        out.json(report)
    elif contents.torn is None:
        out.print(f"{args.journal}: ok, {len(contents.events)} records ({contents.header.service})")
    else:
        raise JournalError(
            f"{args.journal} ends in a torn record at byte {contents.torn.offset} (record "
            f"{contents.torn.seq}: {contents.torn.reason}); the {len(contents.events)} records "
            f"before it are intact. `distdev journal repair {args.journal}` cuts it aside."
        )
    return 0 if contents.torn is None else 2


def journal_repair(args: argparse.Namespace, out: Out) -> int:
    report = repair_journal(args.journal, force=args.force)
    if out.json_mode:
        out.json({"journal": str(report.path), "kept_events": report.kept_events,
                  "cut_bytes": report.cut_bytes,
                  "side_file": None if report.side_file is None else str(report.side_file)})
    elif report.side_file is None:
        out.print(f"{args.journal}: nothing to repair ({report.kept_events} good records)")
    else:
        out.print(f"{args.journal}: kept {report.kept_events} records; moved {report.cut_bytes} "
                  f"bytes to {report.side_file}")
    return 0


def secret_set(args: argparse.Namespace, out: Out) -> int:
    """``distdev secret set ID``: rotate a secret of the deployment in ``--state``."""
    state: Path = args.state
    secrets_of = _deployed_secrets(state)
    wanted: str = args.secret
    matches = [s for s in secrets_of if s == wanted or s.rpartition("/")[2] == wanted]
    if len(matches) != 1:
        listed = ", ".join(secrets_of) or "none"
        why = "no secret" if not matches else "more than one secret"
        raise DistdevError(f"{why} {wanted!r} in the deployment in {state} (its secrets: "
                           f"{listed}); pass the secret's id")
    if sys.stdin.isatty():
        value = getpass.getpass(f"new value of {matches[0]}: ")
    else:
        value = sys.stdin.read().rstrip("\n")
    if not value:
        raise DistdevError("no value given: pipe the new value in, or type it at the prompt")
    version = SecretStore(state / SECRETS_FOLDER).write(matches[0], value)
    out.info(f"{matches[0]} is now version {version}; its next reveal() returns it")
    return 0


def _deployed_secrets(state: Path) -> list[str]:
    """The secret resources of the deployment in ``state`` (the deployment file lists them)."""
    path = state / "deployment.json"
    try:
        described = json.loads(path.read_text()).get("resources", {})
    except FileNotFoundError:
        raise DistdevError(f"no deployment in {state}: start one with `distdev up` (or pass "
                           "--state)") from None
    return sorted(rid for rid, r in described.items() if r.get("kind") == "secret")


def journal_compact(args: argparse.Namespace, out: Out) -> int:
    def replays(compacted: Path) -> None:
        replay_journal(compacted).service.compartment.unload()  # diverges, or it is sound

    report = compact_journal(args.journal, verify=replays)
    if out.json_mode:
        out.json({"journal": str(report.path), "kept_aside": str(report.kept_aside),
                  "checkpoint": report.checkpoint, "events_before": report.events_before,
                  "events_after": report.events_after, "bytes_before": report.bytes_before,
                  "bytes_after": report.bytes_after})
    else:
        out.print(f"{args.journal}: {report.events_before} records ({report.bytes_before:,} "
                  f"bytes) -> {report.events_after} ({report.bytes_after:,} bytes), from the "
                  f"checkpoint at record {report.checkpoint}; the old journal is kept as "
                  f"{report.kept_aside}")
    return 0
