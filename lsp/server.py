"""The pygls server: thin handlers that convert LSP in, ask the index, and convert LSP out.

Diagnostics come from two places, merged per document: the index's (``source: "distdev"``), at
once on every change, and the debounced background mypy check's (``source: "distdev (mypy)"``,
``_background``), which keeps its last findings for a document until a newer check replaces
them. ``initializationOptions`` / ``workspace/didChangeConfiguration`` ``typeCheck`` settings
turn the background check off or tune it (``TypeCheckSettings``).

Positions: the index counts UTF-16 columns (LSP's default). When a client negotiates UTF-8 or
UTF-32, ``_Positions`` converts at this boundary using the line's text.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import itertools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from lsprotocol import types
from pygls import uris
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol

from distdev import __version__

from ._background import (
    BackgroundCheck,
    MypyProcess,
    SettingsError,
    TypeCheckSettings,
    problems_by_file,
)
from ._checks import Problem, check_file
from ._index import Index
from ._mypy_worker import CheckReply
from ._queries import Edit, Location, typed_spelling
from ._queries import completions as _completions
from ._queries import definition as _definition
from ._queries import hover as _hover
from ._queries import prepare_rename as _prepare_rename
from ._queries import references as _references
from ._queries import rename as _rename
from ._queries import signature_help as _signature_help
from ._syntax import Span, utf16_to_index

__all__ = ["DistdevLanguageServer", "server", "main", "SERVICE_GRAPH", "MYPY_SOURCE"]

SERVICE_GRAPH = "distdev/serviceGraph"
MYPY_SOURCE = "distdev (mypy)"
log = logging.getLogger("distdev.lsp")
F = TypeVar("F", bound=Callable[..., Any])


class _Protocol(LanguageServerProtocol):
    """Answers a request whose params do not fit its method with InvalidParams: pygls logs and
    drops it, which leaves the client waiting forever."""

    def structure_message(self, data: dict[str, Any]) -> Any:
        try:
            return super().structure_message(data)
        except JsonRpcException as error:
            if isinstance(data, dict) and "id" in data and "method" in data:
                if isinstance(error, JsonRpcInvalidParams):
                    error = JsonRpcInvalidParams(
                        f"the params of {data['method']} do not match the LSP specification")
                self._send_response(data["id"], error=error.to_response_error())
            raise


class DistdevLanguageServer(LanguageServer):
    """A language server holding one ``Index`` of the workspace's service graph."""

    def __init__(self) -> None:
        super().__init__("distdev-lsp", __version__, protocol_cls=_Protocol)
        self.index = Index()
        self.mypy = MypyProcess()
        self.checker = BackgroundCheck(self._open_documents, self.mypy.check, self._checked,
                                       begin=self._check_begins, ended=self._check_ended)
        self.mypy_problems: dict[Path, list[Problem]] = {}  # the last check's, by file
        self._progress: str | None = None
        self._last_failure: str | None = None
        self._tokens = itertools.count(1)

    # -- the background check's side of the server ---------------------------------------------

    def _open_documents(self) -> tuple[str | None, dict[str, str], list[str]]:
        """The workspace's root, its open Python documents and the folders of the applications
        they belong to (the background check names modules from there). Documents outside every
        workspace folder (a debugger's stop file, a library opened by Go to Definition) are not
        the user's code to check."""
        folders = [_path(f.uri) for f in (self.workspace.folders or {}).values()]
        folders.append(_path(self.workspace.root_uri) if self.workspace.root_uri else None)
        roots = [f for f in folders if f is not None and f.is_dir()]
        files = {}
        for uri, doc in list(self.workspace.text_documents.items()):
            path = _path(uri)
            if path is not None and path.suffix == ".py" and (
                    not roots or any(path.is_relative_to(r) for r in roots)):
                files[str(path)] = doc.source
        root = roots[0] if roots else (Path(next(iter(files))).parent if files else None)
        apps = sorted({str(app.parent) for path in files for app in self.index.apps_of(Path(path))})
        return (str(root) if root is not None else None), files, apps

    def _checked(self, files: dict[str, str], reply: CheckReply) -> None:
        if reply.failure is not None:
            if reply.failure != self._last_failure:  # once, not after every keystroke
                self.window_log_message(types.LogMessageParams(
                    types.MessageType.Warning, f"distdev: the background mypy check failed: "
                    f"{reply.failure}"))
            self._last_failure = reply.failure
            return
        self._last_failure = None
        self.mypy_problems.update(problems_by_file(reply, files))
        publish(self)

    async def _check_begins(self) -> None:
        window = self.client_capabilities.window
        if window is None or not window.work_done_progress:
            return
        token = f"distdev-mypy-{next(self._tokens)}"
        try:
            await asyncio.wait_for(self.work_done_progress.create_async(token), timeout=5)
        except Exception:
            return
        self._progress = token
        self.work_done_progress.begin(token, types.WorkDoneProgressBegin(
            title="distdev: mypy", message="checking the open documents"))

    def _check_ended(self, reply: CheckReply, stale: bool) -> None:
        token, self._progress = self._progress, None
        if token is not None:
            what = "superseded by a newer change" if stale else (
                reply.failure or f"{len(reply.findings)} finding(s) in {reply.seconds:.2f} s")
            self.work_done_progress.end(token, types.WorkDoneProgressEnd(message=what))

    def configure(self, raw: Any) -> None:
        """Apply ``typeCheck`` settings; bad ones are reported and the old ones kept."""
        try:
            settings = TypeCheckSettings.read(raw, self.checker.settings)
        except SettingsError as error:
            self.window_show_message(types.ShowMessageParams(
                types.MessageType.Error, f"distdev: {error}"))
            return
        self.checker.settings = settings
        if not settings.enabled:
            self.checker.cancel()
            self.mypy_problems.clear()


