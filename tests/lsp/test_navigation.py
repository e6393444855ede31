"""Definition, hover, completion, signature help, references and rename through proxies."""

from __future__ import annotations

import pytest
from lsprotocol import types

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _doc(ws, rel):
    return types.TextDocumentIdentifier(ws.uri(rel))


async def test_definition_shop_lands_on_callee_def(shop) -> None:
    await shop.open("app.py")
    source = (shop.root / "app.py").read_text().splitlines()
    line = next(i for i, text in enumerate(source) if "orders.place(" in text)
    result = await shop.client.text_document_definition_async(types.DefinitionParams(
        _doc(shop, "app.py"), types.Position(line, source[line].index("place") + 2)))
    assert result is not None and len(result) == 1
    assert result[0].uri == shop.uri("orders/orders.py")
    target = (shop.root / "orders/orders.py").read_text().splitlines()[result[0].range.start.line]
    assert target.startswith("def place(")
    assert target[result[0].range.start.character:].startswith("place")


async def test_definition_through_injected_global(shop) -> None:
    await shop.open("orders/orders.py")
    source = (shop.root / "orders/orders.py").read_text().splitlines()
    line = next(i for i, text in enumerate(source) if "_billing.charge(" in text)
    result = await shop.client.text_document_definition_async(types.DefinitionParams(
        _doc(shop, "orders/orders.py"), types.Position(line, source[line].index("charge"))))
    assert result is not None and [r.uri for r in result] == [shop.uri("billing/billing.py")]
    defline = (shop.root / "billing/billing.py").read_text().splitlines()[result[0].range.start.line]
    assert defline.startswith("def charge(")


async def test_definition_same_literal_two_files(tricky) -> None:
    await tricky.open("left/worker.py")
    await tricky.open("right/worker.py")
    left = await tricky.client.text_document_definition_async(
        types.DefinitionParams(**_params(tricky.at("left/worker.py", "left-shout", "shout"))))
    right = await tricky.client.text_document_definition_async(
        types.DefinitionParams(**_params(tricky.at("right/worker.py", "right-whisper", "whisper"))))
    assert left is not None and right is not None
    assert [(r.uri, r.range.start.line) for r in left] == [
        (tricky.uri("left/helper.py"), tricky.line_of("left/helper.py", "def-shout"))]
    assert [(r.uri, r.range.start.line) for r in right] == [
        (tricky.uri("right/helper.py"), tricky.line_of("right/helper.py", "def-whisper"))]


async def test_definition_of_binding_opens_service_file(tricky) -> None:
    await tricky.open("left/worker.py")
    result = await tricky.client.text_document_definition_async(types.DefinitionParams(
        **_params(tricky.at("left/worker.py", "left-helper-binding", "./helper.py"))))
    assert result is not None and result[0].uri == tricky.uri("left/helper.py")


async def test_definition_proxy_stored_in_global_resolves_each_argument(tricky) -> None:
    await tricky.open("hub.py")
    worker = await tricky.client.text_document_definition_async(types.DefinitionParams(
        **_params(tricky.at("hub.py", "hub-worker-work", "work", 1))))
    store = await tricky.client.text_document_definition_async(types.DefinitionParams(
        **_params(tricky.at("hub.py", "store-work", "work"))))
    assert worker is not None and [r.uri for r in worker] == [tricky.uri("left/worker.py")]
    assert store is not None and [r.uri for r in store] == [tricky.uri("right/worker.py")]


def _params(at: types.TextDocumentPositionParams) -> dict[str, object]:
    return {"text_document": at.text_document, "position": at.position}


async def test_hover_shows_signature_and_docstring(shop) -> None:
    await shop.open("orders/orders.py")
    source = (shop.root / "orders/orders.py").read_text().splitlines()
    line = next(i for i, text in enumerate(source) if "_billing.charge(" in text)
    hover = await shop.client.text_document_hover_async(types.HoverParams(
        _doc(shop, "orders/orders.py"), types.Position(line, source[line].index("charge") + 1)))
    assert hover is not None
    assert isinstance(hover.contents, types.MarkupContent)
    assert "def charge(user: str, cents: int) -> Receipt" in hover.contents.value
    assert "billing.py" in hover.contents.value


async def test_hover_docstring_tricky(tricky) -> None:
    await tricky.open("app.py")
    hover = await tricky.client.text_document_hover_async(types.HoverParams(
        **_params(tricky.at("app.py", "right-work", "work"))))
    assert hover is not None and isinstance(hover.contents, types.MarkupContent)
    assert "def work(text: str, times: int = 1) -> str" in hover.contents.value
    assert "Right worker: whispers." in hover.contents.value


