"""The background type check's worker: ``python -m distdev.lsp._mypy_worker``, one process that
lives as long as the language server and runs mypy with distdev's plugin when asked.

Protocol: one JSON ``CheckRequest`` a line on stdin, one JSON ``CheckReply`` a line on stdout;
the process ends at end of input (its server went away). Nothing here knows LSP.

Why a process of its own: a mypy build holds the interpreter for hundreds of milliseconds (it
is compiled, so a thread would hold the GIL and stall the server's requests); here mypy and the
plugin are imported once, and every check after the first reads mypy's incremental cache, so
only the open documents (the sources) and what their changes invalidate are analysed again.
docs/language-server.md records the measurements behind this choice.

Unsaved text: mypy's API takes a source's text, but mypy 2.4's native parser reads the file on
disk whenever it exists and ignores the text. ``--shadow-file`` (read SHADOW in place of FILE)
is honoured by both parsers, and the cache then records the shadow file's size and time rather
than the saved file's, so a cached reading of unsaved text is never mistaken for the saved file
later. So every open document whose text differs from its file is written to a shadow file.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import msgspec

__all__ = ["CheckRequest", "CheckReply", "Finding", "PLUGIN", "check", "main"]

PLUGIN = "distdev.lsp.mypy_plugin"
# path:line:col:end_line:end_col: severity: message  [code]  (with --show-error-end)
_LINE = re.compile(r"^(?P<path>.+?):(?P<line>\d+):(?P<col>\d+)(?::(?P<end_line>\d+):"
                   r"(?P<end_col>\d+))?: (?P<severity>error|note|warning): (?P<message>.*?)"
                   r"(?:  \[(?P<code>[a-z0-9-]+)\])?$")


class CheckRequest(msgspec.Struct, frozen=True):
    """Check ``files`` (path -> the text an editor holds) as one mypy build rooted at ``root``.

    ``app_folders`` are the folders of the applications the files belong to (each root
    service's folder): module names are read from there (``_module_names``)."""

    root: str
    files: dict[str, str]
    cache_dir: str
    app_folders: list[str] = []


class Finding(msgspec.Struct, frozen=True):
    """One mypy message; lines 1-based, columns 0-based code points, end exclusive."""

    path: str
    line: int
    col: int
    end_line: int
    end_col: int
    severity: str  # "error" or "note"
    message: str
    code: str | None = None


class CheckReply(msgspec.Struct, frozen=True):
    """What one check found in the requested files; ``failure`` when mypy itself failed."""

    findings: list[Finding]
    seconds: float
    failure: str | None = None


def _shadow(request: CheckRequest) -> list[list[str]]:
    """Write each unsaved text to a shadow file; return mypy's ``shadow_file`` pairs."""
    folder = Path(request.cache_dir, "shadow")
    folder.mkdir(parents=True, exist_ok=True)
    pairs = []
    for path, text in request.files.items():
        try:
            saved = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            saved = None
        if saved == text:
            continue
        name = hashlib.sha1(path.encode("utf-8")).hexdigest()[:16] + ".py"
        (folder / name).write_text(text, encoding="utf-8")
        pairs.append([path, str(folder / name)])
    return pairs


def _module_names(options: Any, app_folders: list[str]) -> None:
    """Name every module by its path from its application's folder, whichever files are open.

    A service is a file, not a package: ``billing/billing.py`` usually has no ``__init__.py``
    beside it. mypy's default then names it ``billing`` when it is a source (its folder taken
    as a base) and ``billing.billing`` when an ``import_service`` call in an open caller loads
    it, and stops: "Source file found twice under different module names". distdev runs every
    service with its application's folder on ``sys.path`` (``from models import Receipt`` in
    ``billing/billing.py`` reads the folder's ``models.py``), so the application folders are
    the package bases: explicit, and folders without ``__init__.py`` namespace packages."""
    options.explicit_package_bases = True
    options.namespace_packages = True
    options.mypy_path = [*dict.fromkeys([*app_folders, *options.mypy_path])]


def _build(request: CheckRequest) -> list[str]:
    """Run one mypy build from ``request.root`` (so the project's own mypy configuration and
    module names apply) and return mypy's formatted messages."""
    try:
        from mypy import build
        from mypy.errors import CompileError
        from mypy.find_sources import create_source_list
        from mypy.main import process_options
    except ImportError:
        raise RuntimeError("the background type check needs mypy in the server's environment "
                           f"({sys.executable} -m pip install mypy), or turn it off with the "
                           "setting typeCheck.enabled: false") from None

    os.chdir(request.root)
    paths = sorted(p for p in request.files if Path(p).is_file())
    if not paths:
        return []
    flags = ["--show-column-numbers", "--show-error-end", "--show-absolute-path",
             "--show-error-codes", "--no-pretty", "--no-error-summary", "--follow-imports=silent",
             "--cache-dir", request.cache_dir]
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stderr):
        try:
            sources, options = process_options([*flags, *paths])
        except SystemExit:
            raise RuntimeError(
                f"mypy refused its configuration: {stderr.getvalue().strip()}") from None
    _module_names(options, request.app_folders)
    sources = create_source_list(paths, options)  # named again, from the application folders
    options.shadow_file = _shadow(request) or None
    extra = []
    if PLUGIN not in options.plugins:
        from .mypy_plugin import DistdevPlugin

        extra.append(DistdevPlugin(options))
    messages: list[str] = []
    try:
        build.build(sources, options, flush_errors=lambda _f, new, _s: messages.extend(new),
                    extra_plugins=extra, stdout=stderr, stderr=stderr)
    except CompileError as error:  # a blocking error: a syntax error, or a broken setup
        messages.extend(m for m in error.messages if m not in messages)
        wanted = {os.path.abspath(p) for p in paths}
        if not any((m := _LINE.match(text)) and os.path.abspath(m["path"]) in wanted
                   for text in messages):
            raise RuntimeError("mypy stopped before checking: " + " ".join(messages)
                               + f" (mypy runs from {request.root} with its configuration "
                               "there)") from None
    return messages


