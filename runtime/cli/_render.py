"""Output for people (rich, on a terminal) and for programs (``--json``, on stdout).

Results go to stdout; messages, warnings and errors to stderr, so ``--json`` output stays
parseable whatever else is said.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Any

import msgspec
from rich.console import Console
from rich.markup import escape

_DISTDEV = str(Path(__file__).resolve().parent.parent)
_DISTDEV_LINKED = str(Path(__file__).parent.parent)


_UNBOUNDED = 1_000_000  # columns, when the output goes to a file or a pipe


class Out:
    def __init__(self, json_mode: bool = False) -> None:
        self.json_mode = json_mode
        # On a terminal tables fit its width; into a pipe nothing is cut to a width nobody has.
        self.stdout = Console(highlight=False, soft_wrap=True,
                              width=None if sys.stdout.isatty() else _UNBOUNDED)
        self.stderr = Console(stderr=True, highlight=False, soft_wrap=True)

    def json(self, value: Any) -> None:
        # UTF-8 as it is: a name in Greek prints as Greek, not as \u escapes.
        text = json.dumps(value, indent=None if self.json_mode else 2, ensure_ascii=False)
        # A lone surrogate (a non-UTF-8 name or environment value, decoded with
        # surrogateescape) cannot be written as UTF-8: it stays a \u escape, which JSON reads
        # back as the same string.
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
        self.stdout.out(text, highlight=False)

    def json_text(self, encoded: bytes) -> None:
        """Print JSON already encoded (compact with ``--json``, else indented)."""
        if not self.json_mode:
            encoded = msgspec.json.format(encoded, indent=2)
        self.stdout.out(encoded.decode(), highlight=False)

    def print(self, *renderables: Any) -> None:
        self.stdout.print(*renderables)

    def info(self, message: str) -> None:
        self.stderr.print(f"[dim]{escape(message)}[/dim]")

    def warn(self, message: str) -> None:
        self.stderr.print(f"[yellow]warning:[/yellow] {escape(message)}")

    def error(self, title: str, message: str) -> None:
        self.stderr.print(f"[bold red]error[/bold red] ({escape(title)}): {escape(message)}")

    def user_traceback(self, title: str, error: BaseException) -> None:
        """An exception from the user's code, with distdev's own frames left out."""
        frames = [
            f for f in traceback.extract_tb(error.__traceback__)
            if not f.filename.startswith((_DISTDEV, _DISTDEV_LINKED))
        ]
        text = "".join(
            ["Traceback (most recent call last):\n"]
            + traceback.format_list(frames)
            + traceback.format_exception_only(error)
        )
        self.stderr.print(f"[bold red]error[/bold red]: {escape(title)}")
        self.stderr.out(text.rstrip(), highlight=False)
