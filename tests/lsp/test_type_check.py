"""The debounced background type check: real mypy with distdev's plugin, run by the server in
a worker process after changes, its findings published beside the index's.

``fixtures/typed/app.py`` passes ``cents = subtotal(prices)`` to ``billing.charge``: the index
cannot infer what ``subtotal`` returns, so only mypy sees ``str(subtotal(prices))`` is wrong.
Nothing here asserts a duration; waits have a generous limit only so a broken server fails
instead of hanging.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from lsprotocol import types
from pytest_lsp import LanguageClient

from distdev.lsp.server import MYPY_SOURCE

pytestmark = pytest.mark.asyncio(loop_scope="session")

TYPED = Path(__file__).resolve().parent / "fixtures" / "typed"
APP = "app.py"
LIMIT = 180.0  # seconds: a cold mypy cache on a loaded machine is slow, but it ends
BAD = ("cents = subtotal(prices)", "cents = str(subtotal(prices))")


def mypy_on(ws: Any, rel: str, marker: str,
            params: types.PublishDiagnosticsParams | None = None) -> list[types.Diagnostic]:
    line = ws.line_of(rel, marker)
    found = params.diagnostics if params is not None else ws.diagnostics(rel)
    return [d for d in found if d.source == MYPY_SOURCE and d.range.start.line == line]


async def until(what: str, done: Callable[[], bool]) -> None:
    """Wait (yielding to the client) until ``done()``; fail after ``LIMIT`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LIMIT
    while not done():
        if loop.time() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.02)


def progress_titles(client: LanguageClient) -> dict[str, list[object]]:
    """The server's mypy progress tokens and their reports so far."""
    return {str(t): r for t, r in client.progress_reports.items()
            if str(t).startswith("distdev-mypy")}


def progress_begins(client: LanguageClient) -> list[types.WorkDoneProgressBegin]:
    """The begin reports of the server's checks."""
    return [v for r in progress_titles(client).values() for v in r
            if isinstance(v, types.WorkDoneProgressBegin)]


def progress_ends(client: LanguageClient) -> list[types.WorkDoneProgressEnd]:
    """The end reports of the server's checks, in the order the checks began."""
    return [v for _, r in sorted(progress_titles(client).items(),
                                 key=lambda item: int(item[0].rpartition("-")[2]))
            for v in r if isinstance(v, types.WorkDoneProgressEnd)]


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def typed(typed_workspace: Any) -> Any:
    await typed_workspace.open(APP)
    return typed_workspace


async def test_type_check_finds_what_only_mypy_sees(typed: Any, recorder: Any) -> None:
    text = (TYPED / APP).read_text()
    seen = recorder(typed.client)
    await typed.change(APP, text.replace(*BAD), 2)
    # The index has nothing to say about a computed argument: its diagnostics come first.
    assert [d for d in typed.diagnostics(APP) if d.source == "distdev"] == []
    await until("mypy's arg-type finding", lambda: bool(mypy_on(typed, APP, "charge")))
    (diag,) = mypy_on(typed, APP, "charge")
    assert diag.code == "arg-type" and '"str"; expected "int"' in diag.message
    assert diag.range.start.character == typed.pos(APP, "charge", "cents").character
    assert diag.severity == types.DiagnosticSeverity.Error
    assert not any(d.source == "distdev" for p in seen for d in p.diagnostics), \
        "the index cannot see this mistake: only the checker may report it"
    await typed.change(APP, text, 3)
    await until("the finding to go after the fix", lambda: not mypy_on(typed, APP, "charge"))
    assert typed.diagnostics(APP) == []


async def test_type_check_sees_an_edited_callee_before_it_is_saved(typed: Any) -> None:
    billing = (TYPED / "billing.py").read_text()
    await typed.open("billing.py")
    await typed.change("billing.py", billing.replace("cents: int", "cents: bytes"), 2)
    await until("the caller's finding after the callee's edit",
                lambda: bool(mypy_on(typed, APP, "charge")))
    (diag,) = mypy_on(typed, APP, "charge")
    assert '"int"; expected "bytes"' in diag.message
    await typed.change("billing.py", billing, 3)
    await until("the caller to be clean again", lambda: not mypy_on(typed, APP, "charge"))
    await typed.close("billing.py")


async def test_type_check_newer_change_supersedes_a_running_check(
        typed: Any, recorder: Any, tmp_path: Path) -> None:
    text = (TYPED / APP).read_text()
    # A fresh cache makes the next check cold, so it is still running when the fix arrives.
    typed.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"distdev": {"typeCheck": {"cacheDir": str(tmp_path / "cold")}}}))
    await until("earlier checks to end", lambda: len(progress_ends(typed.client))
                == len(progress_begins(typed.client)))
    seen = recorder(typed.client)
    begun = len(progress_begins(typed.client))
    await typed.change(APP, text.replace(*BAD), 10)
    await until("the check to begin", lambda: len(progress_begins(typed.client)) > begun)
    await typed.change(APP, text, 11)  # the fix, while the mistake is being checked
    await until("the superseded check and the next one to end",
                lambda: len(progress_ends(typed.client)) > begun + 1)
    first, second = progress_ends(typed.client)[begun:begun + 2]
    assert first.message == "superseded by a newer change"
    assert "0 finding(s)" in (second.message or "")
    assert not any(d.source == MYPY_SOURCE for p in seen for d in p.diagnostics), \
        "the superseded check's finding was published"


async def test_type_check_turned_off_by_configuration(typed: Any) -> None:
    text = (TYPED / APP).read_text()
    await typed.change(APP, text.replace(*BAD), 20)
    await until("mypy's finding", lambda: bool(mypy_on(typed, APP, "charge")))
    typed.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"distdev": {"typeCheck": {"enabled": False}}}))
    await typed.settle(APP)
    assert mypy_on(typed, APP, "charge") == []  # its findings go with it
    await typed.change(APP, text.replace(*BAD) + "\n", 21)
    await typed.settle(APP)
    assert mypy_on(typed, APP, "charge") == []
    typed.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"distdev": {"typeCheck": {"enabled": True}}}))
    await until("mypy's finding once turned on", lambda: bool(mypy_on(typed, APP, "charge")))
    await typed.change(APP, text, 22)
    await until("a clean document", lambda: not mypy_on(typed, APP, "charge"))


async def test_type_check_bad_settings_are_reported(typed: Any) -> None:
    typed.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"distdev": {"typeCheck": {"debounceMs": "soon"}}}))
    await typed.settle(APP)
    (shown,) = [m for m in typed.client.messages if "debounceMs" in m.message]
    assert shown.type == types.MessageType.Error and "milliseconds" in shown.message


async def test_type_check_does_not_block_requests(cold: Any, recorder: Any) -> None:
    ws, cold_client = cold, cold.client
    seen = recorder(cold_client)
    await ws.open(APP, (TYPED / APP).read_text().replace(*BAD))
    await until("the check to begin", lambda: any(
        isinstance(v, types.WorkDoneProgressBegin) for r in progress_titles(cold_client).values()
        for v in r))
    at = ws.at(APP, "charge", "charge")
    found = await cold_client.text_document_definition_async(
        types.DefinitionParams(at.text_document, at.position))
    # The answer came while the check was still running: no end, no finding yet.
    reports = [v for r in progress_titles(cold_client).values() for v in r]
    assert not any(isinstance(v, types.WorkDoneProgressEnd) for v in reports)
    assert not any(d.source == MYPY_SOURCE for p in seen for d in p.diagnostics)
    assert found and found[0].uri == (TYPED / "billing.py").as_uri()
    await until("the check's finding", lambda: bool(mypy_on(ws, APP, "charge")))


async def test_type_check_failure_is_logged_once_and_the_index_goes_on(misconfigured: Any
                                                                     ) -> None:
    text = (TYPED / APP).read_text()
    client = misconfigured.client

    def failures() -> list[str]:
        return [m.message for m in client.log_messages
                if "background mypy check failed" in m.message]

    await misconfigured.open(APP, text + "\nbilling.charge('ann', 'not cents')\n")
    await until("the failure to be logged", lambda: bool(failures()))
    (message,) = failures()
    assert "no_such_mypy_plugin" in message and "mypy.ini" in message
    assert [str(d.code) for d in misconfigured.diagnostics(APP)] == ["argument-type"]
    ends = len(progress_ends(client))
    await misconfigured.change(APP, text, 2)
    await until("the next check to end", lambda: len(progress_ends(client)) > ends)
    assert len(failures()) == 1  # the same failure is not logged after every change
    assert misconfigured.diagnostics(APP) == []


async def test_type_check_leaves_documents_outside_the_workspace_alone(
        typed: Any, tmp_path: Path) -> None:
    # A debugger's stop file, a library opened by Go to Definition: not the user's code to check.
    outside = tmp_path / "before_event_2.py"
    outside.write_text("count: int = 'many'\n_stop()\n")
    await typed.open(str(outside))
    text = (TYPED / APP).read_text()
    await typed.change(APP, text.replace(*BAD), 40)
    await until("mypy's finding in the workspace", lambda: bool(mypy_on(typed, APP, "charge")))
    assert [d for d in typed.diagnostics(str(outside)) if d.source == MYPY_SOURCE] == []
    await typed.change(APP, text, 41)
    await until("the workspace to be clean again", lambda: not mypy_on(typed, APP, "charge"))
    await typed.close(str(outside))


SHOP_FILES = ("app.py", "billing/billing.py", "billing/ledger.py", "orders/orders.py",
              "catalog.py", "models.py")
MISTAKE = '\n_distdev_type_check: int = "not an int"\n'


async def test_type_check_reports_on_every_file_of_the_shop_as_it_is_opened(
        typed_shop: Any) -> None:
    """examples/shop is no package: billing/billing.py has no __init__.py beside it. With app.py
    open (whose import_service loads billing/billing.py) and billing.py opened after it, mypy
    used to name one file twice ("billing" and "billing.billing") and check nothing."""
    client = typed_shop.client

    def failures() -> list[str]:
        return [m.message for m in client.log_messages
                if "background mypy check failed" in m.message]

    for version, rel in enumerate(SHOP_FILES, 2):
        text = (typed_shop.root / rel).read_text()
        await typed_shop.open(rel)
        await typed_shop.change(rel, text + MISTAKE, version)
        line = len((text + MISTAKE).split("\n")) - 2

        def found(rel: str = rel, line: int = line) -> bool:
            return any(d.source == MYPY_SOURCE and d.range.start.line == line
                       and d.code == "assignment" for d in typed_shop.diagnostics(rel))

        await until(f"mypy's finding in {rel}", lambda: found() or bool(failures()))
        assert not failures(), failures()
        await typed_shop.change(rel, text, version + 100)
        await until(f"the finding in {rel} to go", lambda: not found())
    for rel in SHOP_FILES:
        await typed_shop.close(rel)


async def test_type_check_resolves_the_typed_spelling_the_code_action_writes(
        typed_shop: Any) -> None:
    """The code action's import is one mypy resolves in an application that is no package:
    after applying it, a wrong argument through the typed binding is mypy's finding."""
    text = (typed_shop.root / APP).read_text()
    await typed_shop.open(APP)
    line = next(i for i, t in enumerate(text.splitlines()) if t.startswith("billing = "))
    actions = await typed_shop.client.text_document_code_action_async(types.CodeActionParams(
        types.TextDocumentIdentifier(typed_shop.uri(APP)),
        types.Range(types.Position(line, 0), types.Position(line, 0)),
        types.CodeActionContext(diagnostics=[])))
    assert actions and isinstance(actions[0], types.CodeAction) and actions[0].edit
    edits = (actions[0].edit.changes or {})[typed_shop.uri(APP)]
    lines = text.split("\n")
    for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character),
                       reverse=True):
        start, end = edit.range.start, edit.range.end
        head = lines[start.line][:start.character]
        tail = lines[end.line][end.character:]
        lines[start.line:end.line + 1] = (head + edit.new_text + tail).split("\n")
    typed_text = "\n".join(lines) + "\n_wrong: int = billing.revenue()  # @typed-use\n"
    await typed_shop.change(APP, typed_text, 2)
    use = len(typed_text.split("\n")) - 2

    def on(line: int) -> list[types.Diagnostic]:
        return [d for d in typed_shop.diagnostics(APP)
                if d.source == MYPY_SOURCE and d.range.start.line == line]

    await until("mypy's finding through the typed binding", lambda: bool(on(use)))
    imported = next(i for i, t in enumerate(typed_text.split("\n"))
                    if t.strip() == "from billing import billing")
    assert on(imported) == [], [d.message for d in on(imported)]
    await typed_shop.change(APP, text, 3)
    await until("the finding to go", lambda: not on(use))
    await typed_shop.close(APP)
