"""Measurement 8: the language server on a generated 200-service workspace, beside
jedi-language-server answering plain definitions on the same workspace, in the same run.

Workspace: N services (``svc0`` is the root; ``svc i`` imports ``svc 3i+1..3i+3`` with
``import_service``, has 10 exports, and every export calls the same export of each child).

Measured (one JSON-RPC client, pytest-lsp's, over stdio, for both servers):

* indexing: ``Index.scan`` of the workspace in process (parse + graph), median of 3; the
  server's own scan at ``initialized`` is in the row's note;
* definition: ``textDocument/definition`` on ``child4.export3`` (through a proxy, into
  ``svc4.py``), p50 and p95 over the rounds; the baseline is jedi-language-server on the same
  file answering a plain definition, ``import_service`` on its import line (jedi follows the
  import into distdev's package; on the proxy call it finds nothing, which the note reports);
* didChange -> first diagnostics: a whole-document change of ``svc1.py`` (two texts taken in
  turn) to the first ``publishDiagnostics`` for it, p50 (the index's immediate diagnostics);
* background type check: a change that only a type checker can see
  (``child4.export3(user, str(cents))``) to the ``publishDiagnostics`` carrying mypy's finding
  (source ``distdev (mypy)``), p50 over a few rounds, each followed by the fix and the finding's
  removal; this includes the debounce delay (400 ms, the default). The worker's own check time
  and the first (cold cache) check are in the note.

Goals (issue 5): definition p50 <= 10 ms; first diagnostics <= 100 ms after a change.
Run alone: ``.venv/bin/python benchmarks/bench_lsp.py [--quick]``. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_util import Row, Settings, progress
from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities, make_test_lsp_client

from distdev.lsp._index import Index

DEFINITION_GOAL = 0.010
DIAGNOSTICS_GOAL = 0.100
BASELINE = "jedi-language-server"
MYPY_SOURCE = "distdev (mypy)"
PUBLISH = types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS
LIMIT = 300.0  # seconds to wait for one notification before giving up


@dataclasses.dataclass(frozen=True)
class Sizes:
    services: int
    definitions: int
    changes: int
    type_checks: int


FULL_SIZES = Sizes(services=200, definitions=200, changes=60, type_checks=5)
QUICK_SIZES = Sizes(services=200, definitions=40, changes=15, type_checks=2)


def generate(root: Path, count: int) -> None:
    """svc0 is the root; svc i imports svc 3i+1..3i+3."""
    for i in range(count):
        children = [c for c in (3 * i + 1, 3 * i + 2, 3 * i + 3) if c < count]
        lines = ['"""A generated service."""', "", "from __future__ import annotations", "",
                 "from distdev import import_service", ""]
        lines += [f'child{c} = import_service("./svc{c}.py")' for c in children]
        for e in range(10):
            lines += ["", "", f"def export{e}(user: str, cents: int, note: str = '') -> int:",
                      f'    """Export {e} of service {i}."""', "    total = cents"]
            lines += [f"    total += child{c}.export{e}(user, cents)" for c in children]
            lines += ["    return total"]
        (root / f"svc{i}.py").write_text("\n".join(lines) + "\n")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Session:
    """One server on stdio, the document under test (``svc1.py``), and every
    publishDiagnostics received, stamped on arrival."""

    def __init__(self, client: LanguageClient, path: Path) -> None:
        self.client = client
        self.path = path
        self.doc = types.TextDocumentIdentifier(path.as_uri())
        self.published: list[tuple[float, types.PublishDiagnosticsParams]] = []
        self._arrived = asyncio.Event()
        features = client.protocol.fm.features
        keep = features[PUBLISH]

        def publish(params: types.PublishDiagnosticsParams) -> None:
            self.published.append((time.perf_counter(), params))
            self._arrived.set()
            keep(params)

        features[PUBLISH] = publish

    def position(self, token: str, inner: str) -> types.Position:
        """Where ``inner`` starts inside the first ``token`` of the document."""
        lines = self.path.read_text().splitlines()
        line = next(i for i, t in enumerate(lines) if token in t)
        return types.Position(line, lines[line].index(token) + token.index(inner))

    async def open(self, text: str) -> None:
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(
            types.TextDocumentItem(self.doc.uri, "python", 1, text)))
        await self.client.text_document_hover_async(
            types.HoverParams(self.doc, types.Position(0, 0)))

    async def definitions(self, where: types.Position, rounds: int) -> tuple[list[float], Any]:
        times, found = [], None
        for _ in range(rounds + 3):  # three warm-up requests
            t0 = time.perf_counter()
            found = await self.client.text_document_definition_async(
                types.DefinitionParams(self.doc, where))
            times.append(time.perf_counter() - t0)
        return times[3:], found

    async def until(self, since: int, wanted: Any) -> float:
        """The arrival time of the first publishDiagnostics for the document, from number
        ``since`` on, that ``wanted`` accepts."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LIMIT
        while True:
            for stamp, params in self.published[since:]:
                if params.uri == self.doc.uri and wanted(params):
                    return stamp
            since = len(self.published)
            self._arrived.clear()
            await asyncio.wait_for(self._arrived.wait(), max(deadline - loop.time(), 0.001))

    async def change(self, text: str, version: int, wanted: Any = None) -> float:
        """Seconds from a whole-document change to the first publishDiagnostics after it
        (that ``wanted`` accepts, when given)."""
        since = len(self.published)
        t0 = time.perf_counter()
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(uri=self.doc.uri, version=version),
            [types.TextDocumentContentChangeWholeDocument(text=text)]))
        return await self.until(since, wanted or (lambda _: True)) - t0

    def checks_ended(self) -> list[types.WorkDoneProgressEnd]:
        return [v for r in self.client.progress_reports.values() for v in r
                if isinstance(v, types.WorkDoneProgressEnd)]

    async def until_checks_end(self, count: int) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LIMIT
        while len(self.checks_ended()) < count:
            if loop.time() > deadline:
                raise TimeoutError("the background check did not end")
            await asyncio.sleep(0.01)


