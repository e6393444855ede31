"""Language server: indexing and definition latency on a generated 200-service workspace.

Run from the repository root: ``.venv/bin/python benchmarks/bench_lsp.py [--services N]``.

Generates N services (each imports up to 3 children with ``import_service``, has 10 exports
and calls every child's exports), then measures:

- ``Index.scan`` in process (parse + graph), and diagnostics for every file;
- over stdio against ``python -m distdev.lsp`` (pytest-lsp's client): the workspace scan,
  didOpen -> publishDiagnostics, and textDocument/definition through a proxy, p50/p95, beside
  the JSON-RPC floor (a hover at a position with nothing under it).

Nothing is asserted; it prints.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lsprotocol import types
from pytest_lsp import client_capabilities, make_test_lsp_client

from distdev.lsp._checks import check_file
from distdev.lsp._index import Index


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
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def over_stdio(root: Path, rounds: int) -> None:
    client = make_test_lsp_client()
    await client.start_io(sys.executable, "-m", "distdev.lsp")
    started = time.perf_counter()
    await client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"), root_uri=root.as_uri()))
    print(f"start + initialize            {1000 * (time.perf_counter() - started):8.1f} ms")
    path = root / "svc1.py"
    doc = types.TextDocumentIdentifier(path.as_uri())
    started = time.perf_counter()  # the scan runs on `initialized`; a request waits for it
    await client.text_document_hover_async(types.HoverParams(doc, types.Position(0, 0)))
    print(f"initialized (workspace scan)  {1000 * (time.perf_counter() - started):8.1f} ms")
    started = time.perf_counter()
    client.text_document_did_open(types.DidOpenTextDocumentParams(types.TextDocumentItem(
        uri=doc.uri, language_id="python", version=1, text=path.read_text())))
    await client.text_document_hover_async(types.HoverParams(doc, types.Position(0, 0)))
    print(f"didOpen -> diagnostics        {1000 * (time.perf_counter() - started):8.1f} ms")
    lines = path.read_text().splitlines()
    line = next(i for i, t in enumerate(lines) if "child4.export3(" in t)
    where = types.Position(line, lines[line].index("export3"))
    floor, definition = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        await client.text_document_hover_async(types.HoverParams(doc, types.Position(0, 0)))
        t1 = time.perf_counter()
        found = await client.text_document_definition_async(types.DefinitionParams(doc, where))
        t2 = time.perf_counter()
        assert found, "definition found nothing"
        floor.append(t1 - t0)
        definition.append(t2 - t1)
    print(f"definition p50/p95            {_pct(definition, .5):8.2f} / {_pct(definition, .95):.2f} ms")
    print(f"JSON-RPC floor p50/p95        {_pct(floor, .5):8.2f} / {_pct(floor, .95):.2f} ms")
    print(f"definition / floor (p50)      {statistics.median(definition) / statistics.median(floor):8.2f}x")
    await client.shutdown_session()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="distdev-bench-lsp-") as tmp:
        root = Path(tmp)
        generate(root, args.services)
        started = time.perf_counter()
        index = Index()
        index.scan(root)
        scanned = time.perf_counter()
        problems = sum(len(check_file(index, p)) for p in sorted(root.glob("*.py")))
        checked = time.perf_counter()
        print(f"{args.services} services, {sum(1 for _ in root.glob('*.py'))} files")
        print(f"Index.scan (in process)       {1000 * (scanned - started):8.1f} ms")
        print(f"diagnose every file           {1000 * (checked - scanned):8.1f} ms "
              f"({problems} problems)")
        asyncio.run(over_stdio(root, args.rounds))


if __name__ == "__main__":
    main()
