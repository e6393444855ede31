"""Language server for distdev applications (see DESIGN §5): ``python -m distdev.lsp``.

Layers: ``_syntax`` reads one file with ``ast``; ``_index`` keeps the workspace's service graph
and resolves proxies; ``_checks``, ``_types`` and ``_queries`` answer diagnostics and cursor
questions; only ``server`` knows LSP (pygls, lsprotocol).
"""

from __future__ import annotations

__all__: list[str] = []
