"""The gRPC baseline's server for bench_engine: a unary echo of raw bytes, in its own process.

Run as ``python bench_engine_grpc.py``: it serves ``/bench.Echo/Echo`` on 127.0.0.1 (an
ephemeral port) with ``grpc.method_handlers_generic_handler`` and a ``unary_unary`` handler that
takes and returns ``bytes`` (no serializers, no protobuf), prints ``port=<n>`` on stdout, and
serves until its stdin closes or it gets SIGTERM.
"""

from __future__ import annotations

import signal
import sys
import threading
from concurrent import futures

import grpc  # type: ignore[import-untyped]

SERVICE = "bench.Echo"
METHOD = "Echo"
PATH = f"/{SERVICE}/{METHOD}"
WORKERS = 16


def _echo(request: bytes, context: grpc.ServicerContext) -> bytes:
    return request


def main() -> int:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=WORKERS))
    server.add_generic_rpc_handlers((
        grpc.method_handlers_generic_handler(
            SERVICE, {METHOD: grpc.unary_unary_rpc_method_handler(_echo)}),
    ))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def watch_stdin() -> None:
        sys.stdin.read()  # returns when the benchmark closes our stdin (or exits)
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    print(f"port={port}", flush=True)
    stop.wait()
    server.stop(grace=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
