"""``distdev upgrade OUT --state STATE``: move a deployment to a new build, keeping its state.

A command of its own rather than ``up`` over existing state: an upgrade replays every changed
service's journal against the new code before it changes anything, stops and restarts the
deployment, and retires the services the new build no longer has — none of which a plain
``up`` should do on its own when pointed at the wrong folder (``up`` refuses state recorded by
other code, and says to run this). Exit 0: upgraded; 2: refused, nothing changed, each
diverging service named with its first divergence; 1: anything else.
"""

from __future__ import annotations

import argparse

from ..engines import UpgradeOptions, engine
from ..engines._upgrade import UpgradePlan, UpgradeRefused
from ._render import Out

EXIT_OK, EXIT_REFUSED = 0, 2


def upgrade(args: argparse.Namespace, out: Out) -> int:
    durable = False if args.no_sync else True if args.sync else None  # None: as it was
    options = UpgradeOptions(port=args.port, durable=durable)
    try:
        plan = engine(args.engine).upgrade(args.out, args.state, options, out.info)
    except UpgradeRefused as refused:
        if out.json_mode:
            out.json({"upgraded": False, **refused.plan.as_json()})
        out.error("upgrade refused, nothing changed", f"the new code does not replay the "
                  f"journal of every changed service:\n{refused}")
        return EXIT_REFUSED
    if out.json_mode:
        out.json({"upgraded": True, **plan.as_json()})
    else:
        out.info(_summary(plan))
    return EXIT_OK


def _summary(plan: UpgradePlan) -> str:
    lines = [f"upgraded to the build in {plan.out}:"]
    for service_id, files in plan.changed.items():
        lines.append(f"  {service_id}: new code ({', '.join(files)}), its journal replayed")
    for service_id in plan.added:
        lines.append(f"  {service_id}: new, started from the build")
    for service_id in plan.removed:
        lines.append(f"  {service_id}: retired (its journal kept under STATE/retired/)")
    if len(lines) == 1:
        lines.append("  no service's code changed")
    elif plan.unchanged:
        lines.append(f"  unchanged: {', '.join(plan.unchanged)}")
    return "\n".join(lines)
