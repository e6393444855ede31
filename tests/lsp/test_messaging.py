"""The language server on queues and topics: ``jobs.`` completes the queue's methods, and the
build-time wiring (``jobs.consume(worker.handle)``) and a push are no diagnostic, while a
method a topic lacks is."""

from __future__ import annotations

import textwrap

import pytest
from lsprotocol import types

pytestmark = pytest.mark.asyncio(loop_scope="session")

APP = textwrap.dedent('''
    from distdev import import_service, resources

    jobs = resources.queue("jobs", max_attempts=3)
    loans = resources.topic("loans")
    worker = import_service("./worker.py")
    jobs.consume(worker.handle)  # @consume
    loans.subscribe(worker.on_loan)  # @subscribe


    def order(n: int) -> int:
        loans.publish({"n": n})  # @publish
        loans.push({"n": n})  # @wrong
        return jobs.push({"n": n})  # @push
''').lstrip()

WORKER = textwrap.dedent('''
    def handle(message: dict) -> None:
        pass


    def on_loan(message: dict) -> None:
        pass
''').lstrip()


async def _complete(ws, rel: str, text: str, prefix: str) -> list[str]:
    """Completions after ``prefix`` typed on a new last line (as tests/lsp/test_resources.py
    asks for them)."""
    await ws.open(rel, text)
    body = text + f"\n\ndef extra() -> None:\n    {prefix}\n"
    await ws.change(rel, body, 2)
    line = len(body.splitlines()) - 1
    result = await ws.client.text_document_completion_async(types.CompletionParams(
        types.TextDocumentIdentifier(ws.uri(rel)), types.Position(line, len("    " + prefix))))
    await ws.close(rel)
    assert result is not None
    items = result.items if isinstance(result, types.CompletionList) else result
    return sorted(i.label for i in items)


async def test_a_queue_completes_its_methods_and_its_wiring_is_no_diagnostic(written) -> None:
    (written.root / "app.py").write_text(APP)
    (written.root / "worker.py").write_text(WORKER)
    assert await _complete(written, "app.py", APP, "jobs.") == [
        "consume", "dead_letters", "push", "retry", "stats"]
    assert await _complete(written, "app.py", APP, "loans.") == [
        "dead_letters", "publish", "retry", "stats", "subscribe"]
    await written.open("app.py")
    by_line = {d.range.start.line: d.message for d in written.diagnostics("app.py")}
    assert "a topic resource has no method 'push'" in by_line.get(
        written.line_of("app.py", "wrong"), "")
    for marker in ("consume", "subscribe", "publish", "push"):
        assert written.line_of("app.py", marker) not in by_line, by_line
