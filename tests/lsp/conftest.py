"""Shared helpers for the language-server tests: a real server on stdio, driven by pytest-lsp.

Each workspace fixture (``shop``, ``tricky``, ``broken``, ``apps``, ``scratch``,
``typed_workspace``, ``cold``, and the server behind ``written``) is one server for the whole
session (starting one costs about a second, mostly importing lsprotocol); test modules set
``pytestmark = pytest.mark.asyncio(loop_scope="session")``. Only ``typed_workspace``, ``cold``
and ``typed_shop`` run the background mypy check.

Fixture files mark lines with ``# @marker`` comments; ``Workspace.pos`` finds a marker's line and
a token's column on it, so no test hard-codes a line number.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
SHOP = HERE.parent.parent / "examples" / "shop"
SERVER = ClientServerConfig(server_command=[sys.executable, "-m", "distdev.lsp"])


async def start(client: LanguageClient, root: Path, options: object = None) -> None:
    """Initialize a session whose workspace is ``root`` (``options``: initializationOptions)."""
    await client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"),
        root_uri=root.as_uri(),
        workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)],
        initialization_options=options,
    ))


@dataclass
class Workspace:
    """A client plus the folder its server indexes."""

    client: LanguageClient
    root: Path

    def uri(self, rel: str) -> str:
        return (self.root / rel).as_uri()

    def pos(self, rel: str, marker: str, token: str, nth: int = 0) -> types.Position:
        """The position of the ``nth`` ``token`` on the line marked ``# @marker``."""
        for number, line in enumerate((self.root / rel).read_text().splitlines()):
            code, _, comment = line.partition("#")
            if f"@{marker}" in comment.split():
                col = -1
                for _ in range(nth + 1):
                    col = code.index(token, col + 1)
                return types.Position(number, col)
        raise LookupError(f"no # @{marker} in {rel}")

    def line_of(self, rel: str, marker: str) -> int:
        return self.pos(rel, marker, "").line

    async def open(self, rel: str, text: str | None = None) -> None:
        """Open a document (its text from disk unless given) and wait for its diagnostics."""
        body = text if text is not None else (self.root / rel).read_text()
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(
            types.TextDocumentItem(uri=self.uri(rel), language_id="python", version=1,
                                   text=body)))
        await self.settle(rel)

    async def close(self, rel: str) -> None:
        """Close a document: the server goes back to the file on disk."""
        self.client.text_document_did_close(types.DidCloseTextDocumentParams(
            types.TextDocumentIdentifier(self.uri(rel))))
        await self.settle(rel)

    async def settle(self, rel: str) -> None:
        """Wait until notifications sent before now arrived: the server answers in order."""
        await self.client.text_document_hover_async(types.HoverParams(
            types.TextDocumentIdentifier(self.uri(rel)), types.Position(0, 0)))

    async def change(self, rel: str, text: str, version: int) -> None:
        """Replace a document's whole text."""
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(uri=self.uri(rel), version=version),
            [types.TextDocumentContentChangeWholeDocument(text=text)]))
        await self.settle(rel)

    def diagnostics(self, rel: str) -> list[types.Diagnostic]:
        return list(self.client.diagnostics.get(self.uri(rel), []))

    def codes_at(self, rel: str, marker: str) -> list[str]:
        line = self.line_of(rel, marker)
        return sorted(str(d.code) for d in self.diagnostics(rel) if d.range.start.line == line)

    def at(self, rel: str, marker: str, token: str, nth: int = 0
           ) -> types.TextDocumentPositionParams:
        return types.TextDocumentPositionParams(types.TextDocumentIdentifier(self.uri(rel)),
                                                self.pos(rel, marker, token, nth))


def record_diagnostics(client: LanguageClient) -> list[types.PublishDiagnosticsParams]:
    """Every publishDiagnostics from now on, in order (the client keeps only the latest)."""
    seen: list[types.PublishDiagnosticsParams] = []
    features = client.protocol.fm.features
    keep = features[types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS]

    def publish(params: types.PublishDiagnosticsParams) -> None:
        seen.append(params)
        keep(params)

    features[types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS] = publish
    return seen


# The shared sessions assert exact diagnostics: the background mypy check stays off there
# (test_type_check.py turns it on in sessions of its own).
NO_MYPY = {"typeCheck": {"enabled": False}}


async def _session(client: LanguageClient, root: Path) -> AsyncIterator[None]:
    await start(client, root, NO_MYPY)
    yield
    await client.shutdown_session()


@pytest_lsp.fixture(scope="session", config=SERVER)
async def shop_client(lsp_client: LanguageClient) -> AsyncIterator[None]:
    async for _ in _session(lsp_client, SHOP):
        yield


@pytest_lsp.fixture(scope="session", config=SERVER)
async def tricky_client(lsp_client: LanguageClient) -> AsyncIterator[None]:
    async for _ in _session(lsp_client, FIXTURES / "tricky"):
        yield


@pytest_lsp.fixture(scope="session", config=SERVER)
async def broken_client(lsp_client: LanguageClient) -> AsyncIterator[None]:
    async for _ in _session(lsp_client, FIXTURES / "broken"):
        yield


@pytest_lsp.fixture(scope="session", config=SERVER)
async def apps_client(lsp_client: LanguageClient) -> AsyncIterator[None]:
    async for _ in _session(lsp_client, FIXTURES / "apps"):
        yield


