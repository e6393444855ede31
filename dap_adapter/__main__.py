"""``python -m distdev.dap_adapter``: the Debug Adapter Protocol server, on stdio."""

from __future__ import annotations

import os
import sys

from ._client import serve


def main() -> int:
    """Serve one session on stdin/stdout."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    # Anything printed by accident must not corrupt the protocol stream.
    sys.stdout = sys.stderr
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return serve(stdin, stdout)


sys.exit(main())
