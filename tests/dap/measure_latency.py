"""Measure the adapter's latency: launch to first stop, step and stackTrace round trips,
with and without TCP_NODELAY on the debuggee's socket. Not a test (timings are not asserted):

    PYTHONHASHSEED=0 .venv/bin/python tests/dap/measure_latency.py [STEPS]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dap.dap_client import FIXTURES, DapClient, marker

LOOP = FIXTURES / "loop" / "app.py"


def measure(nodelay: bool, steps: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as work:
        client = DapClient(Path(work), env={"DISTDEV_DAP_NODELAY": "1" if nodelay else "0"})
        try:
            started = time.perf_counter()
            client.start({"app": str(LOOP)}, {str(LOOP): [marker(LOOP, "loop-body")]})
            thread = client.wait_stopped()["threadId"]
            first_stop = time.perf_counter() - started
            client.set_breakpoints(str(LOOP), [])
            step_times, stack_times = [], []
            for _ in range(steps):
                t = time.perf_counter()
                client.step("next", thread)
                step_times.append(time.perf_counter() - t)
                t = time.perf_counter()
                client.stack(thread, 0, 1)  # after a step: uncached, debugpy + service lookup
                stack_times.append(time.perf_counter() - t)
        finally:
            client.close()
    return {"first stop": first_stop * 1000, "step": statistics.median(step_times) * 1000,
            "stackTrace": statistics.median(stack_times) * 1000}


def main() -> None:
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    for nodelay in (False, True):
        result = measure(nodelay, steps)
        label = "TCP_NODELAY on " if nodelay else "TCP_NODELAY off"
        print(f"{label}: launch to first stop {result['first stop']:.0f} ms, "
              f"step (median of {steps}) {result['step']:.1f} ms, "
              f"stackTrace {result['stackTrace']:.1f} ms")


if __name__ == "__main__":
    main()
