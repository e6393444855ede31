"""The classification table covers the world as this Python has it: every public callable of
every covered module is deterministic, journaled, refused or handled specially — a module
gaining a function fails here until someone decides what it is."""

from __future__ import annotations

import importlib

import pytest

from distdev.compartment._surface import MODULES, SURFACE


def _public_callables(module_name: str) -> list[str]:
    module = importlib.import_module(module_name)
    names = []
    for name in dir(module):
        value = getattr(module, name)
        if name.startswith("_") or not callable(value):
            continue
        if isinstance(value, type) and issubclass(value, BaseException):
            continue  # raising and catching is deterministic
        names.append(name)
    return names


@pytest.mark.parametrize("module_name", MODULES)
def test_every_public_callable_of_a_covered_module_is_classified(module_name: str) -> None:
    table = SURFACE[module_name]()
    missing = [name for name in _public_callables(module_name) if name not in table]
    assert not missing, (f"{module_name} has public callables the table in "
                         f"runtime/compartment/_surface.py does not classify: {missing}")


def test_the_walk_fails_on_an_unclassified_name(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setattr(time, "brand_new_clock", lambda: 0.0, raising=False)
    table = SURFACE["time"]()
    assert "brand_new_clock" in _public_callables("time")
    assert "brand_new_clock" not in table


def test_the_determinism_doc_shows_the_table_as_it_is() -> None:
    import surface_doc

    assert surface_doc.written() == surface_doc.tables(), (
        "docs/determinism.md is out of date: run `python tests/surface_doc.py --write`")
