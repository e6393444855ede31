"""The package's layering, checked from the source: every import (``TYPE_CHECKING`` ones too)
points down the runtime's layers, tools reach the runtime through public modules only, and no
two modules import each other, directly or around a cycle.

The layers are listed once, in ``LAYERS``; docs/architecture.md draws them
(``tests/architecture.py`` writes its picture from this same table).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from architecture import LAYERS, TOOL_SURFACES, Import, imports_of, module_files, top_package

REPO = Path(__file__).resolve().parent.parent


def _layer(module: str) -> int:
    package = top_package(module)
    for index, layer in enumerate(LAYERS):
        if package in layer:
            return index
    raise AssertionError(f"{module} is in no layer of LAYERS: add its package there")


def _runtime_imports() -> list[Import]:
    return [i for i in imports_of(module_files()) if i.target.startswith("distdev")
            and not top_package(i.source).startswith(("distdev.dap_adapter", "distdev.lsp"))]


def test_every_runtime_import_points_down_the_layers() -> None:
    upward = [f"{i.where}: {i.source} (layer {_layer(i.source)}) imports {i.target} "
              f"(layer {_layer(i.target)})"
              for i in _runtime_imports() if _layer(i.target) > _layer(i.source)]
    assert not upward, "imports that point up:\n" + "\n".join(upward)


def test_tools_use_only_public_runtime_modules() -> None:
    reaching = [f"{i.where}: {i.source} imports {i.target}"
                for i in imports_of(module_files())
                if top_package(i.source).startswith(("distdev.dap_adapter", "distdev.lsp"))
                and i.target.startswith("distdev")
                and not i.target.startswith(("distdev.dap_adapter", "distdev.lsp"))
                and i.target not in TOOL_SURFACES]
    assert not reaching, ("tools reach into the runtime's private modules (use distdev, "
                          "distdev.journal, distdev.rules, distdev.errors or distdev.tools):\n"
                          + "\n".join(reaching))


def test_no_import_cycles_between_modules() -> None:
    graph: dict[str, set[str]] = {}
    for i in imports_of(module_files()):
        graph.setdefault(i.source, set()).add(i.target)
    cycles = []
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph or nxt == node:
                continue
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*path[path.index(nxt):], nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_rules_module_imports_only_the_standard_library() -> None:
    tree = ast.parse((REPO / "runtime" / "rules.py").read_text())
    names = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
             for alias in node.names}
    names |= {node.module.split(".")[0] for node in ast.walk(tree)
              if isinstance(node, ast.ImportFrom) and node.module and not node.level}
    import sys

    assert names <= set(sys.stdlib_module_names) | {"__future__"}, names


@pytest.mark.parametrize("bad, why", [
    ("from ..engines import DevHost\n", "points up"),
    ("from distdev.engines._live import go_live\n", "private"),
])
def test_the_layering_checks_fail_on_a_bad_import(tmp_path: Path, bad: str, why: str) -> None:
    """The checks above are not vacuous: a membrane module importing the engines, and a tool
    importing a private runtime module, are both found."""
    membrane = tmp_path / "runtime" / "membrane" / "_bad.py"
    tool = tmp_path / "lsp" / "_bad.py"
    for path in (membrane, tool):
        path.parent.mkdir(parents=True)
    membrane.write_text(bad if why == "points up" else "")
    tool.write_text(bad if why == "private" else "")
    found = imports_of({"distdev.membrane._bad": membrane, "distdev.lsp._bad": tool})
    if why == "points up":
        (i,) = found
        assert _layer(i.target) > _layer(i.source)
    else:
        (i,) = found
        assert i.source == "distdev.lsp._bad" and i.target not in TOOL_SURFACES


def test_the_picture_in_docs_architecture_is_the_code_as_it_is() -> None:
    from architecture import BEGIN, END, picture

    text = (REPO / "docs" / "architecture.md").read_text()
    drawn = text.partition(BEGIN)[2].partition(END)[0]
    assert drawn.strip() == f"```\n{picture()}\n```", (
        "docs/architecture.md is out of date: run `python tests/architecture.py --write`")