def _findings(messages: list[str], wanted: set[str]) -> list[Finding]:
    found: list[Finding] = []
    for text in messages:
        m = _LINE.match(text)
        if m is None or os.path.abspath(m["path"]) not in wanted:
            continue
        line, col = int(m["line"]), max(int(m["col"]) - 1, 0)
        end_line = int(m["end_line"] or line)
        end_col = int(m["end_col"] or col + 1)
        if (end_line, end_col) <= (line, col):
            end_line, end_col = line, col + 1
        severity = "note" if m["severity"] == "note" else "error"
        if severity == "note" and found and (found[-1].path, found[-1].line) == (
                os.path.abspath(m["path"]), line):
            last = found.pop()  # a note explains the error before it: keep them together
            found.append(msgspec.structs.replace(last, message=f"{last.message}\n{m['message']}"))
            continue
        found.append(Finding(os.path.abspath(m["path"]), line, col, end_line, end_col, severity,
                             m["message"], m["code"]))
    return found


def check(request: CheckRequest) -> CheckReply:
    """One check; never raises (a failure is reported in the reply)."""
    started = time.perf_counter()
    try:
        messages = _build(request)
    except Exception as error:
        return CheckReply([], time.perf_counter() - started, f"{type(error).__name__}: {error}")
    wanted = {os.path.abspath(p) for p in request.files}
    return CheckReply(_findings(messages, wanted), time.perf_counter() - started)


def main() -> None:
    """Serve check requests on stdin/stdout until stdin closes."""
    decoder = msgspec.json.Decoder(CheckRequest)
    encoder = msgspec.json.Encoder()
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        try:
            reply = check(decoder.decode(line))
        except msgspec.DecodeError as error:
            reply = CheckReply([], 0.0, f"bad request: {error}")
        out.write(encoder.encode(reply) + b"\n")
        out.flush()


if __name__ == "__main__":
    main()