server = DistdevLanguageServer()
_SEVERITY = {"error": types.DiagnosticSeverity.Error, "warning": types.DiagnosticSeverity.Warning,
             "information": types.DiagnosticSeverity.Information}


def _path(uri: str) -> Path | None:
    fs = uris.to_fs_path(uri) if uri.startswith("file:") else None
    return Path(fs) if fs else None


def _uri(path: Path) -> str:
    return uris.from_fs_path(str(path)) or path.as_uri()


def _line(path: Path, line: int) -> str:
    info = server.index.current(path)
    lines = info.lines if info is not None else []
    return lines[line] if 0 <= line < len(lines) else ""


def _encoding() -> str | None:
    try:
        return server.workspace.position_encoding
    except Exception:
        return None


def _units(text: str) -> int:
    encoding = _encoding()
    if encoding == types.PositionEncodingKind.Utf8:
        return len(text.encode("utf-8"))
    if encoding == types.PositionEncodingKind.Utf32:
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def _out_col(path: Path, line: int, col: int) -> int:
    text = _line(path, line)
    return col if text.isascii() else _units(text[: utf16_to_index(text, col)])


def _in_pos(path: Path, pos: types.Position) -> tuple[int, int]:
    text = _line(path, pos.line)
    if text.isascii():
        return pos.line, pos.character
    index = next((i for i in range(len(text) + 1) if _units(text[:i]) >= pos.character), len(text))
    return pos.line, len(text[:index].encode("utf-16-le")) // 2


def _range(path: Path, span: Span) -> types.Range:
    return types.Range(types.Position(span.line, _out_col(path, span.line, span.col)),
                       types.Position(span.end_line, _out_col(path, span.end_line, span.end_col)))


def _location(loc: Location) -> types.Location:
    return types.Location(uri=_uri(loc.path), range=_range(loc.path, loc.span))


def _diagnostic(path: Path, problem: Problem, source: str = "distdev") -> types.Diagnostic:
    return types.Diagnostic(range=_range(path, problem.span), message=problem.message,
                            severity=_SEVERITY[problem.severity], code=problem.code,
                            source=source)


def _edits(edits: list[Edit]) -> types.WorkspaceEdit:
    changes: dict[str, list[types.TextEdit]] = {}
    for e in edits:
        changes.setdefault(_uri(e.path), []).append(
            types.TextEdit(range=_range(e.path, e.span), new_text=e.text))
    return types.WorkspaceEdit(changes=changes)


