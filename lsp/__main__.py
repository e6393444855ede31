"""``python -m distdev.lsp``: the language server on stdio."""

from __future__ import annotations

from .server import main

main()
