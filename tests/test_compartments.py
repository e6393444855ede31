"""Compartments and effects: each service has its own copy of the app's modules, its bundle is
exactly what it imported, and every nondeterministic value it sees is journaled and replayed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import distdev
from distdev import DeterminismError

WriteApp = Callable[[dict[str, str]], Path]


def test_two_services_importing_one_helper_do_not_share_state(
    app_files: WriteApp, distdev_app: Any
) -> None:
    root = app_files({
        "app.py": """
            from distdev import import_service
            import counter
            left = import_service("./left.py")
            right = import_service("./right.py")
            left.bump(); left.bump(); right.bump()
        """,
        "counter.py": """
            count = 0
            def bump() -> int:
                global count
                count += 1
                return count
        """,
        "left.py": """
            import counter
            def bump() -> int:
                return counter.bump()
            def seen() -> int:
                return counter.count
        """,
        "right.py": """
            from counter import bump as _bump
            import counter
            def bump() -> int:
                return _bump()
            def seen() -> int:
                return counter.count
        """,
    })
    app = distdev_app(root / "app.py")
    assert app.service("app/left").seen() == 2
    assert app.service("app/right").seen() == 1
    assert app.services["app"].compartment.modules["counter"].count == 0


def test_bundles_hold_exactly_each_services_imports(
    app_files: WriteApp, distdev_app: Any, tmp_path: Path
) -> None:
    root = app_files({
        "app.py": """
            from distdev import import_service
            import util.text
            worker = import_service("./svc/worker.py")
        """,
        "util/__init__.py": "",
        "util/text.py": "def shout(s: str) -> str:\n    return s.upper()\n",
        "svc/worker.py": """
            import json
            from sibling import VALUE
            def value() -> int:
                return VALUE
        """,
        "svc/sibling.py": "VALUE = 3\n",
        "unused.py": "raise RuntimeError('never imported')\n",
    })
    app = distdev_app(root / "app.py")
    assert app.service("app/worker").value() == 3
    out = app.out
    bundle = {s["id"]: sorted(s["bundle"]) for s in json.loads(
        (out / "manifest.json").read_text())["services"]}
    assert bundle == {
        "app": ["app.py", "util/__init__.py", "util/text.py"],
        "app/worker": ["svc/sibling.py", "svc/worker.py"],
    }
    on_disk = sorted(
        p.relative_to(out / "services" / "app" / "worker" / "bundle").as_posix()
        for p in (out / "services" / "app" / "worker" / "bundle").rglob("*.py")
    )
    assert on_disk == ["svc/sibling.py", "svc/worker.py"]
    header = distdev.read_journal(app.journal("app/worker")).header
    assert sorted(f.path for f in header.bundle) == ["svc/sibling.py", "svc/worker.py"]


EFFECTS_APP = {
    "app.py": """
        import datetime, os, random, secrets, time, uuid, logging
        from pathlib import Path
        from distdev import effect, phase

        log = logging.getLogger("effects-app")

        @effect
        def fetch_rate(currency: str) -> float:
            with open(os.environ["RATE_FILE"] + ".calls", "a") as calls:
                calls.write(currency + "\\n")   # only when the effect really runs
            with open(os.environ["RATE_FILE"]) as f:
                return float(f.read())

        clock = (time.time(), time.monotonic_ns(), time.perf_counter())
        now = datetime.datetime.now()
        today = datetime.date.today()
        is_datetime = isinstance(now, datetime.datetime)
        rolls = [random.random(), random.randint(1, 6), random.choice("abc")]
        rng = random.Random()
        own_rolls = [rng.random() for _ in range(3)]
        ids = [str(uuid.uuid4()), str(uuid.uuid1())]
        token = secrets.token_hex(8)
        noise = os.urandom(4)
        user = os.environ.get("EFFECTS_USER")
        has_home = "EFFECTS_MISSING" in os.environ
        config = Path(__file__).with_name("config.txt").read_text()
        with open(Path(__file__).with_name("config.txt"), "rb") as f:
            raw = f.read()
        rate = fetch_rate("EUR")
        print("hello from the build")
        log.warning("a warning at build time")
        build_phase = phase()

        def sample() -> list:
            return [time.time(), random.random(), str(uuid.uuid4()), fetch_rate("USD")]
    """,
    "config.txt": "threshold=5\n",
}


def test_every_effect_is_journaled_and_replayed_identically(
    app_files: WriteApp, distdev_app: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rate_file = tmp_path / "rate.txt"
    rate_file.write_text("1.25")
    monkeypatch.setenv("RATE_FILE", str(rate_file))
    monkeypatch.setenv("EFFECTS_USER", "ann")
    root = app_files(EFFECTS_APP)
    app = distdev_app(root / "app.py")
    app.service("app").sample()
    live = app.state("app")
    assert live["user"] == "ann" and live["rate"] == 1.25 and live["config"] == "threshold=5\n"
    assert live["is_datetime"] is True and live["build_phase"] == "build"
    calls = tmp_path / "rate.txt.calls"
    assert calls.read_text().split() == ["EUR", "USD"]
    assert "hello from the build" in capsys.readouterr().out

    # Change the world: replay must not look at it.
    rate_file.write_text("9.99")
    monkeypatch.setenv("EFFECTS_USER", "somebody-else")
    (root / "config.txt").write_text("changed")
    restored = distdev.replay(app.journal("app"))
    replayed = restored.state()
    assert "hello from the build" not in capsys.readouterr().out, "output is not re-emitted"
    assert replayed["build_phase"] == "build", "phase() is what the recording saw"
    assert calls.read_text().split() == ["EUR", "USD"], "replay does not call the effect's body"
    assert replayed == live
    kinds = [e.effect for e in distdev.read_journal(app.journal("app")).events
             if type(e).__name__ == "Effect"]
    for kind in ("time.time", "datetime.now", "date.today", "random.seed", "uuid.uuid4",
                 "uuid.uuid1", "secrets.token_hex", "os.urandom", "env.get", "file.read",
                 "@app.fetch_rate"):
        assert kind in kinds, kind
    outputs = [e for e in distdev.read_journal(app.journal("app")).events
               if type(e).__name__ == "Output"]
    assert [o.stream for o in outputs] == ["stdout", "log"]


def test_set_iteration_order_replays_identically(
    app_files: WriteApp, distdev_app: Any
) -> None:
    root = app_files({
        "app.py": """
            words = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"}
            order = list(words)
            first = next(iter(words))
            table = {w: i for i, w in enumerate(words)}
        """,
    })
    app = distdev_app(root / "app.py")
    assert distdev.replay(app.journal("app")).state() == app.state("app")


def test_effect_may_use_threads_and_files_that_plain_code_may_not(
    app_files: WriteApp, distdev_app: Any, tmp_path: Path
) -> None:
    out_file = tmp_path / "written.txt"
    root = app_files({
        "app.py": f"""
            import threading
            from distdev import effect

            @effect
            def write_in_background(text: str) -> int:
                t = threading.Thread(target=lambda: open({str(out_file)!r}, "w").write(text))
                t.start()
                t.join()
                return len(text)

            written = write_in_background("from an effect")
        """,
    })
    app = distdev_app(root / "app.py")
    assert out_file.read_text() == "from an effect"
    out_file.unlink()
    assert distdev.replay(app.journal("app")).state()["written"] == 14
    assert not out_file.exists(), "replay does not call the effect"


def test_determinism_error_at_build_says_to_use_effect(
    app_files: WriteApp, distdev_app: Any
) -> None:
    root = app_files({"app.py": "import subprocess\nsubprocess.run(['true'])\n"})
    with pytest.raises(DeterminismError, match="@distdev.effect"):
        distdev_app(root / "app.py")


def test_observing_neither_writes_nor_consumes_a_journal(
    app_files: WriteApp, distdev_app: Any
) -> None:
    # What a debugger's watch or console does while stopped in a service, done by the service
    # itself here: read a clock and call another service, as an observer.
    root = app_files({
        "app.py": """
            import time
            from distdev import import_service
            from distdev.tools import observing
            other = import_service("./other.py")
            seen = []

            def inspect_me() -> str:
                with observing():
                    seen.append(time.time() > 0)
                    try:
                        other.ping()
                    except Exception as exc:
                        return str(exc)
                return "not refused"
        """,
        "other.py": "pings = 0\ndef ping() -> None:\n    global pings\n    pings += 1\n",
    })
    app = distdev_app(root / "app.py")
    before = [type(e).__name__ for e in distdev.read_journal(app.journal("app")).events]
    message = app.service("app").inspect_me()
    assert "refused" in message and "app/other.ping" in message
    assert app.state("app/other")["pings"] == 0
    after = [type(e).__name__ for e in distdev.read_journal(app.journal("app")).events]
    assert after == before + ["CallIn", "Return"], "no effect and no call-out were journaled"
    assert distdev.replay(app.journal("app")).state()["seen"] == [True]
