"""Build the shop, run it on the local engine (a process per service), send it requests, kill a
service and watch it come back, and replay a journal.

Run from the repository root: `make demo` (or `python examples/shop/demo.py` in the venv).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

SHOP = Path(__file__).resolve().parent
DISTDEV = [sys.executable, "-m", "distdev"]


def run(*args: str) -> str:
    print(f"\n$ distdev {' '.join(args)}", flush=True)
    result = subprocess.run([*DISTDEV, *args], capture_output=True, text=True)
    print((result.stdout + result.stderr).rstrip(), flush=True)
    if result.returncode != 0:
        raise SystemExit(f"distdev {args[0]} failed")
    return result.stdout


def post(url: str, export: str, args: dict[str, object]) -> object:
    request = urllib.request.Request(
        f"{url}/{export}", data=json.dumps(args).encode(),
        headers={"Content-Type": "application/json"}, method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, answer = response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        status, answer = error.code, json.loads(error.read())
    print(f"\nPOST /{export} {json.dumps(args)}\n  -> {status} {json.dumps(answer)}", flush=True)
    return answer


def status(state: Path) -> dict[str, dict[str, object]]:
    out = subprocess.run([*DISTDEV, "status", "--state", str(state), "--json"],
                         capture_output=True, text=True, check=True).stdout
    return {s["id"]: s for s in json.loads(out)["services"]}


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="distdev-demo-"))
    out, state = work / "build", work / "state"
    os.environ["SHOP_OUTBOX"] = str(work / "outbox.txt")
    run("build", str(SHOP / "app.py"), "-o", str(out))
    run("graph", str(out))
    run("up", str(out), "--state", str(state), "--detach", "--port", "0")
    try:
        run("status", "--state", str(state))
        url = f"http://127.0.0.1:{status(state)['app']['http']}"
        post(url, "list_products", {})
        order = post(url, "place_order", {"user": "ann", "item": "book", "quantity": 2})
        post(url, "place_order", {"user": "cy", "item": "piano"})
        post(url, "place_order", {"user": "cy", "item": "pen", "quantity": "many"})
        post(url, "reviews_of", {"item": "book"})  # rows the build wrote into app/reviews
        post(url, "add_review", {"item": "book", "stars": 4, "text": "sturdy"})
        post(url, "add_review", {"item": "pen", "stars": 9})  # the table's CHECK refuses it
        run("queue", "ls", "--state", str(state))  # app/reviewed: the review, to the catalog
        placed = post(url, "order_status", {"order_id": order["order_id"]})  # type: ignore[index]
        post(url, "receipt_signature", {"receipt_id": placed["receipt"]})  # type: ignore[index]

        ledger = status(state)["app/billing/ledger"]
        print(f"\n$ kill -9 {ledger['pid']}   # the ledger, two levels down", flush=True)
        os.kill(int(str(ledger["pid"])), signal.SIGKILL)
        time.sleep(0.5)
        post(url, "place_order", {"user": "bob", "item": "lamp"})  # waits for the restart
        run("call", "--state", str(state), "app.revenue")
        run("status", "--state", str(state))
        run("replay", str(state / "app" / "billing" / "ledger" / "journal.cbor"))
        # app replays without its database (its journal holds every answer); billing revealed
        # its signing key, which is in no journal: its replay needs the secret store.
        run("replay", str(state / "app" / "journal.cbor"))
        run("replay", str(state / "app" / "billing" / "journal.cbor"), "--secrets",
            str(state / "secrets"))
    finally:
        run("down", "--state", str(state))


if __name__ == "__main__":
    main()
