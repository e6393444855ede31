"""Replay: a journal alone restores a service's exact state, in another process, under another
hash seed, in an empty folder; code that does something else is caught precisely."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import SHOP, run_distdev, write_files

import distdev
from distdev.testing import load_app


def replay_json(journal: Path, *extra: str, cwd: Path | None = None,
                env: dict[str, str] | None = None) -> dict[str, Any]:
    result = run_distdev("replay", "--json", *extra, journal, cwd=cwd, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def shop_with_build_states(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[distdev.App, dict[str, dict[str, Any]]]]:
    """The shop built in this process (PYTHONHASHSEED=0), each service's state right after the
    build, and then a few runtime calls."""
    base = tmp_path_factory.mktemp("shop")
    app = load_app(SHOP / "app.py", out=base / "build", state=base / "state")
    built_states = {service_id: app.state(service_id) for service_id in app.services}
    root = app.service("app")
    root.place_order("ann", "book", 2)
    root.place_order("bob", "lamp", 1)
    with pytest.raises(KeyError):
        root.place_order("cy", "piano", 1)
    yield app, built_states
    app.close()


@pytest.fixture
def shop(shop_with_build_states: tuple[distdev.App, dict[str, Any]]) -> distdev.App:
    return shop_with_build_states[0]


def test_build_of_shop_writes_one_journal_per_service(shop: distdev.App) -> None:
    manifest = json.loads((shop.out / "manifest.json").read_text())
    ids = [s["id"] for s in manifest["services"]]
    assert sorted(ids) == ["app", "app/billing", "app/billing/ledger", "app/catalog",
                           "app/orders"]
    for service in manifest["services"]:
        journal = shop.out / service["journal"]
        assert distdev.read_journal(journal).header.service == service["id"]


def test_build_journals_replay_to_the_state_the_build_left(
    shop_with_build_states: tuple[distdev.App, dict[str, Any]], tmp_path: Path
) -> None:
    shop, built_states = shop_with_build_states
    env = {"PYTHONHASHSEED": "4242", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    for service_id in shop.services:
        build_journal = shop.out / "services" / service_id / "journal.cbor"
        replayed = replay_json(build_journal, env=env)
        assert replayed["state"] == built_states[service_id], service_id


def test_replay_in_fresh_process_under_another_hash_seed_matches_live_state(
    shop: distdev.App, tmp_path: Path
) -> None:
    env = {"PYTHONHASHSEED": "12345", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    for service_id in shop.services:
        replayed = replay_json(shop.journal(service_id), env=env)
        assert replayed["service"] == service_id
        assert replayed["state"] == shop.state(service_id), service_id


def test_set_order_dependent_state_replays_identically_under_another_seed(
    tmp_path: Path,
) -> None:
    root = write_files(tmp_path / "app", {
        "app.py": """
            names = {"ann", "bob", "cy", "dee", "eve", "fay", "gus", "hal", "ivy", "jo"}
            order = list(names)
            first = next(iter(names))
        """,
    })
    built = run_distdev("build", root / "app.py", "-o", tmp_path / "out", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    journal = tmp_path / "out" / "services" / "app" / "journal.cbor"
    orders = {replay_json(journal, env={"PYTHONHASHSEED": seed})["state"]["order"][0]
              for seed in ("1", "2", "3")}
    assert len(orders) == 1
    # Without distdev's switch, these seeds really do change the order.
    direct = {
        subprocess.run([sys.executable, "-c", "print(list({'ann','bob','cy','dee','eve',"
                        "'fay','gus','hal','ivy','jo'})[0])"], capture_output=True, text=True,
                       env={"PYTHONHASHSEED": seed}).stdout
        for seed in ("1", "2", "3")
    }
    assert len(direct) > 1


def test_library_replay_under_another_seed_raises_hash_seed_error(
    shop: distdev.App,
) -> None:
    code = (
        "import distdev, sys\n"
        "try:\n    distdev.replay(sys.argv[1])\n"
        "except distdev.HashSeedError as e:\n    print('refused:', e)\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(shop.journal("app/orders"))],
                            capture_output=True, text=True, env={"PYTHONHASHSEED": "99"})
    assert "refused:" in result.stdout and "PYTHONHASHSEED=0" in result.stdout


def test_journal_copied_alone_to_an_empty_folder_replays(
    shop: distdev.App, tmp_path: Path
) -> None:
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    shutil.copy(shop.journal("app/billing"), lonely / "journal.cbor")
    replayed = replay_json(lonely / "journal.cbor", cwd=lonely,
                           env={"XDG_CACHE_HOME": str(tmp_path / "fresh-cache")})
    assert replayed["state"] == shop.state("app/billing")
    assert list(lonely.iterdir()) == [lonely / "journal.cbor"]


def test_replay_until_stops_after_that_event(shop: distdev.App) -> None:
    journal = shop.journal("app/billing/ledger")
    events = distdev.read_journal(journal).events
    first_return = next(e.seq for e in events if type(e).__name__ == "Return")
    partial = replay_json(journal, "--until", str(first_return))
    assert len(partial["state"]["entries"]) == 1
    assert len(shop.state("app/billing/ledger")["entries"]) == 2


def test_divergent_outgoing_call_names_sequence_number_and_edited_line(
    tmp_path: Path,
) -> None:
    copy = tmp_path / "shop"
    shutil.copytree(SHOP, copy)
    app = load_app(copy / "app.py", out=tmp_path / "build", state=tmp_path / "state")
    app.service("app").place_order("ann", "mug", 3)
    journal = app.journal("app/orders")
    app.close()
    charge = next(e for e in distdev.read_journal(journal).events
                  if type(e).__name__ == "CallOut" and e.export == "charge")

    orders = copy / "orders" / "orders.py"
    source = orders.read_text()
    original = "receipt: Receipt = _billing.charge(user, cents)"
    assert original in source
    orders.write_text(source.replace(original, "receipt: Receipt = _billing.charge(user, 1)"))
    edited_line = next(n for n, line in enumerate(orders.read_text().splitlines(), 1)
                       if "_billing.charge(user, 1)" in line)

    result = run_distdev("replay", "--source", copy, journal)
    assert result.returncode == 2, result.stderr
    err = result.stderr
    assert "Traceback" not in err
    assert "orders/orders.py (changed)" in err
    assert err.index("orders/orders.py (changed)") < err.index("diverged")
    assert f"event {charge.seq}" in err
    assert f"orders/orders.py:{edited_line}" in err
    assert f"app/billing.charge('ann', {charge.args[1]})" in err  # what the journal holds
    assert "charge('ann', 1)" in err  # what the edited code did


def test_interactive_replay_opens_a_prompt_inside_the_service(shop: distdev.App) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("distdev")), "replay", "--interactive",
         str(shop.journal("app/orders"))],
        input="print('orders:', len(orders))\n", capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "orders: 2" in result.stdout


def test_the_pytest_plugin_pins_the_hash_seed_and_keeps_the_run_s_output(tmp_path: Path) -> None:
    (tmp_path / "test_seeded.py").write_text(
        "import os\n\n"
        "def test_seed():\n"
        "    print('seed is', os.environ.get('PYTHONHASHSEED'))\n"
        "    assert os.environ.get('PYTHONHASHSEED') == '0'\n")
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONHASHSEED", "DISTDEV_PYTEST_PINNED")}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
                             "test_seeded.py"], cwd=tmp_path, capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "seed is 0" in result.stdout and "1 passed" in result.stdout


TAMPERING = {
    "app.py": """
        from distdev import import_service
        bank = import_service("./bank.py")
        thief = import_service("./thief.py")

        def run() -> int:
            bank.deposit("ann", 10)
            thief.steal()
            return bank.deposit("ann", 5)
    """,
    "bank.py": """
        balances = {}

        def deposit(who: str, amount: int) -> int:
            balances[who] = balances.get(who, 0) + amount
            return balances[who]
    """,
    "thief.py": """
        import gc

        def steal() -> None:
            # In one process nothing stops code reaching another service's memory: here, the
            # bank's module globals, found among the live objects.
            for found in gc.get_objects():
                if type(found) is dict and "deposit" in found and "balances" in found:
                    found["balances"]["ann"] = 1_000_000
    """,
}


LAST_WORD = """
    from distdev import import_service
    bank = import_service("./bank.py")
    thief = import_service("./thief.py")

    def run() -> int:
        bank.deposit("ann", 10)
        thief.steal()  # and the bank handles no call after it
        return 0
