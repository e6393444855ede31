"""The package's structure as its imports draw it: the layer table the layering test enforces,
and the picture of it in docs/architecture.md.

    python tests/architecture.py            # print the picture
    python tests/architecture.py --write    # rewrite it in docs/architecture.md
"""

from __future__ import annotations

import ast
import dataclasses
import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FOLDERS = {"distdev": REPO / "runtime", "distdev.dap_adapter": REPO / "dap_adapter",
           "distdev.lsp": REPO / "lsp"}

LAYERS: list[set[str]] = [
    {"distdev.errors", "distdev.rules", "distdev._version", "distdev._spawn",
     "distdev._own_code"},
    {"distdev.membrane"},
    {"distdev.journal"},
    {"distdev.compartment"},
    {"distdev.service"},
    {"distdev.replayer"},
    {"distdev.resources"},
    {"distdev.build"},
    {"distdev.engines"},
    {"distdev.cli", "distdev.testing", "distdev.tools"},
    {"distdev", "distdev.__main__"},
]
"""The runtime's layers, lowest first: a module may import its own layer and the ones below."""

LAYER_JOBS = [
    "rules every part agrees on; errors; version; how distdev starts its own processes",
    "values crossing by copy, and as JSON; proxies; exceptions in wire form; state snapshots",
    "typed events; CBOR records with checksums; read, write, check, repair",
    "a service's own copy of the app's code; virtualized stdlib; thread context; guards",
    "a service, its call gate and tape; import_service, host, effect, phase",
    "restoring a service from its journal; divergence reports",
    "SQL, key-value, secret, queue and topic resources: declaring them, their storage, hosting one",
    "running the root's top level; build output; the typed manifest; the one-process App",
    "local and Ray engines; transport, durability, restore, ingress and its OpenAPI; the dev host",
    "the command line; pytest helpers; the surface for tools",
    "the public API",
]

TOOL_SURFACES = frozenset({"distdev", "distdev.errors", "distdev.journal", "distdev.rules",
                           "distdev.tools"})
"""The runtime modules the debug adapter and the language server may import."""


@dataclasses.dataclass(frozen=True)
class Import:
    source: str
    target: str
    where: str


def module_files() -> dict[str, Path]:
    """Every module of the installed package, by dotted name."""
    found: dict[str, Path] = {}
    for package, folder in FOLDERS.items():
        for path in sorted(folder.rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if package == "distdev" and parts[0] in ("dap_adapter", "lsp"):
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


def top_package(module: str) -> str:
    """The unit a layer holds: ``distdev.engines.local._host`` -> ``distdev.engines``."""
    return ".".join(module.split(".")[:2])


def imports_of(files: dict[str, Path]) -> list[Import]:
    """Each import of a distdev module, wherever it is written (``TYPE_CHECKING`` blocks and
    function bodies included)."""
    found: list[Import] = []
    for module, path in files.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            where = f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}:"
            where += str(getattr(node, "lineno", 0))
            for target in _targets(node, package, files):
                if target.startswith("distdev") and target != module:
                    found.append(Import(module, target, where))
    return found


def _targets(node: ast.AST, package: str, files: dict[str, Path]) -> Iterable[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        parts = package.split(".")
        base = ".".join(parts[: len(parts) - node.level + 1])
        base = f"{base}.{node.module}" if node.module else base
    else:
        base = node.module or ""
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]


def picture() -> str:
    """The layers as a text figure, top first, each with its job and its modules."""
    files = module_files()
    lines = []
    for index in reversed(range(len(LAYERS))):
        units = sorted(LAYERS[index])
        lines.append(f"{index}  {', '.join(u.removeprefix('distdev.') or 'distdev' for u in units)}")
        lines.append(f"     {LAYER_JOBS[index]}")
        members = sorted(m.removeprefix("distdev.") for m in files
                         if top_package(m) in LAYERS[index] and m not in LAYERS[index])
        if members:
            lines += _wrapped(members)
    tools = sorted(m.removeprefix("distdev.") for m in files
                   if m.startswith(("distdev.dap_adapter", "distdev.lsp")))
    lines.append("")
    lines.append("tools, beside the runtime and importing only "
                 + ", ".join(sorted(TOOL_SURFACES)) + ":")
    lines += _wrapped(tools)
    return "\n".join(lines)


def _wrapped(names: list[str]) -> list[str]:
    return textwrap.wrap(", ".join(names), 92, initial_indent="     ",
                         subsequent_indent="     ")


BEGIN = "<!-- layers: written by tests/architecture.py --write -->"
END = "<!-- end of layers -->"


def write(doc: Path = REPO / "docs" / "architecture.md") -> None:
    text = doc.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    doc.write_text(f"{head}{BEGIN}\n```\n{picture()}\n```\n{END}{tail}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write()
    else:
        print(picture())
