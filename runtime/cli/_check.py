"""``distdev check JOURNAL|DIR... [--source APP_DIR] [--secrets DIR] [--json]``: the
compatibility gate.

Each journal is replayed against the application in ``--source`` (the journal's own code
without it) and reported compatible, or with its first divergence. Journals are replayed under
their own ``PYTHONHASHSEED``: the command runs under the first one's, and checks any recorded
under another in a child of its own. Exit 0: every journal compatible; 2: one diverged; 1: one
could not be read or replayed at all.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from rich.table import Table

from .._spawn import python_module
from .._version import recorded_hash_seed
from ..journal import read_journal
from ..replayer import Verdict, check_journal, journals_in
from ..resources import SecretStore
from ._render import Out

EXIT_OK, EXIT_UNREADABLE, EXIT_DIVERGED = 0, 1, 2


def check(args: argparse.Namespace, out: Out) -> int:
    journals = journals_in(args.journals)
    if not journals:
        out.error("check", f"no journal in {', '.join(map(str, args.journals))}: name journal "
                  "files, or folders holding them (a copied state folder)")
        return EXIT_UNREADABLE
    here, elsewhere = _by_seed(journals)
    secrets = None if args.secrets is None else SecretStore(args.secrets).read
    verdicts = [check_journal(j, args.source, secrets) for j in here]
    for seed, group in elsewhere.items():
        verdicts.extend(_check_under(seed, group, args.source, args.secrets))
    order = {str(j): i for i, j in enumerate(journals)}
    verdicts.sort(key=lambda v: order.get(v.journal, len(order)))
    if out.json_mode:
        out.json([v.as_json() for v in verdicts])
    else:
        out.print(_table(verdicts))
        for verdict in verdicts:
            if verdict.result != "compatible":
                out.error(f"{verdict.service or verdict.journal} {verdict.result}",
                          verdict.message)
    results = {v.result for v in verdicts}
    if "diverged" in results:
        return EXIT_DIVERGED
    return EXIT_UNREADABLE if "unreadable" in results else EXIT_OK


def first_journal_seed(paths: list[str]) -> str | None:
    """The seed ``check`` must run under: the first journal's (the CLI re-executes with it)."""
    for journal in journals_in(paths):
        try:
            return read_journal(journal).header.hash_seed
        except Exception:
            continue
    return None


def _by_seed(journals: list[Path]) -> tuple[list[Path], dict[str, list[Path]]]:
    """The journals this process can replay, and the others by the seed they need."""
    here_seed = recorded_hash_seed()
    here: list[Path] = []
    elsewhere: dict[str, list[Path]] = {}
    for journal in journals:
        try:
            seed = read_journal(journal).header.hash_seed
        except Exception:
            seed = None  # reported unreadable by check_journal
        if seed is None or seed == here_seed:
            here.append(journal)
        else:
            elsewhere.setdefault(seed, []).append(journal)
    return here, elsewhere


def check_elsewhere(journal: str | os.PathLike[str],
                    source: str | os.PathLike[str] | None) -> Verdict:
    """Check one journal in a child process under its own seed."""
    seed = first_journal_seed([str(journal)])
    if seed is None:  # recorded under no pinned seed: any process replays it
        return check_journal(journal, source)
    return _check_under(seed, [Path(journal)], None if source is None else Path(source))[0]


def _check_under(seed: str, journals: list[Path], source: Path | None,
                 secrets: Path | None = None) -> list[Verdict]:
    """Check ``journals`` in a child process running under ``seed``."""
    command = python_module("distdev.cli", "check", "--json", *map(str, journals))
    command += ["--source", str(source)] if source is not None else []
    command += ["--secrets", str(secrets)] if secrets is not None else []
    env = dict(os.environ, PYTHONHASHSEED=seed)
    child = subprocess.run(command, capture_output=True, text=True, env=env,
                           stdin=subprocess.DEVNULL)
    try:
        rows: list[dict[str, Any]] = json.loads(child.stdout)
        return [Verdict(**row) for row in rows]
    except (ValueError, TypeError):
        why = (child.stderr.strip().splitlines() or [f"exit code {child.returncode}"])[-1]
        return [Verdict(str(j), None, 0, "unreadable", f"checking it under PYTHONHASHSEED="
                        f"{seed} failed: {why}") for j in journals]


def _table(verdicts: list[Verdict]) -> Table:
    table = Table("service", "events", "result", "where", box=None)
    for column in table.columns:
        column.overflow = "fold"
    for v in verdicts:
        if v.result == "diverged":
            where = f"event {v.seq}: the code {v.actual} at {v.location}"
            if v.journal_location:
                where += f"; the journal's code was at {v.journal_location}"
        elif v.result == "unreadable":
            where = v.journal
        else:
            where = v.message or "-"
        table.add_row(v.service or "?", str(v.events), v.result, where)
    return table