"""


@pytest.mark.parametrize("when", ["before-a-call", "after-the-last-call"])
def test_a_service_tampering_with_another_s_globals_is_reported_at_the_victim_s_replay(
    tmp_path: Path, when: str
) -> None:
    files = TAMPERING if when == "before-a-call" else {**TAMPERING, "app.py": LAST_WORD}
    app = load_app(write_files(tmp_path / "src", files) / "app.py", out=tmp_path / "out",
                   state=tmp_path / "state")
    try:
        app.service("app").run()
        assert app.state("app/bank")["balances"]["ann"] >= 1_000_000  # the theft took effect
        journal = app.journal("app/bank")
    finally:
        app.close()  # records the bank's last digest
    with pytest.raises(distdev.ReplayDivergenceError) as caught:
        distdev.replay(journal)
    message = str(caught.value)
    assert "app/bank" in message and "global 'balances'" in message, message
    assert "10000" in message and "another service reaching into this one's memory" in message
    assert "is not the code" not in message


def test_a_library_cache_filled_before_the_service_ran_does_not_change_its_replay(
    tmp_path: Path,
) -> None:
    """urllib.request builds and caches its opener on the first urlopen, reading the
    environment only then: whether this process called it first must not change what the
    service's journal holds (the replay runs in a fresh process, where nothing is cached)."""
    import urllib.request

    urllib.request.install_opener(urllib.request.build_opener())  # the cache, filled
    try:
        app_dir = write_files(tmp_path / "src", {"app.py": """
            import urllib.request
            from distdev import DeterminismError

            said: list[str] = []

            def fetch() -> str:
                try:
                    urllib.request.urlopen("http://127.0.0.1:9/")
                except DeterminismError as refused:
                    said.append(str(refused))
                return said[-1]
        """})
        app = load_app(app_dir / "app.py", out=tmp_path / "build", state=tmp_path / "state")
        answer = app.service("app").fetch()
        journal = app.journal("app")
        app.close()
    finally:
        urllib.request.install_opener(None)
    assert "network IO" in answer and "urlopen" in answer, answer
    result = run_distdev("replay", journal, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["state"]["said"] == [answer]
