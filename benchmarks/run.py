"""distdev runtime-core benchmarks: one command, every figure beside its baseline.

Run from the repository root::

    .venv/bin/python benchmarks/run.py            # full run (~1-3 minutes)
    .venv/bin/python benchmarks/run.py --quick    # smaller sizes, fewer repetitions (smoke run)
    .venv/bin/python benchmarks/run.py --json     # machine-readable results on stdout
    .venv/bin/python benchmarks/run.py --only membrane replay
    .venv/bin/python benchmarks/run.py --profile  # cProfile of the membrane call, then exit

What is measured (each module's docstring says exactly how):

1. ``membrane`` (bench_membrane): a membrane call with small arguments, service to service and
   outside to service, against a direct Python call of the same code. Goal: <= 5 us a call.
2. ``journal`` (bench_journal): journal append and read-with-validation in events/s, against
   plain ``cbor2`` and ``msgspec.msgpack`` on the same events. Goal: reading >= 200k events/s.
3. ``replay`` (bench_replay): ``distdev.replay`` of a ~100k-event journal recorded by a real app,
   against Temporal's ``Replayer`` (``temporal_baseline.py``). Goal: >= 20x Temporal's events/s.
4. ``build`` (bench_build): ``App.build()`` against the same code run as plain Python; the
   overhead ratio.
5. ``engine`` (bench_engine): a call through the local engine (``distdev up``: client -> service
   process, journaled) over a Unix socket (durable and ``--no-sync``) and TCP, round trip and
   calls/s sequential and 16 in flight, against grpcio's unary call (generic handler, bytes).
   Goal: a round trip <= 1/5 of grpcio's (``--no-sync``: <= 1/15). Also durable (group commit)
   against ``--no-sync``; the ``--no-sync`` round trip beside a raw polled Python socket echo
   (goal: <= 4x) and the durable one beside a bare fdatasync (goal: <= 1.3x), both measured in
   the same repetitions (bench_cross).
6. ``debugger`` (bench_debugger): distdev's debug adapter against plain debugpy on the same
   two-service program: launch to first stop, ``next`` and ``stackTrace`` round trips; step back
   on a 10k-event journal beside restarting plain debugpy at the earlier point. Goals: a step
   >= 3x faster; a launch <= 1.2x debugpy's.
7. ``ray`` (bench_ray): a call round trip on the Ray engine (``distdev deploy --engine ray``)
   beside the local engine, its socket transport beside Ray's actor handles, and deploy time;
   measured in a loopback-only network namespace (skipped with a reason where none can be made).
8. ``lsp`` (bench_lsp): the language server on a generated 200-service workspace: indexing,
   definition p50/p95 beside jedi-language-server's, didChange -> first diagnostics, and the
   background mypy check's latency. Goals: definition p50 <= 10 ms; diagnostics <= 100 ms.
9. ``digest`` (bench_digest): one state digest of 1 KB, 100 KB and 10 MB of state, beside
   hashing its pickle; and what the digest schedule makes of it per call.
10. ``concurrency`` (bench_concurrency): examples/shop through its ingress under ``distdev up``
   with 1, 4 and 16 concurrent clients, the root's interleaving on and off in the same run:
   throughput and p50/p99 of a checkout and of an export that calls nothing. Goals
   (interleaving on): 4 clients >= 1.8x one client's throughput; the export that calls nothing
   keeps its p50 within 2x of its single-client p50.
11. ``functions`` (bench_functions): a function (``host.function``) under 16 concurrent clients
   with ``max_instances=4`` beside ``max_instances=1``, for calls that wait and calls bound by
   the CPU; the pool's hop beside a call to the instance itself; the frozen-globals check
   beside the same module hosted as a process. Goal: four instances > one.
12. ``upgrade`` (bench_upgrade): ``distdev upgrade`` of examples/shop holding ~10k journal
   events, every service's module changed, beside a restart (``down`` + ``up``) of the same
   deployment: what the compatibility gate adds to the restart an upgrade needs anyway.
13. ``resources`` (bench_resources): a SQL query through a resource proxy in ``dev`` and under
   ``up``, on SQLite and PostgreSQL, beside the same query with ``sqlite3`` / ``psycopg``
   directly.
14. ``queue`` (bench_queue): queue throughput, messages handled per second with every push and
   delivery durable, through the store a queue resource keeps, beside a plain SQLite-table queue
   (WAL, ``synchronous=FULL``) with the same producer and consumer threads.
15. ``restore`` (bench_restore): restoring a service from a journal of 1k, 10k, 100k and 1M
   records with checkpoints, beside replaying it whole; what checkpoints cost a call. Goal: a
   restore after 1M records within 2x of one after 1k.

Every figure is the median of several repetitions, measured in this run beside its baseline.
Nothing is asserted: the suite prints, it never fails on a timing. ``PYTHONHASHSEED`` must be
fixed (distdev's replay refuses a seed mismatch), so the script re-executes itself with
``PYTHONHASHSEED=0`` when it is unset or random.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from bench_util import FULL, QUICK, Row, Settings  # noqa: E402  (needs HERE on sys.path)

MEASUREMENTS = ("membrane", "journal", "replay", "build", "engine", "debugger", "ray", "lsp",
                "digest", "concurrency", "functions", "upgrade", "resources", "queue", "restore")


def ensure_hash_seed() -> None:
    """Re-execute this script under ``PYTHONHASHSEED=0`` unless a fixed seed is set."""
    if os.environ.get("PYTHONHASHSEED", "") not in ("", "random"):
        return
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable, str(Path(__file__).resolve()), *sys.argv[1:]])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and few repetitions: a smoke run (< 40 s)")
    parser.add_argument("--json", action="store_true",
                        help="print the results as JSON on stdout instead of a table")
    parser.add_argument("--only", nargs="+", choices=MEASUREMENTS, metavar="NAME",
                        help=f"run only these measurements ({', '.join(MEASUREMENTS)})")
    parser.add_argument("--profile", action="store_true",
                        help="print a cProfile of the service-to-service membrane call and exit")
    return parser.parse_args(argv)


def run(selected: tuple[str, ...], settings: Settings) -> tuple[list[Row], float]:
    """Run the selected measurements in a scratch folder; return their rows and the wall time."""
    import bench_build  # distdev is imported only once the hash seed is fixed
    import bench_concurrency
    import bench_debugger
    import bench_digest
    import bench_engine
    import bench_functions
    import bench_journal
    import bench_lsp
    import bench_membrane
    import bench_queue
    import bench_ray
    import bench_replay
    import bench_resources
    import bench_restore
    import bench_upgrade

    suites: dict[str, Callable[[Path, Settings], list[Row]]] = {
        "membrane": bench_membrane.measure,
        "journal": bench_journal.measure,
        "replay": bench_replay.measure,
        "build": bench_build.measure,
        "engine": bench_engine.measure,
        "debugger": bench_debugger.measure,
        "ray": bench_ray.measure,
        "lsp": bench_lsp.measure,
        "digest": bench_digest.measure,
        "concurrency": bench_concurrency.measure,
        "functions": bench_functions.measure,
        "upgrade": bench_upgrade.measure,
        "resources": bench_resources.measure,
        "queue": bench_queue.measure,
        "restore": bench_restore.measure,
    }
    rows: list[Row] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="distdev-bench-") as tmp:
        for name in selected:
            rows.extend(suites[name](Path(tmp) / name, settings))
    return rows, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ensure_hash_seed()
    import bench_report

    if args.profile:
        import bench_membrane

        with tempfile.TemporaryDirectory(prefix="distdev-bench-") as tmp:
            print(bench_membrane.profile(Path(tmp)))
        return 0
    selected = tuple(m for m in MEASUREMENTS if args.only is None or m in args.only)
    mode = "quick" if args.quick else "full"
    print(f"distdev benchmarks ({mode}): {', '.join(selected)}", file=sys.stderr, flush=True)
    settings = QUICK if args.quick else FULL
    rows, seconds = run(selected, settings)
    env = bench_report.environment(settings, seconds)
    if args.json:
        bench_report.print_json(rows, env)
    else:
        bench_report.print_table(rows, env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