def _at(params: Any) -> tuple[Path, int, int] | None:
    """The file and position of a text-document-position request, if it names a file."""
    path = _path(params.text_document.uri)
    if path is None or server.index.get(path) is None:
        return None
    line, col = _in_pos(path, params.position)
    return path, line, col


def _guarded(fn: F) -> F:
    """Notifications must never take the server down: log and carry on."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception:
            log.exception("distdev-lsp: %s failed", fn.__name__)
            return None

    return run  # type: ignore[return-value]


def publish(ls: DistdevLanguageServer) -> None:
    """Diagnose every open document (callers and callees change each other's diagnostics)."""
    ls.index.refresh()
    for doc_uri in list(ls.workspace.text_documents):
        path = _path(doc_uri)
        if path is None:
            continue
        found = [_diagnostic(path, p) for p in check_file(ls.index, path)]
        found += [_diagnostic(path, p, MYPY_SOURCE) for p in ls.mypy_problems.get(path, [])]
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
            uri=doc_uri, diagnostics=found))


# -- lifecycle and documents ------------------------------------------------------------------

@server.feature(types.INITIALIZE)
@_guarded
def initialize(ls: DistdevLanguageServer, params: types.InitializeParams) -> None:
    ls.configure(params.initialization_options)


@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
@_guarded
def did_change_configuration(ls: DistdevLanguageServer,
                             params: types.DidChangeConfigurationParams) -> None:
    was = ls.checker.settings.enabled
    ls.configure(params.settings)
    if was != ls.checker.settings.enabled:
        publish(ls)  # drop the checker's findings, or start checking
        ls.checker.schedule()


@server.feature(types.SHUTDOWN)
@_guarded
def shutdown(ls: DistdevLanguageServer, params: Any) -> None:
    ls.checker.cancel()
    ls.mypy.stop()


@server.feature(types.INITIALIZED)
@_guarded
def initialized(ls: DistdevLanguageServer, params: types.InitializedParams) -> None:
    folders = [f.uri for f in (ls.workspace.folders or {}).values()] or (
        [ls.workspace.root_uri] if ls.workspace.root_uri else [])
    for folder in folders:
        path = _path(folder)
        if path is not None and path.is_dir():
            ls.index.scan(path)


def _reindex_open_document(ls: DistdevLanguageServer, uri: str) -> None:
    path = _path(uri)
    if path is not None:
        ls.index.update(path, ls.workspace.get_text_document(uri).source)
    publish(ls)
    ls.checker.schedule()


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
@_guarded
def did_open(ls: DistdevLanguageServer, params: types.DidOpenTextDocumentParams) -> None:
    _reindex_open_document(ls, params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
@_guarded
def did_change(ls: DistdevLanguageServer, params: types.DidChangeTextDocumentParams) -> None:
    _reindex_open_document(ls, params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
@_guarded
def did_close(ls: DistdevLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
    path = _path(params.text_document.uri)
    if path is not None:
        ls.index.close(path)
        ls.mypy_problems.pop(path, None)
    ls.text_document_publish_diagnostics(
        types.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[]))
    publish(ls)
    ls.checker.schedule()


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
@_guarded
def did_save(ls: DistdevLanguageServer, params: types.DidSaveTextDocumentParams) -> None:
    # The file on disk now holds this text: check again so the findings match what mypy run
    # from a shell sees (cheap: the cache is warm).
    ls.checker.schedule()


@server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
@_guarded
def did_change_watched_files(ls: DistdevLanguageServer,
                             params: types.DidChangeWatchedFilesParams) -> None:
    for change in params.changes:
        path = _path(change.uri)
        if path is not None and path.suffix == ".py":
            ls.index.reload(path)
    publish(ls)
    ls.checker.schedule()


# -- queries ------------------------------------------------------------------------------------

@server.feature(types.TEXT_DOCUMENT_DEFINITION)
def definition(ls: DistdevLanguageServer, params: types.DefinitionParams
               ) -> list[types.Location] | None:
    at = _at(params)
    return [_location(loc) for loc in _definition(ls.index, *at)] or None if at else None


@server.feature(types.TEXT_DOCUMENT_HOVER)
def hover(ls: DistdevLanguageServer, params: types.HoverParams) -> types.Hover | None:
    at = _at(params)
    found = _hover(ls.index, *at) if at else None
    if at is None or found is None:
        return None
    text, span = found
    return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=text),
                       range=_range(at[0], span))


