"""``python -m distdev.dap_adapter``: the Debug Adapter Protocol server, on stdio."""

from __future__ import annotations

import os
import signal
import sys

from ._client import serve


def main() -> int:
    """Serve one session on stdin/stdout."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    # Anything printed by accident must not corrupt the protocol stream.
    sys.stdout = sys.stderr
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    # SIGTERM ends the session as Ctrl-C does (serve ends the program with it), not abruptly;
    # and so does SIGINT even when the adapter was started with it ignored (a job a shell put
    # in the background inherits that, and Python then keeps it ignored).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    return serve(stdin, stdout)


code = main()
# The client's reader thread may still block reading stdin (a session ended by disconnect or a
# signal, the client's stream still open): interpreter shutdown would then abort, waiting for
# that stream's lock. Everything is answered and flushed by now: leave at once.
sys.stderr.flush()
os._exit(code)
