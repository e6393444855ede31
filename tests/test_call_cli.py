"""`distdev call` against a running deployment (tests/apps/invoicing under `distdev up`), run
as a user runs it: JSON converted to the export's annotated types by the service (a dataclass
from an object, a datetime from its text), keyword arguments `NAME=VALUE`, an unknown export
or an argument that does not fit answered in one line with exit 1, non-ASCII printed as it is,
and `--json` printing every value that can cross a membrane by the ingress's JSON rule. The
service journals the JSON as it came: a replay converts it again, exactly."""

from __future__ import annotations

import datetime
import json
import subprocess
from collections.abc import Iterator

import pytest
from support import run_distdev
from support.engines import TESTS, LocalDeployment, build, running

INVOICING = TESTS / "apps" / "invoicing"
LINES = '[{"item": "Füller", "price": {"amount": "9.5"}}, {"item": "pen", "quantity": 2, ' \
        '"price": {"amount": "0.25"}}]'


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDeployment]:
    work = tmp_path_factory.mktemp("call")
    build(INVOICING / "app.py", work / "out")
    with running(work / "out", work / "state", "--port", "0") as started:
        yield started


def call(deployment: LocalDeployment, target: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_distdev("call", target, "--state", deployment.state, *args)


def test_call_converts_a_json_object_to_the_annotated_dataclass(
    deployment: LocalDeployment,
) -> None:
    result = call(deployment, "app.line_total",
                  '{"item": "pen", "price": {"amount": "2.50", "currency": "USD"}, "quantity": 3}',
                  "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"amount": "7.50", "currency": "USD"}


def test_call_takes_keyword_arguments_as_json_or_else_text(deployment: LocalDeployment) -> None:
    result = call(deployment, "app.issue", "customer=ann", f"lines={LINES}",
                  "issued=2026-01-02T03:04:05+01:00", "days=10", 'note="42"', "--json")
    assert result.returncode == 0, result.stderr
    invoice = json.loads(result.stdout)
    assert invoice["customer"] == "ann"  # not JSON: the text itself
    assert invoice["note"] == "42"  # quoted: a string, though it looks like a number
    assert invoice["due"] == "2026-01-12"  # days=10: the number
    assert datetime.datetime.fromisoformat(invoice["issued"]) == datetime.datetime(
        2026, 1, 2, 2, 4, 5, tzinfo=datetime.UTC)
    positional = call(deployment, "app.line_total",
                      '{"item": "pen", "price": {"amount": "1"}}', 'line={"item": "x"}')
    assert positional.returncode == 1
    assert "argument line: given twice" in positional.stderr


def test_call_json_prints_every_value_that_crosses(deployment: LocalDeployment) -> None:
    issued = call(deployment, "app.issue", "customer=bob", f"lines={LINES}",
                  "issued=2026-03-04T05:06:07+00:00", 'tags=["b", "a", "b"]', "--json")
    assert issued.returncode == 0, issued.stderr
    invoice = json.loads(issued.stdout)
    result = call(deployment, "app.invoices", "customer=bob", "--json")
    assert result.returncode == 0, result.stderr  # a dataclass holding a list of Structs
    (listed,) = json.loads(result.stdout)
    assert listed == invoice
    assert listed["lines"] == [
        {"item": "Füller", "price": {"amount": "9.5", "currency": "EUR"}, "quantity": 1},
        {"item": "pen", "price": {"amount": "0.25", "currency": "EUR"}, "quantity": 2}]
    assert listed["total"] == {"amount": "10.00", "currency": "EUR"}  # Decimal, as a string
    assert sorted(listed["tags"]) == ["a", "b"] and listed["pages"] == [1, 2]  # set, tuple
    assert listed["issued"].startswith("2026-03-04T05:06:07") and listed["due"] == "2026-04-03"
    overdue = call(deployment, "app.overdue", "on=2027-01-01", "after=P1D", "--json")
    assert overdue.returncode == 0 and invoice["id"] in json.loads(overdue.stdout)
    readable = call(deployment, "app.get", f'"{invoice["id"]}"')  # without --json: indented
    assert readable.returncode == 0, readable.stderr
    assert json.loads(readable.stdout) == invoice and '\n  "customer": "bob"' in readable.stdout


def test_call_of_a_child_with_a_dataclass_holding_a_dict(deployment: LocalDeployment) -> None:
    result = call(deployment, "app/customers.remember", "customer=bob",
                  'contact={"email": "bob@example.org", "phones": {"työ": "+358 9"}}', "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"email": "bob@example.org", "phones": {"työ": "+358 9"}}


def test_call_prints_non_ascii_as_it_is(deployment: LocalDeployment) -> None:
    for mode in ([], ["--json"]):
        result = call(deployment, "app.greet", "name=Zoë 東京", *mode)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == '"Γειά σου, Zoë 東京! "', result.stdout
    result = call(deployment, "app/customers.require", '"bob"')
    assert result.stdout.strip() == '"Bob Björk"'


def test_call_of_an_unknown_export_names_the_exports(deployment: LocalDeployment) -> None:
    result = call(deployment, "app.nosuch", "1")
    assert result.returncode == 1 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line == ("error (ExportError): service app has no export 'nosuch'; it exports: "
                    "issue, get, invoices, line_total, greet, overdue, update_contact, brew, crash")


def test_call_with_an_argument_that_does_not_fit_says_which(deployment: LocalDeployment) -> None:
    result = call(deployment, "app.line_total", '{"item": "pen", "price": {"amount": "zz"}}')
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line == "error (HTTPError): 422 argument line.price.amount: Invalid decimal string"
    result = call(deployment, "app.greet", "ann")
    assert result.returncode == 1
    assert "is not JSON" in result.stderr and "NAME=ann" in result.stderr


def test_call_json_of_an_http_error_carries_its_status_and_detail(
    deployment: LocalDeployment,
) -> None:
    result = call(deployment, "app.issue", "customer=zed", "lines=[]",
                  "issued=2026-01-02T03:04:05", "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout) == {"error": "HTTPError", "message": "404 no customer 'zed'",
                                         "status": 404, "detail": {"known": ["ann", "bob"]}}


def test_json_calls_replay_exactly(deployment: LocalDeployment) -> None:
    result = call(deployment, "app.issue", "customer=ann", "lines=[]", "issued=2030-01-01",
                  'note="replayed"', "--json")
    assert result.returncode == 1 and "argument issued" in result.stderr  # a date, no datetime
    result = call(deployment, "app.issue", "customer=ann", "lines=[]",
                  "issued=2030-01-01T00:00:00", 'note="replayed"', "--json")
    assert result.returncode == 0, result.stderr
    replayed = run_distdev("replay", deployment.journal("app"), "--json")
    assert replayed.returncode == 0, replayed.stderr
    assert '"note": "replayed"' in json.dumps(json.loads(replayed.stdout)["state"])