@pytest_lsp.fixture(scope="session", config=SERVER)
async def typed_client(lsp_client: LanguageClient, tmp_path_factory: pytest.TempPathFactory
                       ) -> AsyncIterator[None]:
    cache = tmp_path_factory.mktemp("mypy-cache")
    await start(lsp_client, FIXTURES / "typed",
                {"typeCheck": {"debounceMs": 300, "cacheDir": str(cache)}})
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(scope="session", config=SERVER)
async def typed_shop_client(lsp_client: LanguageClient, tmp_path_factory: pytest.TempPathFactory
                            ) -> AsyncIterator[None]:
    cache = tmp_path_factory.mktemp("shop-mypy-cache")
    await start(lsp_client, SHOP, {"typeCheck": {"debounceMs": 100, "cacheDir": str(cache)}})
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(scope="session", config=SERVER)
async def cold_client(lsp_client: LanguageClient, tmp_path_factory: pytest.TempPathFactory
                      ) -> AsyncIterator[None]:
    # A fresh mypy cache: the first check reads typeshed from scratch, so it takes a while.
    cache = tmp_path_factory.mktemp("cold-mypy-cache")
    await start(lsp_client, FIXTURES / "typed",
                {"typeCheck": {"debounceMs": 0, "cacheDir": str(cache)}})
    yield
    await lsp_client.shutdown_session()


@pytest.fixture(scope="session")
def misconfigured_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of fixtures/typed whose mypy.ini names a plugin that does not exist."""
    root = tmp_path_factory.mktemp("misconfigured") / "typed"
    shutil.copytree(FIXTURES / "typed", root)
    (root / "mypy.ini").write_text("[mypy]\nplugins = no_such_mypy_plugin\n")
    return root


@pytest_lsp.fixture(scope="session", config=SERVER)
async def misconfigured_client(lsp_client: LanguageClient, misconfigured_root: Path,
                               tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[None]:
    cache = tmp_path_factory.mktemp("misconfigured-cache")
    await start(lsp_client, misconfigured_root,
                {"typeCheck": {"debounceMs": 0, "cacheDir": str(cache)}})
    yield
    await lsp_client.shutdown_session()


@pytest.fixture(scope="session")
def misconfigured(misconfigured_client: LanguageClient, misconfigured_root: Path) -> Workspace:
    """A server whose background check cannot run: the project's mypy configuration is broken."""
    return Workspace(misconfigured_client, misconfigured_root)


@pytest.fixture(scope="session")
def cold(cold_client: LanguageClient) -> Workspace:
    """A server of its own on fixtures/typed whose mypy cache starts empty."""
    return Workspace(cold_client, FIXTURES / "typed")


@pytest.fixture(scope="session")
def scratch_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A writable copy of the tricky fixture, for tests that edit or delete files."""
    root = tmp_path_factory.mktemp("scratch") / "tricky"
    shutil.copytree(FIXTURES / "tricky", root)
    return root


@pytest_lsp.fixture(scope="session", config=SERVER)
async def scratch_client(lsp_client: LanguageClient, scratch_root: Path) -> AsyncIterator[None]:
    async for _ in _session(lsp_client, scratch_root):
        yield


@pytest_lsp.fixture(scope="session", config=SERVER)
async def blank_client(lsp_client: LanguageClient, tmp_path_factory: pytest.TempPathFactory
                       ) -> AsyncIterator[None]:
    async for _ in _session(lsp_client, tmp_path_factory.mktemp("blank")):
        yield


@pytest.fixture
def written(blank_client: LanguageClient, tmp_path: Path) -> Workspace:
    """A server on this test's ``tmp_path``, where the test writes an application of its own.
    The server's workspace folder is empty (one server for the session, so tests do not see
    each other's files): it reads the files the test opens, and what they import from disk."""
    return Workspace(blank_client, tmp_path)


@pytest.fixture(scope="session")
def shop(shop_client: LanguageClient) -> Workspace:
    """A server whose workspace is examples/shop (read only)."""
    return Workspace(shop_client, SHOP)


@pytest.fixture(scope="session")
def typed_shop(typed_shop_client: LanguageClient) -> Workspace:
    """A server on examples/shop (read only) with the background mypy check on."""
    return Workspace(typed_shop_client, SHOP)


@pytest.fixture(scope="session")
def tricky(tricky_client: LanguageClient) -> Workspace:
    """A server on fixtures/tricky: same literal, two files; __all__; injected proxies."""
    return Workspace(tricky_client, FIXTURES / "tricky")


@pytest.fixture(scope="session")
def broken(broken_client: LanguageClient) -> Workspace:
    """A server on fixtures/broken: one marked line per diagnostic."""
    return Workspace(broken_client, FIXTURES / "broken")


@pytest.fixture(scope="session")
def apps(apps_client: LanguageClient) -> Workspace:
    """A server on fixtures/apps: two applications whose builds stop on a service path."""
    return Workspace(apps_client, FIXTURES / "apps")


@pytest.fixture(scope="session")
def typed_workspace(typed_client: LanguageClient) -> Workspace:
    """A server on fixtures/typed with the background mypy check on (warm after the first)."""
    return Workspace(typed_client, FIXTURES / "typed")


@pytest.fixture
def recorder() -> Callable[[LanguageClient], list[types.PublishDiagnosticsParams]]:
    """``recorder(client)`` starts recording every publishDiagnostics the client receives."""
    return record_diagnostics


@pytest.fixture(scope="session")
def scratch(scratch_client: LanguageClient, scratch_root: Path) -> Workspace:
    """A server on a temporary copy of fixtures/tricky that tests may change."""
    return Workspace(scratch_client, scratch_root)
