"""The session engine on its own: the service tree read from source by the runtime's rules,
function breakpoints resolved to exports, and distdev's frames told from the user's."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from dap.dap_client import marker

import distdev
from distdev.dap_adapter._engine import (
    SERVICE_SEPARATOR,
    Frame,
    RuntimeFiles,
    Stack,
    entry_line,
    module_label,
    resolve_export,
    service_files,
    user_traceback,
)

RUNTIME = Path(distdev.__file__).resolve().parent
SEP = SERVICE_SEPARATOR

SHOP = {
    "app.py": '''
        """The root."""
        from distdev import import_service

        billing = import_service("./billing.py")
        shipping = import_service("./ship/shipping.py", name="ship")
        outside = import_service("../outside.py")  # leaves the application folder: refused
        gone = import_service("./missing.py")  # no such file: no service
        odd = import_service("./billing.py", name="no spaces")  # not a service name: refused
    ''',
    "billing.py": '''
        from distdev import effect
        from helpers import fmt


        def charge(user: str, cents: int) -> str:
            """Charge ``user``."""
            return fmt(user, cents)  # @charge-first


        def _fee(cents: int) -> int:
            return cents // 100


        @effect
        def send_receipt(user: str) -> None:
            pass


        def refund(cents: int) -> int:
            return -cents


        def refund(cents: int) -> int:
            return 0 - cents  # @refund-last
    ''',
    "ship/shipping.py": '''
        from distdev import import_service

        ledger = import_service("../ledger.py")


        def send(parcel: str) -> str:
            return parcel
    ''',
    "ledger.py": '''
        __all__ = ["record"]


        def record(cents: int) -> int:
            return cents  # @record


        def audit() -> None:
            pass
    ''',
    "helpers.py": "def fmt(user, cents):\n    return f'{user} {cents}'\n",
}


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    folder = tmp_path / "shop"
    for rel, text in SHOP.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(textwrap.dedent(text).lstrip("\n"))
    (tmp_path / "outside.py").write_text("def leak():\n    pass\n")  # exists, yet refused
    return folder.resolve()


def test_service_files_follow_import_service_by_the_runtimes_rules(shop: Path) -> None:
    assert service_files(shop / "app.py") == {
        "app": shop / "app.py",
        "app/billing": shop / "billing.py",
        "app/ship": shop / "ship" / "shipping.py",
        "app/ship/ledger": shop / "ledger.py",  # relative to its importer, ids by parent
    }


def test_resolve_export_binds_to_the_first_line_of_the_body(shop: Path) -> None:
    services = service_files(shop / "app.py")
    target = resolve_export(services, "app/billing.charge")
    assert (target.path, target.line, target.error) == (
        shop / "billing.py", marker(shop / "billing.py", "charge-first"), None)
    # The last definition of a name is the one that runs.
    assert resolve_export(services, "billing.refund").line == marker(shop / "billing.py",
                                                                     "refund-last")
    assert resolve_export(services, " ledger.record ").line == marker(shop / "ledger.py", "record")


@pytest.mark.parametrize("name, message", [
    ("billing._fee", "is not an export (a name starting with '_' is private to its service)"),
    ("billing.send_receipt", "is not an export (an @effect function is the service's own IO)"),
    ("ledger.audit", "is not an export (its __all__ does not list it)"),
    ("billing.fmt", 'service app/billing (billing.py) has no function "fmt"'),
    ("billing.nope", 'has no function "nope" at its top level'),
    ("warehouse.send", 'no service "warehouse" in this application (services: app, app/billing'),
    ("charge", "write service.export"),
    (".charge", "write service.export"),
])
def test_resolve_export_refuses_what_no_proxy_call_could_reach(
    shop: Path, name: str, message: str,
) -> None:
    target = resolve_export(service_files(shop / "app.py"), name)
    assert target.path is None and target.line is None
    assert target.error is not None and message in target.error


def test_resolve_export_by_a_short_name_only_when_one_service_has_it(shop: Path) -> None:
    services = {"app/eu/tax": shop / "billing.py", "app/us/tax": shop / "billing.py"}
    target = resolve_export(services, "tax.charge")
    assert target.error == '"tax" is ambiguous (app/eu/tax, app/us/tax): write the full service id'
    assert resolve_export(services, "eu/tax.charge").line == marker(shop / "billing.py",
                                                                    "charge-first")


def test_entry_line_is_the_first_statement_after_docstring_and_future_import(
    tmp_path: Path,
) -> None:
    path = tmp_path / "app.py"
    path.write_text('"""Doc."""\nfrom __future__ import annotations\n\nimport os\n')
    assert entry_line(path) == 4
    path.write_text('"""Only a docstring."""\n')
    assert entry_line(path) is None
    path.write_text("def broken(:\n")
    assert entry_line(path) is None


def test_runtime_files_hide_distdevs_frames_and_refuse_breakpoints_there(tmp_path: Path) -> None:
    own = tmp_path / "site" / "distdev"
    own.mkdir(parents=True)
    (own / "_proxy.py").write_text("")
    linked = tmp_path / "link.py"
    linked.symlink_to(own / "_proxy.py")  # a strict editable install links each file
    runtime = RuntimeFiles((str(own),))
    assert runtime.is_runtime_file(str(own / "_proxy.py"))
    assert runtime.is_runtime_file(str(linked))
    assert not runtime.is_runtime_file(str(tmp_path / "site" / "distdev_app.py"))
    assert not runtime.is_runtime_file(None)
    assert runtime.unverified_reason(str(linked)) is not None
    assert runtime.unverified_reason(str(tmp_path / "app.py")) is None

    user = Frame(2, "charge", "/srv/billing.py", "app/billing")
    frames = [Frame(1, "__call__", str(own / "_proxy.py")), user, Frame(3, "<module>", None)]
    stack = Stack(runtime.visible(frames))
    assert [f.id for f in stack.frames] == [2, 3]
    assert stack.service == "app/billing"
    assert [f.label for f in stack.page(0, 1)] == [f"app/billing{SEP}charge"]
    assert [f.label for f in stack.page(1, 0)] == ["<module>"]


def test_user_traceback_drops_distdevs_frames_and_its_wrapper_exceptions() -> None:
    user, runtime = "/srv/shop/billing.py", str(RUNTIME / "_proxy.py")
    trace = (
        f'  File "{user}", line 8, in refund\n    raise ValueError("no")\n    ^^^^^\n'
        "ValueError: no\n"
        "\nDuring handling of the above exception, another exception occurred:\n\n"
        f'  File "{runtime}", line 40, in __call__\n    raise CallFailed(text)\n'
        "distdev._tape.CallFailed: no\n"
        "\nThe above exception was the direct cause of the following exception:\n\n"
        f'  File "/srv/shop/app.py", line 9, in <module>\n    billing.refund()\n'
        f'  File "{runtime}", line 52, in __call__\n    return self._call()\n'
        "ValueError: no\n"
    )
    cleaned = user_traceback(trace, lambda path: path.startswith(str(RUNTIME)))
    assert str(RUNTIME) not in cleaned and "CallFailed" not in cleaned
    assert cleaned.count("ValueError: no") == 2
    assert "direct cause" in cleaned and cleaned.count("During handling") == 0
    assert '/srv/shop/app.py", line 9' in cleaned and '/srv/shop/billing.py", line 8' in cleaned


def test_engine_module_label_names_services_by_id_and_hides_distdev(tmp_path: Path) -> None:
    billing = tmp_path / "billing" / "billing.py"
    billing.parent.mkdir()
    billing.write_text("")
    (tmp_path / "models.py").write_text("")
    services = {"app/billing": billing}
    runtime = RuntimeFiles((str(RUNTIME),))
    assert module_label("billing[app/billing]", str(billing), runtime, services) == "app/billing"
    assert module_label("models[app/billing]", str(tmp_path / "models.py"), runtime,
                        services) == f"app/billing{SEP}models"
    assert module_label("models[app/billing]#2", str(tmp_path / "models.py"), runtime,
                        services) == f"app/billing{SEP}models"
    assert module_label("__main__", str(RUNTIME / "dap_adapter" / "_runner.py"), runtime,
                        services) is None
    assert module_label("distdev.service._tape", str(RUNTIME / "service" / "_tape.py"), runtime,
                        services) is None
    assert module_label("json", "/usr/lib/python3/json/__init__.py", runtime, services) == "json"
