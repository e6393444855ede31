"""The conformance corpus (corpus.py), run: each case's outcome as the contract promises it."""

from __future__ import annotations

from pathlib import Path

import pytest
from determinism.corpus import CASES
from determinism.harness import Case, run_case, run_case_under_up


def _param(case: Case) -> object:
    marks = [] if case.xfail is None else [pytest.mark.xfail(strict=True, reason=case.xfail)]
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.filterwarnings("ignore:coroutine .* was never awaited")  # asyncio.run, refused
@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_case(case: Case, tmp_path: Path) -> None:
    run_case(case, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("case", [_param(c) for c in CASES if c.up])
def test_case_under_up(case: Case, tmp_path: Path) -> None:
    run_case_under_up(case, tmp_path)


def test_the_corpus_is_large_and_its_ids_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 60
    assert {c.outcome for c in CASES} == {"exact", "refused", "detected"}
