"""Exceptions cross membranes as themselves when the receiver can import their class (a helper
module's, the standard library's, an installed package's), in one process, under `distdev up`,
after `kill -9` and in a replay elsewhere; a class defined in a service module never leaves it,
and no service module is ever imported into another service."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from support import run_distdev
from support.engines import TESTS, build, running

import distdev
from distdev import MembraneError, ServiceError, ServiceLoadError
from distdev.membrane import ErrorInfo, rebuild_exception
from distdev.membrane import _failures as failures

CHECKOUT = TESTS / "apps" / "checkout"
BANK_PRINT = "the bank's top level ran"
DECLINED = ["CreditCardError", "0000", 1200, "card ending 0000 declined"]


@pytest.fixture
def checkout_app(tmp_path: Path, distdev_app: Any) -> distdev.App:
    source = tmp_path / "checkout"
    shutil.copytree(CHECKOUT, source)
    return distdev_app(source / "app.py")  # type: ignore[no-any-return]


def _outputs(journal: Path) -> str:
    events = json.loads(run_distdev("inspect", journal, "--json").stdout)["events"]
    return json.dumps([e for e in events if e["kind"] == "output"])


def test_helper_module_exception_is_caught_by_its_class_and_its_base(
        checkout_app: distdev.App) -> None:
    checkout = checkout_app.service("app/checkout")
    assert checkout.pay("4242424242420000", 1200) == "declined"
    assert checkout.pay("4242424242421111", 300) == "receipt-1111-300"
    assert checkout.history() == [DECLINED]
    name, note = checkout.settle()
    assert name == "PaymentError"
    assert note.startswith("raised in app/bank:")
    # the cause's description travels with it, and the class is named as the app names it
    assert "ValueError: invalid literal for int()" in note
    assert "direct cause of the following exception" in note
    assert "payments.PaymentError: the gateway answered nonsense" in note


def test_standard_library_and_installed_package_exceptions_cross_as_themselves(
        checkout_app: distdev.App) -> None:
    checkout = checkout_app.service("app/checkout")
    assert checkout.parse("{") == [
        "JSONDecodeError", 1, "Expecting property name enclosed in double quotes"]
    assert checkout.order("many") == ["ValidationError", "Order", 1, "int_parsing"]
    assert checkout.order(7) == [7]
    name, note = checkout.amount("twelve")
    assert name == "InvalidOperation"
    assert "its arguments cannot cross a membrane: they arrive as its message" in note
    assert checkout.amount("12.50") == ["12.50"]


def test_service_module_classes_never_leave_their_service(checkout_app: distdev.App) -> None:
    checkout = checkout_app.service("app/checkout")
    refused_result = checkout.receipt()
    assert refused_result.startswith(
        "the value returned by app/bank.receipt is a Receipt, a class defined in service "
        "module bank.py")
    assert "move the class to a helper module" in refused_result
    refused_argument = checkout.ticket()
    assert refused_argument.startswith(
        "argument 1 of app/bank.parse is a Ticket, a class defined in service module "
        "checkout.py")
    type_name, message, *notes = checkout.overdraw()
    assert (type_name, message) == ("Overdrawn", "no money left")
    assert any("defined in bank, a service's module" in n and "helper module" in n
               for n in notes), notes


def test_resolve_class_and_imports_refuse_another_services_module(
        checkout_app: distdev.App) -> None:
    checkout = checkout_app.services["app/checkout"]
    with pytest.raises(MembraneError, match=r"defined in service module bank\.py.*helper module"):
        checkout.resolve_class("bank", "Receipt")
    with pytest.raises(ServiceLoadError, match=r"the module of service file bank\.py"):
        checkout.compartment.import_module("bank")
    assert "bank" not in checkout.compartment.modules
    assert checkout.resolve_class("payments", "PaymentError").__name__ == "PaymentError"


@pytest.mark.parametrize("first", ["service", "module"])
def test_a_build_importing_a_service_module_as_a_module_fails_saying_what_to_do(
        first: str, app_files: Callable[[dict[str, str]], Path], tmp_path: Path) -> None:
    # Whichever comes first, the service or the import, the build refuses the other.
    imports = 'import_service("./bank.py")\nteller = import_service("./teller.py")'
    root = app_files({
        "app.py": "from distdev import import_service\n" + (
            imports if first == "service" else "\n".join(reversed(imports.split("\n")))),
        "bank.py": f"print({BANK_PRINT!r})\ndef balance() -> int:\n    return 1\n",
        "teller.py": "import bank\n",
    })
    app = distdev.App(root / "app.py", out=tmp_path / "out")
    with pytest.raises(ServiceLoadError) as refused:
        app.build()
    app.close()
    assert "bank" in str(refused.value) and "helper module" in str(refused.value)
    assert "never imported into another service" in str(refused.value)


def test_a_replayed_service_knows_every_service_module_of_its_build(
        checkout_app: distdev.App) -> None:
    assert checkout_app.service("app/checkout").pay("4242424242420000", 1200) == "declined"
    checkout_app.close()
    journal = checkout_app.out / "services" / "app" / "checkout" / "journal.cbor"
    assert distdev.read_journal(journal).header.services == ["app.py", "bank.py", "checkout.py"]
    replayed = distdev.replay(checkout_app.state_dir / "app" / "checkout" / "journal.cbor")
    assert replayed.state()["declined"] == [DECLINED]
    with pytest.raises(MembraneError, match=r"defined in service module bank\.py"):
        replayed.service.resolve_class("bank", "Receipt")  # a sibling: known from the header


def test_an_exception_whose_rebuilt_self_would_say_otherwise_arrives_as_service_error(
        app_files: Callable[[dict[str, str]], Path], distdev_app: Any) -> None:
    root = app_files({
        "app.py": """
            from distdev import import_service
            thrower = import_service("./thrower.py")

            def relay(kind: str) -> list:
                try:
                    thrower.throw(kind)
                except Exception as exc:
                    return [type(exc).__name__, str(exc), getattr(exc, "__notes__", [])]
                return []
        """,
        "errors_here.py": """
            class Counted(Exception):
                # its message depends on a class-level counter, not on what crossed
                made = 0

                def __init__(self) -> None:
                    type(self).made += 1
                    super().__init__()

                def __str__(self) -> str:
                    return f"made {type(self).made}"
        """,
        "thrower.py": """
            from errors_here import Counted

            def throw(kind: str) -> None:
                Counted()
                raise Counted()
        """,
    })
    app = distdev_app(root / "app.py")
    name, message, notes = app.service("app").relay("x")
    assert (name, message) == ("ServiceError", "Counted in service app/thrower: made 2")
    assert any("it would say 'made 1'" in n for n in notes), notes


def test_a_call_error_recorded_before_classes_crossed_is_rebuilt_as_it_was(
        checkout_app: distdev.App) -> None:
    checkout = checkout_app.services["app/checkout"]
    # an error record as distdev wrote it before (six fields): its class is not rebuilt
    old = msgspec.convert(["payments", "PaymentError", "no", ["no"], "", {}], ErrorInfo)
    rebuilt = rebuild_exception(old, "app/bank", checkout)
    assert type(rebuilt) is ServiceError and rebuilt.type_name == "PaymentError"
    # ... while an effect's error always was, and still is
    as_effect = rebuild_exception(old, "effect x", checkout, effect=True)
    assert type(as_effect).__name__ == "PaymentError"
    builtin = msgspec.convert(["builtins", "KeyError", "'k'", ["k"], "", {}], ErrorInfo)
    assert type(rebuild_exception(builtin, "app/bank", checkout)) is KeyError


def test_a_journal_recorded_before_classes_crossed_replays_as_it_was(
        app_files: Callable[[dict[str, str]], Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    root = app_files({
        "app.py": """
            import distdev
            from payments import PaymentError
            bank = distdev.import_service("./bank.py")
            seen = []

            def pay() -> None:
                try:
                    bank.charge()
                except PaymentError:
                    seen.append("caught by its class")
                except distdev.ServiceError as exc:
                    seen.append(f"ServiceError for {exc.type_name}")
        """,
        "payments.py": "class PaymentError(Exception):\n    pass\n",
        "bank.py": """
            from payments import PaymentError

            def charge() -> None:
                raise PaymentError("declined")
        """,
    })
    journals = {}
    for era in ("before", "now"):
        with monkeypatch.context() as patch:
            if era == "before":  # error records as distdev wrote them before: no crossing
                patch.setattr(failures, "AS_CLASS", failures.BEFORE_CLASSES)
            app = distdev.App(root / "app.py", out=tmp_path / era / "out",
                              state=tmp_path / era / "state").start()
            app.service("app").pay()
            app.close()
        journals[era] = tmp_path / era / "state" / "app" / "journal.cbor"
    for era, seen in (("before", "ServiceError for PaymentError"), ("now", "caught by its class")):
        replayed = run_distdev("replay", journals[era], "--json")
        assert replayed.returncode == 0, replayed.stderr
        assert json.loads(replayed.stdout)["state"]["seen"] == [seen]
        assert distdev.replay(journals[era]).state()["seen"] == [seen]


@pytest.mark.slow
def test_exceptions_cross_as_themselves_live_after_kill_9_and_in_replays(
        tmp_path: Path) -> None:
    source = tmp_path / "checkout"
    shutil.copytree(CHECKOUT, source)
    out = tmp_path / "out"
    build(source / "app.py", out)
    state = tmp_path / "state"
    with running(out, state) as deployment:
        called = run_distdev("call", "app.pay", '"4242424242420000"', "1200", "--state", state)
        assert called.returncode == 0, called.stderr
        assert json.loads(called.stdout) == "declined"
        assert deployment.call("app/checkout", "history") == [DECLINED]
        assert deployment.call("app/checkout", "parse", "[1,")[0] == "JSONDecodeError"
        assert deployment.call("app/checkout", "order", "x")[:2] == ["ValidationError", "Order"]
        assert deployment.call("app/checkout", "receipt").startswith(
            "the value returned by app/bank.receipt is a Receipt")
        assert deployment.call("app/checkout", "ticket").startswith(
            "argument 1 of app/bank.parse is a Ticket")
        assert deployment.call("app/checkout", "overdraw")[:2] == ["Overdrawn", "no money left"]

        deployment.kill_and_wait_for_restart("app/checkout")
        assert deployment.call("app/checkout", "history") == [DECLINED]
        assert deployment.call("app", "pay", "5555555555550000", 80) == "declined"
        assert deployment.call("app/checkout", "settle")[0] == "PaymentError"
        assert deployment.call("app/checkout", "history") == [
            DECLINED, ["CreditCardError", "0000", 80, "card ending 0000 declined"]]
        assert BANK_PRINT not in deployment.log("app/checkout")
    journal = state / "app" / "checkout" / "journal.cbor"
    assert BANK_PRINT not in _outputs(journal)
    assert BANK_PRINT in _outputs(state / "app" / "bank" / "journal.cbor")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    replayed = run_distdev("replay", journal, "--json", cwd=elsewhere)
    assert replayed.returncode == 0, replayed.stderr
    restored = json.loads(replayed.stdout)["state"]
    assert restored["declined"] == [
        DECLINED, ["CreditCardError", "0000", 80, "card ending 0000 declined"]]
    assert distdev.replay(journal).state()["declined"] == restored["declined"]
