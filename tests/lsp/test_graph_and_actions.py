"""The ``distdev/serviceGraph`` request (checked against the runtime) and the typed-spelling
code action."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types

from distdev.testing import load_app

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _flatten(node: Any) -> dict[str, Any]:
    out = {node.id: node}
    for child in node.children:
        out.update(_flatten(child))
    return out


def _runtime(entry: Path, tmp: Path) -> dict[str, tuple[list[str], Any]]:
    app = load_app(entry, out=tmp / "build", state=tmp / "state")
    try:
        nodes = {sid: (sorted(s.exports()), s.host) for sid, s in app.services.items()}
        nodes.update({rid: (sorted(r.exports()), None) for rid, r in app.resources.items()})
        return nodes
    finally:
        app.close()


@pytest.fixture(params=["shop", "tricky"])
def app_workspace(request: pytest.FixtureRequest) -> Any:
    """Each workspace whose app.py the runtime can build."""
    return request.getfixturevalue(request.param)


async def test_service_graph_matches_runtime(app_workspace: Any, tmp_path: Path) -> None:
    ws = app_workspace
    result = await ws.client.protocol.send_request_async("distdev/serviceGraph", {})
    (root,) = result.roots
    assert root.file == str(ws.root / "app.py")
    graph = _flatten(root)
    runtime = _runtime(ws.root / "app.py", tmp_path)
    assert sorted(graph) == sorted(runtime)
    for sid, (exports, host) in runtime.items():
        node = graph[sid]
        assert sorted(e.name for e in node.exports) == exports, sid
        hosting = [dict(h._asdict()) for h in node.hosting]
        assert hosting == ([host] if host else []), sid


async def test_service_graph_for_one_root_and_bad_uri(tricky) -> None:
    result = await tricky.client.protocol.send_request_async(
        "distdev/serviceGraph", {"uri": tricky.uri("left/worker.py")})
    (root,) = result.roots
    assert root.id == "worker" and [c.id for c in root.children] == ["worker/helper"]
    with pytest.raises(Exception, match="not a service file"):
        await tricky.client.protocol.send_request_async(
            "distdev/serviceGraph", {"uri": tricky.uri("nowhere.py")})


def _apply(text: str, edits: list[types.TextEdit]) -> str:
    lines = text.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)

    def at(p: types.Position) -> int:
        return offsets[p.line] + p.character

    for e in sorted(edits, key=lambda e: at(e.range.start), reverse=True):
        text = text[: at(e.range.start)] + e.new_text + text[at(e.range.end):]
    return text


async def test_code_action_typed_spelling(shop) -> None:
    base = (shop.root / "app.py").read_text()
    await shop.open("app.py")
    line = next(i for i, t in enumerate(base.splitlines()) if t.startswith("billing = "))
    actions = await shop.client.text_document_code_action_async(types.CodeActionParams(
        types.TextDocumentIdentifier(shop.uri("app.py")),
        types.Range(types.Position(line, 0), types.Position(line, 0)),
        types.CodeActionContext(diagnostics=[])))
    assert actions is not None and len(actions) == 1
    action = actions[0]
    assert isinstance(action, types.CodeAction) and action.edit and action.edit.changes
    new = _apply(base, action.edit.changes[shop.uri("app.py")])
    ast.parse(new)
    assert "from typing import TYPE_CHECKING\n" in new
    # examples/shop is no package: the import is absolute from the application's folder.
    assert ('if TYPE_CHECKING:\n    from billing import billing\nelse:\n'
            '    billing = import_service("./billing/billing.py")\n') in new
    await shop.change("app.py", new, 10)
    assert shop.diagnostics("app.py") == []
    lines = new.split("\n")
    use = next(i for i, t in enumerate(lines) if "billing.revenue()" in t)
    found = await shop.client.text_document_definition_async(types.DefinitionParams(
        types.TextDocumentIdentifier(shop.uri("app.py")),
        types.Position(use, lines[use].index("revenue"))))
    assert found is not None and found[0].uri == shop.uri("billing/billing.py")
    typed = next(i for i, t in enumerate(lines) if t.strip().startswith("billing = "))
    again = await shop.client.text_document_code_action_async(types.CodeActionParams(
        types.TextDocumentIdentifier(shop.uri("app.py")),
        types.Range(types.Position(typed, 0), types.Position(typed, 0)),
        types.CodeActionContext(diagnostics=[])))
    assert not again
    await shop.change("app.py", base, 11)
