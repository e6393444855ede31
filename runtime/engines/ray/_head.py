"""The keeper of a local Ray instance: ``python -m distdev.engines.ray._head``.

A Ray instance started by ``ray.init()`` lives as long as the process that started it. This
process starts one with distdev's settings (no dashboard, usage stats off, its temporary folder
where it is told), writes the instance's address to a file, and shuts it down on SIGTERM, so
``distdev down`` stops exactly the Ray processes a deployment started, and no others.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from pathlib import Path

from ._cluster import require_ray


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m distdev.engines.ray._head")
    parser.add_argument("--temp-dir", type=Path, required=True)
    parser.add_argument("--address-file", type=Path, required=True)
    parser.add_argument("--num-cpus", type=int, default=2)
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    ray = require_ray()
    context = ray.init(_temp_dir=str(args.temp_dir.resolve()), include_dashboard=False,
                       num_cpus=args.num_cpus, log_to_driver=False,
                       logging_level=logging.WARNING)
    address = context.address_info["gcs_address"]
    tmp = args.address_file.with_suffix(".tmp")
    tmp.write_text(address + "\n")
    os.replace(tmp, args.address_file)
    print(f"Ray instance up at {address} (temporary folder {args.temp_dir})", flush=True)
    stop.wait()
    ray.shutdown()
    args.address_file.unlink(missing_ok=True)
    print("Ray instance stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