async def _start(command: list[str], root: Path, options: Any) -> LanguageClient:
    client = make_test_lsp_client()
    await client.start_io(*command)
    await client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"), root_uri=root.as_uri(),
        workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)],
        initialization_options=options))
    return client


def _has_mypy(params: types.PublishDiagnosticsParams) -> bool:
    return any(d.source == MYPY_SOURCE for d in params.diagnostics)


async def _distdev(root: Path, cache: Path, sizes: Sizes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    started = time.perf_counter()
    client = await _start([sys.executable, "-m", "distdev.lsp"], root,
                          {"typeCheck": {"cacheDir": str(cache)}})
    session = Session(client, root / "svc1.py")
    text = session.path.read_text()
    await client.text_document_hover_async(types.HoverParams(session.doc, types.Position(0, 0)))
    out["startup"] = time.perf_counter() - started  # spawn + initialize + the workspace scan
    t0 = time.perf_counter()
    await session.open(text)
    await session.until_checks_end(1)
    out["first_check"] = time.perf_counter() - t0  # the debounce and a cold mypy cache
    out["definition"], found = await session.definitions(
        session.position("child4.export3(", "export3"), sizes.definitions)
    out["definition_target"] = found[0].uri.rsplit("/", 1)[-1] if found else None
    edited = text.replace("    total = cents\n", "    total = cents  # edited\n", 1)
    out["changes"] = [await session.change(edited if i % 2 == 0 else text, 10 + i)
                      for i in range(sizes.changes)]
    await session.until_checks_end(2)  # the check after the last change, before timing more
    bad = text.replace("child4.export3(user, cents)", "child4.export3(user, str(cents))", 1)
    checks, version = [], 1000
    for _ in range(sizes.type_checks):
        version += 2
        checks.append(await session.change(bad, version, _has_mypy))
        await session.change(text, version + 1, lambda p: not _has_mypy(p))
    out["type_checks"] = checks
    out["worker_seconds"] = [float(m[1]) for v in session.checks_ended()
                             if (m := re.search(r"in ([0-9.]+) s", v.message or ""))]
    await client.shutdown_session()
    return out


async def _jedi(root: Path, sizes: Sizes) -> dict[str, Any]:
    client = await _start([sys.executable, "-c", "from jedi_language_server.cli import cli; cli()"],
                          root, {"diagnostics": {"enable": False}})
    session = Session(client, root / "svc1.py")
    await session.open(session.path.read_text())
    times, found = await session.definitions(
        session.position("= import_service(", "import_service"), sizes.definitions)
    _, on_proxy = await session.definitions(session.position("child4.export3(", "export3"), 1)
    await client.shutdown_session()
    return {"definition": times, "target": found[0].uri.rsplit("/", 1)[-1] if found else None,
            "on_proxy": on_proxy}


def _index_seconds(root: Path) -> float:
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        Index().scan(root)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(tmp: Path, settings: Settings) -> list[Row]:
    sizes = QUICK_SIZES if settings.quick else FULL_SIZES
    root = tmp / "workspace"
    root.mkdir(parents=True)
    generate(root, sizes.services)
    progress(f"lsp: {sizes.services} services; {sizes.definitions} definitions, "
             f"{sizes.changes} changes, {sizes.type_checks} type checks; then "
             f"jedi-language-server on the same workspace")
    index_s = _index_seconds(root)
    d = asyncio.run(_distdev(root, tmp / "mypy-cache", sizes))
    j = asyncio.run(_jedi(root, sizes))
    p50, p95 = _pct(d["definition"], .5), _pct(d["definition"], .95)
    j50, j95 = _pct(j["definition"], .5), _pct(j["definition"], .95)
    change = statistics.median(d["changes"])
    check = statistics.median(d["type_checks"])
    worker = statistics.median(d["worker_seconds"][2:] or d["worker_seconds"] or [0.0])
    proxy = "nothing" if not j["on_proxy"] else f"{len(j['on_proxy'])} location(s)"
    return [
        Row(key="lsp.index", title=f"lsp: index {sizes.services} services (Index.scan)",
            unit="s", distdev=index_s, baseline_name="-", baseline=None,
            higher_is_better=False, goal="no target", met=None,
            note=f"in process, median of 3; over stdio, spawn + initialize + the scan at "
                 f"`initialized`: {d['startup'] * 1e3:.0f} ms"),
        Row(key="lsp.definition.p50", title="lsp: definition p50 (distdev: through a proxy)",
            unit="s", distdev=p50, baseline_name=BASELINE, baseline=j50,
            higher_is_better=False, goal="<= 10 ms", met=p50 <= DEFINITION_GOAL,
            note=f"{sizes.definitions} requests each after 3 warm-up; distdev: child4.export3 "
                 f"-> {d['definition_target']}; jedi-language-server 0.47: import_service -> "
                 f"{j['target']} (on child4.export3 it finds {proxy})"),
        Row(key="lsp.definition.p95", title="lsp: definition p95", unit="s", distdev=p95,
            baseline_name=BASELINE, baseline=j95, higher_is_better=False, goal="no target",
            met=None, note="same requests as the p50 row"),
        Row(key="lsp.diagnostics", title="lsp: didChange -> first diagnostics p50", unit="s",
            distdev=change, baseline_name="-", baseline=None, higher_is_better=False,
            goal="<= 100 ms", met=change <= DIAGNOSTICS_GOAL,
            note=f"{sizes.changes} whole-document changes of svc1.py (the index's "
                 f"diagnostics, published at once); p95 "
                 f"{_pct(d['changes'], .95) * 1e3:.1f} ms"),
        Row(key="lsp.type_check", title="lsp: change -> mypy finding p50 (background)",
            unit="s", distdev=check, baseline_name="-", baseline=None, higher_is_better=False,
            goal="no target", met=None,
            note=f"{sizes.type_checks} rounds; includes the 400 ms debounce; the worker's "
                 f"mypy build itself (warm cache, 1 open document) p50 {worker * 1e3:.0f} ms; "
                 f"the first check after open (cold cache) took {d['first_check']:.1f} s"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    from bench_report import environment, print_table
    from bench_util import FULL, QUICK

    settings = QUICK if args.quick else FULL
    with tempfile.TemporaryDirectory(prefix="distdev-bench-lsp-") as tmp:
        t0 = time.perf_counter()
        rows = measure(Path(tmp), settings)
        print_table(rows, environment(settings, time.perf_counter() - t0))


if __name__ == "__main__":
    main()
