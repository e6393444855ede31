"""Diagnostics published on didOpen/didChange/disk changes: the membrane's rules."""

from __future__ import annotations

import pytest
import pytest_asyncio
from lsprotocol import types

pytestmark = pytest.mark.asyncio(loop_scope="session")

MAIN = "broken/main.py"


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def opened(broken):
    await broken.open("main.py")
    await broken.open("svc.py")
    return broken


@pytest.mark.parametrize(("marker", "codes"), [
    ("missing-file", ["missing-service"]),
    ("private", ["not-exported"]),
    ("imported", ["not-exported"]),
    ("effect", ["not-exported"]),
    ("missing-export", ["not-exported"]),
    ("arity-missing", ["arity"]),
    ("arity-many", ["arity"]),
    ("bad-keyword", ["keyword"]),
    ("bad-type", ["argument-type"]),
    ("bad-type-2", ["argument-type"]),
    ("bad-none", ["argument-type"]),
    ("lambda-arg", ["membrane-type"]),
    ("fine", []),
    ("fine-widening", []),
    ("plain-binding", []),
])
async def test_diagnostics_caller_side(opened, marker: str, codes: list[str]) -> None:
    assert opened.codes_at("main.py", marker) == codes


async def test_diagnostics_messages_say_what_to_do(opened) -> None:
    by_line = {d.range.start.line: d.message for d in opened.diagnostics("main.py")}
    assert "is private to svc.py" in by_line[opened.line_of("main.py", "private")]
    assert "imported by svc.py, not defined there" in by_line[opened.line_of("main.py", "imported")]
    assert "ghost.py" in by_line[opened.line_of("main.py", "missing-file")]
    assert "'name'" in by_line[opened.line_of("main.py", "arity-missing")]
    assert "colour" in by_line[opened.line_of("main.py", "bad-keyword")]
    assert "str, not int" in by_line[opened.line_of("main.py", "bad-type")]


async def test_diagnostics_range_is_the_export_name(opened) -> None:
    line = opened.line_of("main.py", "private")
    (diag,) = [d for d in opened.diagnostics("main.py") if d.range.start.line == line]
    assert diag.range.start.character == opened.pos("main.py", "private", "_secret").character
    assert diag.range.end.character == diag.range.start.character + len("_secret")
    assert diag.source == "distdev"


@pytest.mark.parametrize(("marker", "words"), [
    ("callable", "a function"),
    ("iterator", "an iterator"),
    ("socket", "a socket"),
    ("lambda-default", "lambda default"),
    ("plain", "not a dataclass"),
])
async def test_diagnostics_unserializable_export_signatures(opened, marker: str, words: str) -> None:
    line = opened.line_of("svc.py", marker)
    messages = [d.message for d in opened.diagnostics("svc.py") if d.range.start.line == line]
    assert len(messages) == 1 and words in messages[0]


async def test_diagnostics_serializable_signatures_are_clean(opened) -> None:
    flagged = {d.range.start.line for d in opened.diagnostics("svc.py")}
    marked = {opened.line_of("svc.py", m)
              for m in ("callable", "iterator", "socket", "lambda-default", "plain")}
    assert flagged == marked


async def test_diagnostics_cycle(broken) -> None:
    await broken.open("cycle_a.py")
    (diag,) = broken.diagnostics("cycle_a.py")
    assert diag.code == "service-cycle"
    assert diag.range.start.line == broken.line_of("cycle_a.py", "cycle-a")
    assert "cycle_a.py -> cycle_b.py -> cycle_a.py" in diag.message


async def test_diagnostics_shop_is_clean(shop) -> None:
    for rel in ("app.py", "catalog.py", "billing/billing.py", "billing/ledger.py",
                "orders/orders.py"):
        await shop.open(rel)
        assert shop.diagnostics(rel) == [], rel


async def test_diagnostics_shop_in_memory_mistake(shop) -> None:
    base = (shop.root / "app.py").read_text()
    await shop.open("app.py")
    await shop.change("app.py", base + "\nbilling.charge('ann', '12')\nledger = billing.ledger\n", 5)
    codes = sorted(str(d.code) for d in shop.diagnostics("app.py"))
    assert codes == ["argument-type", "not-exported"]
    await shop.change("app.py", base, 6)
    assert shop.diagnostics("app.py") == []


async def test_diagnostics_follow_injected_proxy(scratch) -> None:
    base = (scratch.root / "hub.py").read_text()
    await scratch.open("hub.py", base.replace("_store.work(text, times=3)",
                                              "_store.work(text, times='3')"))
    (diag,) = scratch.diagnostics("hub.py")
    assert diag.code == "argument-type" and "worker.py" in diag.message
    await scratch.change("hub.py", base, 2)
    assert scratch.diagnostics("hub.py") == []


async def test_diagnostics_callee_edit_rediagnoses_open_caller(scratch) -> None:
    await scratch.open("app.py")
    assert scratch.diagnostics("app.py") == []
    worker = (scratch.root / "right/worker.py").read_text()
    await scratch.open("right/worker.py")
    await scratch.change("right/worker.py", worker.replace("times: int = 1", "count: int = 1"), 2)
    assert [d.code for d in scratch.diagnostics("app.py")] == ["keyword"]
    await scratch.change("right/worker.py", worker, 3)
    assert scratch.diagnostics("app.py") == []


async def test_diagnostics_disk_change_and_vanished_file(scratch) -> None:
    await scratch.open("left/worker.py")
    helper = scratch.root / "left/helper.py"
    text = helper.read_text()
    helper.unlink()
    scratch.client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(
        [types.FileEvent(uri=helper.as_uri(), type=types.FileChangeType.Deleted)]))
    await scratch.settle("left/worker.py")
    assert [d.code for d in scratch.diagnostics("left/worker.py")] == ["missing-service"]
    helper.write_text(text.replace("def shout(", "def yell("))
    await scratch.change("left/worker.py", (scratch.root / "left/worker.py").read_text(), 2)
    assert [d.code for d in scratch.diagnostics("left/worker.py")] == ["not-exported"]
    helper.write_text(text)
    scratch.client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(
        [types.FileEvent(uri=helper.as_uri(), type=types.FileChangeType.Changed)]))
    await scratch.settle("left/worker.py")
    assert scratch.diagnostics("left/worker.py") == []
