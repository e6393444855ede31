"""The language server on resources (``resources.sql``/``kv``/``secret``): ``db.`` completes
the kind's methods, hover describes one, a method the kind lacks or a wrong arity is a
diagnostic — in the declaring service and in a service the proxy was handed to."""

from __future__ import annotations

import textwrap

import pytest
from lsprotocol import types

pytestmark = pytest.mark.asyncio(loop_scope="session")

APP = textwrap.dedent('''
    from distdev import import_service, resources

    db = resources.sql("library")
    key = resources.secret("key", generate=32)
    shelf = import_service("./shelf.py")
    shelf.connect(db, key)


    def titles() -> list:
        return db.query("SELECT title FROM books")  # @query
''').lstrip()

SHELF = textwrap.dedent('''
    _db = None
    _key = None


    def connect(db, key) -> None:
        global _db, _key
        _db, _key = db, key


    def count() -> int:
        return _db.query_one("SELECT count(*) FROM books")[0]  # @handed


    def wrong() -> None:
        _db.qurey("SELECT 1")  # @typo
        _key.reveal("extra")  # @arity
''').lstrip()


def _items(result: types.CompletionList | list[types.CompletionItem] | None) -> list[str]:
    assert result is not None
    items = result.items if isinstance(result, types.CompletionList) else result
    return sorted(i.label for i in items)


async def _complete(ws, rel: str, text: str, prefix: str) -> list[str]:
    """Completions after ``prefix`` typed on a new last line (the file parsed well before)."""
    await ws.open(rel, text)
    body = text + f"\n\ndef extra() -> None:\n    {prefix}\n"
    await ws.change(rel, body, 2)
    line = len(body.splitlines()) - 1
    result = await ws.client.text_document_completion_async(types.CompletionParams(
        types.TextDocumentIdentifier(ws.uri(rel)), types.Position(line, len("    " + prefix))))
    await ws.close(rel)
    return _items(result)


async def test_completion_lists_a_resources_methods(written) -> None:
    (written.root / "app.py").write_text(APP)
    (written.root / "shelf.py").write_text(SHELF)
    assert await _complete(written, "app.py", APP, "db.") == [
        "execute", "executescript", "query", "query_one", "transaction"]
    assert await _complete(written, "app.py", APP, "key.") == ["reveal"]
    # Through the membrane: the proxy shelf.connect was given.
    assert await _complete(written, "shelf.py", SHELF, "_db.") == [
        "execute", "executescript", "query", "query_one", "transaction"]


async def test_hover_describes_a_resource_method(written) -> None:
    (written.root / "app.py").write_text(APP)
    (written.root / "shelf.py").write_text(SHELF)
    await written.open("app.py")
    hover = await written.client.text_document_hover_async(types.HoverParams(
        types.TextDocumentIdentifier(written.uri("app.py")), written.pos("app.py", "query", "query")))
    assert hover is not None
    text = hover.contents.value if isinstance(hover.contents, types.MarkupContent) \
        else str(hover.contents)
    assert "def query(sql: str" in text and "list[tuple]" in text
    assert "method of a `sql` resource" in text
    definition = await written.client.text_document_definition_async(types.DefinitionParams(
        types.TextDocumentIdentifier(written.uri("app.py")), written.pos("app.py", "query", "query")))
    assert not definition  # no file of the workspace defines it


async def test_wrong_use_of_a_resource_is_diagnosed(written) -> None:
    (written.root / "app.py").write_text(APP)
    (written.root / "shelf.py").write_text(SHELF)
    await written.open("app.py")
    await written.open("shelf.py")
    by_line = {d.range.start.line: d.message for d in written.diagnostics("shelf.py")}
    typo = by_line.get(written.line_of("shelf.py", "typo"), "")
    assert "a sql resource has no method 'qurey'" in typo
    assert written.line_of("shelf.py", "arity") in by_line
    assert written.line_of("shelf.py", "handed") not in by_line


async def test_the_service_graph_shows_resources_with_their_kind(written) -> None:
    (written.root / "app.py").write_text(APP)
    (written.root / "shelf.py").write_text(SHELF)
    await written.open("app.py")
    result = await written.client.protocol.send_request_async(
        "distdev/serviceGraph", {"uri": written.uri("app.py")})
    (root,) = result.roots
    kinds = {child.id: child.kind for child in root.children}
    assert kinds == {"app/shelf": "service", "app/library": "sql", "app/key": "secret"}
    library = next(c for c in root.children if c.id == "app/library")
    assert library.file == str(written.root / "app.py")
    assert "query" in {e.name for e in library.exports}
    await written.close("app.py")