async def test_completion_lists_exports_only(shop) -> None:
    text = (shop.root / "billing/billing.py").read_text() + "\n\ndef extra() -> None:\n    ledger.\n"
    await shop.open("billing/billing.py", text)
    line = len(text.splitlines()) - 1
    result = await shop.client.text_document_completion_async(types.CompletionParams(
        _doc(shop, "billing/billing.py"), types.Position(line, len("    ledger."))))
    assert result is not None
    items = result.items if isinstance(result, types.CompletionList) else result
    assert sorted(i.label for i in items) == ["record", "total"]
    assert any(i.detail == "def record(user: str, cents: int) -> int" for i in items)
    await shop.change("billing/billing.py", (shop.root / "billing/billing.py").read_text(), 2)


async def test_completion_respects_all_and_folder(tricky) -> None:
    base = (tricky.root / "right/worker.py").read_text()
    text = base + "\n\ndef extra() -> None:\n    helper.\n"
    await tricky.open("right/worker.py", text)
    line = len(text.splitlines()) - 1
    result = await tricky.client.text_document_completion_async(types.CompletionParams(
        _doc(tricky, "right/worker.py"), types.Position(line, len("    helper."))))
    assert result is not None
    items = result.items if isinstance(result, types.CompletionList) else result
    assert [i.label for i in items] == ["whisper"]  # not louder (outside __all__), not shout
    await tricky.change("right/worker.py", base, 2)


async def test_signature_help_active_parameter(tricky) -> None:
    base = (tricky.root / "app.py").read_text()
    text = base + "\nright.work('a', "
    await tricky.open("app.py", text)
    lines = text.split("\n")
    result = await tricky.client.text_document_signature_help_async(types.SignatureHelpParams(
        _doc(tricky, "app.py"), types.Position(len(lines) - 1, len(lines[-1]))))
    assert result is not None
    assert result.signatures[0].label == "def work(text: str, times: int = 1) -> str"
    assert result.active_parameter == 1
    assert result.signatures[0].documentation == "Right worker: whispers."
    await tricky.change("app.py", base, 2)


async def test_references_from_def_find_callers_in_other_services(tricky) -> None:
    await tricky.open("left/worker.py")
    refs = await tricky.client.text_document_references_async(types.ReferenceParams(
        context=types.ReferenceContext(include_declaration=False),
        **_params(tricky.at("left/worker.py", "def-left-work", "work"))))
    assert refs is not None
    found = sorted((r.uri, r.range.start.line) for r in refs)
    assert found == sorted([
        (tricky.uri("app.py"), tricky.line_of("app.py", "left-work")),
        (tricky.uri("hub.py"), tricky.line_of("hub.py", "hub-worker-work")),
    ])


async def test_references_shop_charge(shop) -> None:
    await shop.open("billing/billing.py")
    source = (shop.root / "billing/billing.py").read_text().splitlines()
    line = next(i for i, text in enumerate(source) if text.startswith("def charge("))
    refs = await shop.client.text_document_references_async(types.ReferenceParams(
        context=types.ReferenceContext(include_declaration=True),
        text_document=_doc(shop, "billing/billing.py"), position=types.Position(line, 5)))
    assert refs is not None
    assert sorted(r.uri for r in refs) == [shop.uri("billing/billing.py"),
                                           shop.uri("orders/orders.py")]


async def test_rename_export_across_services(tricky) -> None:
    await tricky.open("right/helper.py")
    at = tricky.at("right/helper.py", "def-whisper", "whisper")
    prepared = await tricky.client.text_document_prepare_rename_async(
        types.PrepareRenameParams(**_params(at)))
    assert prepared is not None
    edit = await tricky.client.text_document_rename_async(types.RenameParams(
        new_name="murmur", **_params(at)))
    assert edit is not None and edit.changes is not None
    helper = {(e.range.start.line, e.new_text) for e in edit.changes[tricky.uri("right/helper.py")]}
    all_line = next(i for i, t in enumerate((tricky.root / "right/helper.py").read_text()
                                            .splitlines()) if t.startswith("__all__"))
    assert helper == {(tricky.line_of("right/helper.py", "def-whisper"), "murmur"),
                      (all_line, '"murmur"')}
    worker = edit.changes[tricky.uri("right/worker.py")]
    assert [(e.range.start.line, e.new_text) for e in worker] == [
        (tricky.line_of("right/worker.py", "right-whisper"), "murmur")]
    assert tricky.uri("left/worker.py") not in edit.changes  # its helper is another file


async def test_rename_refuses_bad_name(tricky) -> None:
    await tricky.open("right/helper.py")
    with pytest.raises(Exception, match="identifier"):
        await tricky.client.text_document_rename_async(types.RenameParams(
            new_name="not a name",
            **_params(tricky.at("right/helper.py", "def-whisper", "whisper"))))


async def test_rename_refuses_a_private_name_that_would_break_the_callers(tricky) -> None:
    """``_hidden`` is no export: the rename would leave right/worker.py calling a name its
    proxy refuses."""
    await tricky.open("right/helper.py")
    with pytest.raises(Exception, match="private to its service"):
        await tricky.client.text_document_rename_async(types.RenameParams(
            new_name="_hidden",
            **_params(tricky.at("right/helper.py", "def-whisper", "whisper"))))
