"""Printing the results: a rich table (figures, baselines, ratios, goals) or JSON."""

from __future__ import annotations

import json
import os
import platform
import sys
from typing import Any

from bench_util import Row, Settings, fmt_value
from rich.console import Console
from rich.table import Table


def environment(settings: Settings, seconds: float) -> dict[str, Any]:
    import distdev

    return {
        "mode": "quick" if settings.quick else "full",
        "python": platform.python_version(),
        "distdev": distdev.__version__,
        "PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED"),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "total_seconds": round(seconds, 1),
    }


def _met(row: Row) -> str:
    if row.met is None:
        return "-"
    return "[green]yes[/green]" if row.met else "[red]no[/red]"


def print_table(rows: list[Row], env: dict[str, Any]) -> None:
    console = Console(width=None if sys.stdout.isatty() else 150, highlight=False)
    table = Table(title="distdev runtime benchmarks (baselines measured in the same run)",
                  title_justify="left", show_lines=False)
    for name, justify in [("#", "right"), ("measurement", "left"), ("distdev", "right"),
                          ("baseline", "left"), ("baseline fig.", "right"),
                          ("ratio", "right"), ("goal", "left"), ("met", "center")]:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for i, row in enumerate(rows, 1):
        table.add_row(str(i), row.title, fmt_value(row.distdev, row.unit, row.distdev_text),
                      row.baseline_name, fmt_value(row.baseline, row.unit, row.baseline_text),
                      row.ratio_text(), row.goal, _met(row))
    console.print(table)
    console.print("Notes:")
    for i, row in enumerate(rows, 1):
        if row.note:
            console.print(f"  {i}. {row.note}", soft_wrap=False)
    console.print(
        "Ratios read distdev against the baseline. Timings are medians on a shared machine; "
        "expect run-to-run spread (Temporal's own docstring reports up to ~2x)."
    )
    console.print("Environment: " + ", ".join(f"{k}={v}" for k, v in env.items()))


def print_json(rows: list[Row], env: dict[str, Any]) -> None:
    json.dump({"environment": env, "results": [r.as_json() for r in rows]}, sys.stdout,
              indent=2)
    sys.stdout.write("\n")
