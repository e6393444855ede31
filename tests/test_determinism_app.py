"""An application whose libraries reach the world for it — jinja2 reading templates (one only at
runtime), email.utils reading the clock, pydantic models, an in-memory SQLite table — builds,
runs under `distdev up` from its journals alone (the source tree moved away), survives
`kill -9` of every service, and every journal replays, in a fresh process elsewhere, through
the state digests the live services recorded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from support import run_distdev
from support.engines import TESTS, build, running

NOTICES = TESTS / "apps" / "notices"


@pytest.mark.slow
def test_an_app_using_libraries_survives_kill_9_and_every_journal_replays(tmp_path: Path) -> None:
    source = tmp_path / "notices"
    shutil.copytree(NOTICES, source)
    out = tmp_path / "out"
    build(source / "app.py", out)
    moved = tmp_path / "moved-away"
    source.rename(moved)  # the services run from the build output: templates included
    notices: list[str] = []
    with running(out, tmp_path / "state") as deployment:
        notices.append(deployment.call("app", "order", "ann", "book", 900))
        for victim in ("app/mailer", "app/catalog", "app"):
            deployment.kill_and_wait_for_restart(victim)
            notices.append(deployment.call("app", "order", "bob", f"after-{victim}", 100))
        assert deployment.call("app", "count") == 4
        assert deployment.call("app/catalog", "names") == [
            "pen", "lamp", "book", "after-app/mailer", "after-app/catalog", "after-app"]
    assert notices[0].startswith("Dear ann: book (900 cents), ")
    assert all(n.endswith(("-0000.", "+0000.")) for n in notices), notices

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    states = {}
    for service in ("app", "app/catalog", "app/mailer"):
        journal = tmp_path / "state" / service / "journal.cbor"
        result = run_distdev("replay", journal, "--json", cwd=elsewhere,
                             env={"TZ": "Pacific/Auckland"})
        assert result.returncode == 0, f"{service}: {result.stderr}"
        states[service] = json.loads(result.stdout)["state"]
        kinds = [e["kind"] for e in json.loads(run_distdev(
            "inspect", journal, "--json").stdout)["events"]]
        assert "digest" in kinds, f"{service} recorded no state digest"
    assert states["app/mailer"]["sent"] == notices
    assert states["app/mailer"]["greeting"] == "Welcome to notices."
    assert len(states["app"]["orders"]) == 4