@server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=["."]))
def completion(ls: DistdevLanguageServer, params: types.CompletionParams
               ) -> types.CompletionList | None:
    at = _at(params)
    if at is None:
        return None
    text = ls.workspace.get_text_document(params.text_document.uri).source
    found = _completions(ls.index, at[0], text, at[1], at[2])
    if found is None:
        return None
    items = [types.CompletionItem(
        label=name, kind=types.CompletionItemKind.Function,
        detail=fn.signature() if fn else f"{name} (imported into {target.path.name})",
        documentation=types.MarkupContent(kind=types.MarkupKind.Markdown,
                                          value=fn.doc or "") if fn and fn.doc else None,
        label_details=types.CompletionItemLabelDetails(description=target.path.name),
    ) for name, fn, target in found]
    return types.CompletionList(is_incomplete=False, items=items)


@server.feature(types.TEXT_DOCUMENT_SIGNATURE_HELP,
                types.SignatureHelpOptions(trigger_characters=["(", ","]))
def signature_help(ls: DistdevLanguageServer, params: types.SignatureHelpParams
                   ) -> types.SignatureHelp | None:
    at = _at(params)
    if at is None:
        return None
    text = ls.workspace.get_text_document(params.text_document.uri).source
    sig = _signature_help(ls.index, at[0], text, at[1], at[2])
    if sig is None:
        return None
    info = types.SignatureInformation(
        label=sig.label, documentation=sig.doc,
        parameters=[types.ParameterInformation(label=p) for p in sig.params])
    return types.SignatureHelp(signatures=[info], active_signature=0,
                               active_parameter=max(sig.active, 0))


@server.feature(types.TEXT_DOCUMENT_REFERENCES)
def references(ls: DistdevLanguageServer, params: types.ReferenceParams
               ) -> list[types.Location] | None:
    at = _at(params)
    found = _references(ls.index, *at, params.context.include_declaration) if at else []
    return [_location(loc) for loc in found] or None


@server.feature(types.TEXT_DOCUMENT_PREPARE_RENAME)
def prepare_rename(ls: DistdevLanguageServer, params: types.PrepareRenameParams
                   ) -> types.Range | None:
    at = _at(params)
    span = _prepare_rename(ls.index, *at) if at else None
    return _range(at[0], span) if at and span else None


@server.feature(types.TEXT_DOCUMENT_RENAME, types.RenameOptions(prepare_provider=True))
def rename(ls: DistdevLanguageServer, params: types.RenameParams) -> types.WorkspaceEdit | None:
    at = _at(params)
    if at is None:
        return None
    edits = _rename(ls.index, *at, params.new_name)
    if isinstance(edits, str):
        raise JsonRpcInvalidParams(edits)
    return _edits(edits)


@server.feature(types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(
    code_action_kinds=[types.CodeActionKind.RefactorRewrite]))
def code_action(ls: DistdevLanguageServer, params: types.CodeActionParams
                ) -> list[types.CodeAction] | None:
    path = _path(params.text_document.uri)
    found = typed_spelling(ls.index, path, params.range.start.line) if path else None
    if found is None:
        return None
    title, edits = found
    return [types.CodeAction(title=title, kind=types.CodeActionKind.RefactorRewrite,
                             edit=_edits(edits))]


@server.feature(SERVICE_GRAPH)
def service_graph(ls: DistdevLanguageServer, params: Any) -> dict[str, Any]:
    """``{"roots": [tree, ...]}``; ``params.uri`` (optional) picks one root file."""
    uri = getattr(params, "uri", None) if params is not None else None
    path = _path(uri) if isinstance(uri, str) else None
    if uri is not None and (path is None or ls.index.get(path) is None):
        raise JsonRpcInvalidParams(f"{uri!r} is not a service file in this workspace")
    roots = [path] if path is not None else ls.index.roots()
    return {"roots": [dataclasses.asdict(ls.index.tree(r)) for r in roots]}


def main() -> None:
    """Serve on stdio."""
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    server.start_io()
