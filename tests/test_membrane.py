"""The membrane: only exports are reachable, values cross by copy, proxies by reference,
exceptions come back, re-entrant chains work, and what would break replay is refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import distdev
from distdev import (
    DeterminismError,
    ExportError,
    MembraneError,
    ServiceError,
    ServiceIdClashError,
    ServiceLoadError,
)

APP = {
    "app.py": """
        import json
        from distdev import import_service, ServiceProxy
        from helper import shared_value

        a = import_service("./a.py")
        b = import_service("./b.py")
        a.connect(b)

        def via_a(n: int) -> int:
            return a.ping_b(n)

        def give_b_to_a() -> str:
            return a.describe_proxy(b)

        def send(value: object) -> object:
            return b.echo(value)

        def _private() -> None:
            pass
    """,
    "helper.py": """
        shared_value = 1
    """,
    "a.py": """
        from distdev import ServiceProxy
        _b = None
        calls = []

        def connect(b: ServiceProxy) -> None:
            global _b
            _b = b

        def ping_b(n: int) -> int:
            calls.append(("ping_b", n))
            return _b.bounce(n)

        def back(n: int) -> int:
            calls.append(("back", n))
            return n * 10

        def describe_proxy(p: ServiceProxy) -> str:
            return f"{type(p).__name__}:{p == _b}:{p.echo('hi')}"
    """,
    "b.py": """
        import threading
        import socket
        from distdev import ServiceProxy, import_service
        _a = None

        class Custom(Exception):
            pass

        def bounce(n: int) -> int:
            # A -> B -> A: the call comes back into A on the same chain
            return _caller_a().back(n) + 1

        def _caller_a():
            return _a

        def keep_a(a: ServiceProxy) -> None:
            global _a
            _a = a

        def echo(value):
            return value

        def fail_builtin() -> None:
            raise KeyError("missing-thing")

        def fail_custom() -> None:
            raise Custom("custom failure")

        def start_thread() -> None:
            threading.Thread(target=lambda: None).start()

        def open_socket() -> None:
            socket.socket()

        def write_file(path: str) -> None:
            with open(path, "w") as f:
                f.write("x")

        def make_service() -> None:
            import_service("./a.py")

        def declare_host() -> None:
            from distdev import host
            host.process(http=9000)

        def copy_with_a_library(source: str, target: str) -> None:
            import shutil  # shared code: its writes are caught by the audit hook
            shutil.copyfile(source, target)
    """,
}


@pytest.fixture
def app(app_files: Callable[[dict[str, str]], Path], distdev_app: Any) -> distdev.App:
    root = app_files(APP)
    loaded = distdev_app(root / "app.py")
    loaded.service("app/b").keep_a(loaded.service("app/a"))
    return loaded  # type: ignore[no-any-return]


def test_proxy_refuses_private_imported_and_dunder_names(app: distdev.App) -> None:
    root = app.service("app")
    for name in ("_private", "json", "shared_value", "ServiceProxy", "a", "__dict__",
                 "__globals__", "__class__", "__module__", "__init__"):
        with pytest.raises(ExportError) as caught:
            getattr(root, name)
        message = str(caught.value)
        assert "app does not export" in message, message
        if name.startswith("_"):  # refused before the service is asked what it exports
            assert "private to its service" in message, message
        else:
            assert "via_a" in message, message
    with pytest.raises(ExportError):
        root.via_a.__globals__  # noqa: B018 - an export is only callable
    assert hasattr(root, "via_a") and not hasattr(root, "_private")


def test_unmarshallable_argument_is_refused_in_the_caller_naming_its_position(
    app: distdev.App,
) -> None:
    import socket

    journal = app.journal("app/b")
    before = distdev.read_journal(journal).good_size  # its records: the file is allocated ahead
    b = app.service("app/b")
    with socket.socket() as sock:
        with pytest.raises(MembraneError, match=r"argument 1 of app/b.echo is a socket"):
            b.echo(sock)
    with pytest.raises(MembraneError, match=r"argument 1 of app/b.echo\[1\] is a function"):
        b.echo([1, lambda: 2])
    app.flush()
    assert distdev.read_journal(journal).good_size == before, "a refused call must not be journaled"


def test_values_cross_by_copy_with_their_types(app: distdev.App) -> None:
    import datetime
    import decimal
    import uuid

    value = {
        "tuple": (1, "two", None),
        "set": {1, 2},
        "frozen": frozenset({"x"}),
        "when": datetime.datetime(2026, 1, 2, 3, 4, 5, 6),
        "day": datetime.date(2026, 1, 2),
        "gap": datetime.timedelta(days=1, seconds=2),
        "money": decimal.Decimal("12.50"),
        "id": uuid.UUID(int=7),
        (1, (2, 3)): b"bytes",
    }
    back = app.service("app").send(value)
    assert back == value and back is not value
    assert type(back["tuple"]) is tuple and type(back["frozen"]) is frozenset


def test_proxy_crosses_as_a_proxy_to_the_same_service(app: distdev.App) -> None:
    assert app.service("app").give_b_to_a() == "ServiceProxy:True:hi"


def test_exceptions_cross_builtin_as_themselves_others_as_service_error(
    app: distdev.App,
) -> None:
    b = app.service("app/b")
    with pytest.raises(KeyError) as builtin:
        b.fail_builtin()
    assert builtin.value.args == ("missing-thing",)
    with pytest.raises(ServiceError) as custom:
        b.fail_custom()
    assert custom.value.type_name == "Custom"
    assert custom.value.message == "custom failure"
    assert custom.value.service == "app/b"
    assert 'raise Custom("custom failure")' in custom.value.remote_traceback
    assert "_service.py" not in custom.value.remote_traceback, "membrane frames are hidden"


def test_reentrant_chain_a_b_a_works_and_is_journaled(app: distdev.App) -> None:
    assert app.service("app").via_a(4) == 41
    assert app.state("app/a")["calls"] == [["ping_b", 4], ["back", 4]]
    restored = distdev.replay(app.journal("app/a"))
    assert restored.state() == app.state("app/a")


@pytest.mark.parametrize(
    ("export", "message"),
    [
        ("start_thread", "tried starting a thread"),
        ("open_socket", "tried socket.socket"),
    ],
)
def test_threads_and_sockets_are_refused_with_what_to_do(
    app: distdev.App, export: str, message: str
) -> None:
    with pytest.raises(DeterminismError) as caught:
        getattr(app.service("app/b"), export)()
    assert message in str(caught.value) and "@distdev.effect" in str(caught.value)


def test_writing_a_file_is_refused(app: distdev.App, tmp_path: Path) -> None:
    target = tmp_path / "written.txt"
    with pytest.raises(DeterminismError, match="for writing"):
        app.service("app/b").write_file(str(target))
    assert not target.exists()


def test_a_library_writing_for_service_code_is_refused(app: distdev.App, tmp_path: Path) -> None:
    source = tmp_path / "source.txt"
    source.write_text("data")
    with pytest.raises(DeterminismError, match="writing the file"):
        app.service("app/b").copy_with_a_library(str(source), str(tmp_path / "copy.txt"))
    assert not (tmp_path / "copy.txt").exists()


@pytest.mark.parametrize("export", ["make_service", "declare_host"])
def test_build_time_declarations_at_runtime_are_phase_errors(
    app: distdev.App, export: str
) -> None:
    with pytest.raises(distdev.PhaseError, match="at runtime"):
        getattr(app.service("app/b"), export)()


def test_sibling_id_clash_suggests_name(
    app_files: Callable[[dict[str, str]], Path], distdev_app: Any
) -> None:
    root = app_files({
        "app.py": """
            from distdev import import_service
            one = import_service("./svc.py")
            two = import_service("./other/svc.py")
        """,
        "svc.py": "",
        "other/svc.py": "",
    })
    with pytest.raises(ServiceIdClashError, match="name="):
        distdev_app(root / "app.py")


def test_missing_service_file_names_the_path(
    app_files: Callable[[dict[str, str]], Path], distdev_app: Any
) -> None:
    root = app_files({"app.py": 'from distdev import import_service\nimport_service("./nope.py")\n'})
    with pytest.raises(ServiceLoadError, match=r"no file .*nope\.py"):
        distdev_app(root / "app.py")


def test_one_call_at_a_time_per_service(
    app_files: Callable[[dict[str, str]], Path], distdev_app: Any
) -> None:
    import threading

    root = app_files({
        "app.py": """
            import time
            active = 0
            peak = 0

            def work() -> int:
                global active, peak
                active += 1
                peak = max(peak, active)
                for _ in range(20000):
                    pass
                active -= 1
                return peak
        """,
    })
    app = distdev_app(root / "app.py")
    proxy = app.service("app")
    threads = [threading.Thread(target=lambda: [proxy.work() for _ in range(20)])
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert app.state("app")["peak"] == 1
