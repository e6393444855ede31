"""Build the shop, run it with `distdev dev`, send it a few requests and print the answers.

Run from the repository root: `make demo` (or `python examples/shop/demo.py` in the venv).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

SHOP = Path(__file__).resolve().parent
DISTDEV = [sys.executable, "-m", "distdev"]


def post(url: str, export: str, args: dict[str, object]) -> tuple[int, object]:
    request = urllib.request.Request(
        f"{url}/{export}", data=json.dumps(args).encode(),
        headers={"Content-Type": "application/json"}, method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="distdev-demo-"))
    out, state = work / "build", work / "state"
    print(f"$ distdev build {SHOP / 'app.py'}", flush=True)
    subprocess.run([*DISTDEV, "build", str(SHOP / "app.py"), "-o", str(out)], check=True)
    print(f"\n$ distdev graph {out}", flush=True)
    subprocess.run([*DISTDEV, "graph", str(out)], check=True)

    print("\n$ distdev dev examples/shop/app.py --port 0", flush=True)
    dev = subprocess.Popen(
        [*DISTDEV, "dev", str(SHOP / "app.py"), "--port", "0", "-o", str(out),
         "--state", str(state)],
        stderr=subprocess.PIPE, text=True, env=dict(os.environ, SHOP_OUTBOX=str(work / "outbox")),
    )
    assert dev.stderr is not None
    url = None
    for line in dev.stderr:
        print(f"  {line.rstrip()}")
        found = re.search(r"http://[\d.]+:\d+", line)
        if found:
            url = found.group(0)
            break
    if url is None:
        raise SystemExit("distdev dev did not start; see the messages above")
    try:
        requests = [
            ("list_products", {}),
            ("place_order", {"user": "ann", "item": "book", "quantity": 2}),
            ("place_order", {"user": "bob", "item": "lamp"}),
            ("revenue", {}),
            ("place_order", {"user": "cy", "item": "piano"}),
            ("place_order", {"user": "cy", "item": "pen", "quantity": "many"}),
        ]
        for export, args in requests:
            status, answer = post(url, export, args)
            print(f"\nPOST /{export} {json.dumps(args)}\n  -> {status} {json.dumps(answer)}")
    finally:
        dev.send_signal(signal.SIGINT)
        dev.wait(timeout=30)

    journal = state / "app" / "orders" / "journal.cbor"
    print(f"\n$ distdev replay {journal}   # the orders service, restored from its journal")
    subprocess.run([*DISTDEV, "replay", str(journal)], check=True)


if __name__ == "__main__":
    main()
