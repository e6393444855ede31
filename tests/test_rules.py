"""``distdev.rules`` against what keeps it honest: the shared service-path cases, which the
editor's copy of the rule is checked against too (vscode-extension/test/servicePaths.test.ts),
and the runtime objects whose definitions the mypy plugin hooks by name."""

from __future__ import annotations

import importlib
import json
import types
from pathlib import Path
from typing import Any

import pytest

import distdev
from distdev import rules

CASES: list[dict[str, str]] = json.loads(
    (Path(__file__).parent / "fixtures" / "service_paths.json").read_text())["cases"]


def test_the_shared_cases_cover_every_kind_of_refusal() -> None:
    assert {case.get("error") for case in CASES} >= {"empty", "absolute", "outside", "not-py"}


@pytest.mark.parametrize("case", CASES, ids=[case["why"] for case in CASES])
def test_resolve_service_path_follows_the_shared_cases(case: dict[str, str]) -> None:
    if "expect" in case:
        assert rules.resolve_service_path(case["importer"], case["literal"]) == case["expect"]
        return
    with pytest.raises(rules.ServicePathError) as refused:
        rules.resolve_service_path(case["importer"], case["literal"])
    assert (refused.value.kind, refused.value.path) == (case["error"], case["literal"])


@pytest.mark.parametrize(("fullname", "defined"), [
    (rules.IMPORT_SERVICE_FULLNAME, distdev.import_service),
    (rules.EFFECT_FULLNAME, distdev.effect),
    (rules.SERVICE_PROXY_FULLNAME, distdev.ServiceProxy),
])
def test_fullnames_say_where_the_objects_are_defined(fullname: str, defined: Any) -> None:
    assert _definition_site(defined) == fullname
    module, _, name = fullname.rpartition(".")
    assert getattr(importlib.import_module(module), name) is defined


def _definition_site(obj: Any) -> str:
    """``module.qualname`` of the statement that defines ``obj``: what a type checker calls it.
    A class's ``__module__`` may be rewritten for its reprs (``distdev.ServiceProxy``'s is); the
    functions its body defines still carry the module they were defined in."""
    if isinstance(obj, type):
        method = next(v for v in vars(obj).values() if isinstance(v, types.FunctionType))
        return f"{method.__module__}.{method.__qualname__.rpartition('.')[0]}"
    return f"{obj.__module__}.{obj.__qualname__}"


def test_app_files_are_the_application_s_and_nothing_a_tool_put_beside_it(tmp_path: Path) -> None:
    for rel in ("app.py", "templates/order.txt", "data/sub/c.csv", ".env", ".git/config",
                ".distdev/build/manifest.json", "pkg/__pycache__/m.cpython-311.pyc",
                "web/node_modules/x/index.js", "venv/pyvenv.cfg", "venv/lib/site.py",
                "out/manifest.json", "state/app/journal.cbor"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    assert rules.app_files(tmp_path, [tmp_path / "out", tmp_path / "state"]) == [
        "app.py", "data/sub/c.csv", "templates/order.txt"]
    assert rules.is_app_folder(tmp_path, tmp_path / "templates")
    assert not rules.is_app_folder(tmp_path, tmp_path / "venv" / "lib")
    assert not rules.is_app_folder(tmp_path, tmp_path.parent)


def test_rules_compartment_of_inverts_compartment_module_name() -> None:
    for serial in (1, 2):
        name = rules.compartment_module_name("models", "app/billing", serial)
        assert rules.compartment_of(name) == ("models", "app/billing")
    for other in ("models", "distdev.service", "x[", "[app]", "x[app]y"):
        assert rules.compartment_of(other) is None
