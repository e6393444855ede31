"""Malformed requests, syntax errors and vanished files never take the server down."""

from __future__ import annotations

import shutil

import pytest
from lsprotocol import types

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _alive(ws) -> None:
    """The server still answers a real question correctly."""
    await ws.open("app.py")
    found = await ws.client.text_document_definition_async(types.DefinitionParams(
        **_params(ws.at("app.py", "hub-relay", "relay"))))
    assert found is not None and found[0].uri == ws.uri("hub.py")


def _params(at: types.TextDocumentPositionParams) -> dict[str, object]:
    return {"text_document": at.text_document, "position": at.position}


async def test_robustness_syntax_error_keeps_last_good_reading(tricky) -> None:
    base = (tricky.root / "app.py").read_text()
    await tricky.open("app.py")
    broken = base + "\ndef oops(:\n    left.\n"
    await tricky.change("app.py", broken, 2)
    codes = [d.code for d in tricky.diagnostics("app.py")]
    assert codes == ["syntax-error"]
    lines = broken.split("\n")
    completion = await tricky.client.text_document_completion_async(types.CompletionParams(
        types.TextDocumentIdentifier(tricky.uri("app.py")),
        types.Position(len(lines) - 2, len("    left."))))
    assert completion is not None
    items = completion.items if isinstance(completion, types.CompletionList) else completion
    assert [i.label for i in items] == ["work"]
    found = await tricky.client.text_document_definition_async(types.DefinitionParams(
        **_params(tricky.at("app.py", "left-work", "work"))))
    assert found is not None and found[0].uri == tricky.uri("left/worker.py")
    await tricky.change("app.py", base, 3)
    assert tricky.diagnostics("app.py") == []


@pytest.mark.parametrize("uri", [
    "untitled:Untitled-1", "file:///no/such/folder/x.py", "not a uri at all",
])
async def test_robustness_unknown_documents(tricky, uri: str) -> None:
    doc = types.TextDocumentIdentifier(uri)
    pos = types.Position(3, 4)
    assert await tricky.client.text_document_definition_async(
        types.DefinitionParams(doc, pos)) is None
    assert await tricky.client.text_document_hover_async(types.HoverParams(doc, pos)) is None
    assert await tricky.client.text_document_references_async(types.ReferenceParams(
        context=types.ReferenceContext(include_declaration=True),
        text_document=doc, position=pos)) is None
    await _alive(tricky)


async def test_robustness_positions_out_of_range(tricky) -> None:
    await tricky.open("app.py")
    doc = types.TextDocumentIdentifier(tricky.uri("app.py"))
    for pos in (types.Position(10_000, 0), types.Position(0, 10_000)):
        assert await tricky.client.text_document_definition_async(
            types.DefinitionParams(doc, pos)) is None
        assert await tricky.client.text_document_completion_async(
            types.CompletionParams(doc, pos)) is None
        assert await tricky.client.text_document_signature_help_async(
            types.SignatureHelpParams(doc, pos)) is None
    await _alive(tricky)


async def test_robustness_change_to_unopened_document(tricky) -> None:
    tricky.client.text_document_did_change(types.DidChangeTextDocumentParams(
        types.VersionedTextDocumentIdentifier(uri=tricky.uri("never-opened.py"), version=1),
        [types.TextDocumentContentChangeWholeDocument(text="x = 1\n")]))
    await _alive(tricky)


async def test_robustness_vanished_open_callee(scratch) -> None:
    hub = scratch.root / "hub.py"
    text = hub.read_text()
    await scratch.open("app.py")
    await scratch.close("hub.py")  # an open document would still count
    hub.unlink()
    try:
        scratch.client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(
            [types.FileEvent(uri=hub.as_uri(), type=types.FileChangeType.Deleted)]))
        await scratch.settle("app.py")
        assert [d.code for d in scratch.diagnostics("app.py")] == ["missing-service"]
        found = await scratch.client.text_document_definition_async(types.DefinitionParams(
            **_params(scratch.at("app.py", "hub-relay", "relay"))))
        assert found is None
        graph = await scratch.client.protocol.send_request_async("distdev/serviceGraph", {})
        (root,) = graph.roots
        hub_node = next(c for c in root.children if c.id == "app/hub")
        assert hub_node.error == "no such file"
    finally:
        hub.write_text(text)
        scratch.client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(
            [types.FileEvent(uri=hub.as_uri(), type=types.FileChangeType.Created)]))
    await _alive(scratch)


async def test_robustness_build_output_announced_by_the_watcher_is_not_indexed(scratch) -> None:
    # A build writes copies of the services under .distdev/; the editor's watcher reports them.
    copy = scratch.root / ".distdev" / "build" / "services" / "app" / "bundle" / "app.py"
    copy.parent.mkdir(parents=True)
    copy.write_text((scratch.root / "app.py").read_text())
    try:
        scratch.client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(
            [types.FileEvent(uri=copy.as_uri(), type=types.FileChangeType.Created)]))
        graph = await scratch.client.protocol.send_request_async("distdev/serviceGraph", {})
        assert [root.file for root in graph.roots] == [str(scratch.root / "app.py")]
    finally:
        shutil.rmtree(scratch.root / ".distdev")
    await _alive(scratch)
