"""The root's HTTP ingress, under `distdev up` (and once under `distdev dev`), hit over real
loopback HTTP: the result as JSON by the annotations, the status a service chooses with
HTTPError (raised by the root, or by a child and let through), 422 naming the argument that is
wrong, 404 listing the exports, UTF-8 as it is, and /openapi.json valid OpenAPI 3.1 describing
every export. The invoicing app (tests/apps/invoicing) is typed with dataclasses, Structs,
Enums, datetimes, dates, timedeltas, Decimals, UUIDs, sets, tuples, optional parameters,
defaults and msgspec constraints; its HTTPErrors are journaled and replay as they were raised."""

from __future__ import annotations

import datetime
import http.client
import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate
from support import run_distdev
from support.dev import DevServer
from support.engines import TESTS, LocalDeployment, build, running

from distdev import read_journal
from distdev.journal import ErrorIn, Raise

INVOICING = TESTS / "apps" / "invoicing"
EXPORTS = ["issue", "get", "invoices", "line_total", "greet", "overdue", "update_contact",
           "brew", "crash"]
ISSUED = "2026-01-02T03:04:05+00:00"
LINES = [{"item": "pen", "price": {"amount": "2.50"}, "quantity": 4},
         {"item": "Füller", "price": {"amount": "10"}}]


class Http:
    """A client of one ingress, over http.client: status, headers and the body's bytes."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.address = urllib.parse.urlsplit(url)

    def request(self, method: str, path: str, body: bytes | None = None,
                ) -> tuple[int, http.client.HTTPMessage, bytes]:
        connection = http.client.HTTPConnection(self.address.hostname, self.address.port,
                                                timeout=60)
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.headers, response.read()
        finally:
            connection.close()

    def post(self, export: str, body: Any) -> tuple[int, Any]:
        status, _, data = self.request("POST", f"/{export}",
                                       json.dumps(body, ensure_ascii=False).encode())
        return status, json.loads(data)


class Invoicing:
    def __init__(self, deployment: LocalDeployment, http: Http) -> None:
        self.deployment = deployment
        self.http = http


@pytest.fixture(scope="module")
def invoicing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Invoicing]:
    work = tmp_path_factory.mktemp("invoicing")
    build(INVOICING / "app.py", work / "out")
    with running(work / "out", work / "state", "--port", "0") as deployment:
        deployment.wait_for_log("app", "serving the ingress on http://")
        port = deployment.status()["app"]["http"]
        assert isinstance(port, int) and port != 8080  # --port 0: any free port, not the declared
        yield Invoicing(deployment, Http(f"http://127.0.0.1:{port}"))


def test_ingress_converts_json_to_the_annotated_types_and_the_result_to_json(
    invoicing: Invoicing,
) -> None:
    http = invoicing.http
    status, invoice = http.post("issue", {"customer": "ann", "lines": LINES, "issued": ISSUED,
                                          "tags": ["q1", "pens", "q1"]})
    assert status == 200, invoice
    assert invoice["lines"] == [
        {"item": "pen", "price": {"amount": "2.50", "currency": "EUR"}, "quantity": 4},
        {"item": "Füller", "price": {"amount": "10", "currency": "EUR"}, "quantity": 1}]
    assert invoice["total"] == {"amount": "20.00", "currency": "EUR"}  # Decimal arithmetic
    assert datetime.datetime.fromisoformat(invoice["issued"]) == datetime.datetime(
        2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    assert invoice["due"] == "2026-02-01"  # a date, 30 days (the default) on
    assert sorted(invoice["tags"]) == ["pens", "q1"]  # a set: once each
    assert invoice["pages"] == [1, 2] and invoice["note"] is None
    status, again = http.post("get", {"invoice_id": invoice["id"]})  # a UUID from its text
    assert (status, again) == (200, invoice)
    status, listed = http.post("invoices", {"customer": "ann"})
    assert status == 200 and invoice in listed
    status, late = http.post("overdue", {"on": "2026-02-03", "after": "P1D"})  # a timedelta
    assert status == 200 and invoice["id"] in late
    status, total = http.post("line_total", {"line": {"item": "ink", "quantity": 3,
                                                      "price": {"amount": "1.5",
                                                                "currency": "JPY"}}})
    assert (status, total) == (200, {"amount": "4.5", "currency": "JPY"})


def test_a_dataclass_holding_a_dict_crosses_to_a_child_process_and_back(
    invoicing: Invoicing,
) -> None:
    contact = {"email": "ann@example.org", "phones": {"home": "+43 1", "työ": "+358 9"}}
    assert invoicing.http.post("update_contact", {"customer": "ann", "contact": contact}) == (
        200, contact)
    status, answer = invoicing.http.post("update_contact", {"customer": "ann",
                                                            "contact": {"phones": {}}})
    assert (status, answer["detail"]["field"]) == (422, "contact.email")


def test_http_error_raised_by_the_root_is_its_status_and_body(invoicing: Invoicing) -> None:
    status, answer = invoicing.http.post("get",
                                         {"invoice_id": "6ba7b810-9dad-11d1-80b4-00c04fd430c8"})
    assert status == 404, answer
    assert answer == {"error": "Not Found",
                      "message": "no invoice 6ba7b810-9dad-11d1-80b4-00c04fd430c8"}
    mixed = [{"item": "a", "price": {"amount": "1", "currency": "USD"}},
             {"item": "b", "price": {"amount": "1"}}]
    status, answer = invoicing.http.post("issue", {"customer": "bob", "lines": mixed,
                                                   "issued": ISSUED})
    assert status == 409, answer
    assert answer["detail"] == {"currencies": ["EUR", "USD"]}


def test_http_error_raised_by_a_child_is_the_status_at_the_root(invoicing: Invoicing) -> None:
    status, answer = invoicing.http.post("issue", {"customer": "zed", "lines": LINES,
                                                   "issued": ISSUED})
    assert status == 404, answer
    assert answer == {"error": "Not Found", "message": "no customer 'zed'",
                      "detail": {"known": ["ann", "bob"]}}


BAD_ARGUMENTS = [
    ({"lines": LINES, "issued": ISSUED}, "customer"),  # missing
    ({"customer": "ann", "lines": LINES, "issued": ISSUED, "colour": "red"}, "colour"),
    ({"customer": "ann", "lines": [{"item": "pen", "price": {"amount": "a lot"}}],
      "issued": ISSUED}, "lines[0].price.amount"),
    ({"customer": "ann", "lines": [{"item": "pen", "price": {"amount": "1", "currency": "GBP"}}],
      "issued": ISSUED}, "lines[0].price.currency"),  # no such Enum value
    ({"customer": "ann", "lines": [LINES[0], {"item": "pen"}], "issued": ISSUED},
     "lines[1].price"),  # a Struct's required field
    ({"customer": "ann", "lines": LINES, "issued": "yesterday"}, "issued"),
    ({"customer": "ann", "lines": LINES, "issued": ISSUED, "days": "30"}, "days"),  # strict
    ({"customer": "ann", "lines": LINES, "issued": ISSUED, "days": 0}, "days"),  # Meta(ge=1)
    ({"customer": "ann", "lines": LINES, "issued": ISSUED, "tags": "q1"}, "tags"),
]


@pytest.mark.parametrize(("body", "field"), BAD_ARGUMENTS, ids=[f for _, f in BAD_ARGUMENTS])
def test_arguments_that_do_not_fit_are_a_422_naming_the_field(
    invoicing: Invoicing, body: dict[str, Any], field: str,
) -> None:
    status, answer = invoicing.http.post("issue", body)
    assert status == 422, answer
    assert answer["detail"]["field"] == field, answer
    assert answer["message"].startswith(f"argument {field}: "), answer


def test_a_body_that_is_not_an_object_of_arguments_is_refused(invoicing: Invoicing) -> None:
    status, _, data = invoicing.http.request("POST", "/issue", b"{not json")
    assert status == 400 and "not JSON" in json.loads(data)["message"]
    status, answer = invoicing.http.post("issue", [1, 2])
    assert status == 422 and "object of its arguments" in answer["message"], answer


def test_an_unknown_path_is_a_404_listing_the_exports(invoicing: Invoicing) -> None:
    for method in ("POST", "GET"):
        status, _, data = invoicing.http.request(method, "/nosuch", b"{}")
        answer = json.loads(data)
        assert status == 404, answer
        assert answer["detail"] == {"exports": EXPORTS}
        assert "/nosuch is no export of app" in answer["message"]
        assert "/issue, /get" in answer["message"]
    status, headers, _ = invoicing.http.request("GET", "/issue")
    assert status == 405 and headers["Allow"] == "POST"
    status, _, data = invoicing.http.request("GET", "/")
    listing = json.loads(data)
    assert status == 200 and list(listing["exports"]) == EXPORTS
    assert listing["exports"]["issue"] == ["customer", "lines", "issued", "tags", "note", "days"]


def test_an_unexpected_exception_is_a_500_with_its_type(invoicing: Invoicing) -> None:
    assert invoicing.http.post("crash", {}) == (
        500, {"error": "ValueError", "message": "the ledger is on fire"})


def test_an_http_error_whose_detail_cannot_cross_is_a_500_saying_so(
    invoicing: Invoicing,
) -> None:
    status, answer = invoicing.http.post("brew", {})
    assert (status, answer["error"]) == (500, "MembraneError"), answer
    assert answer["message"].startswith("HTTPError(418, \"I'm a teapot\") was raised with a "
                                        "detail that cannot cross a membrane"), answer


def test_utf8_crosses_both_ways_as_it_is(invoicing: Invoicing) -> None:
    name = "Zoë 東京 🧾"
    status, headers, data = invoicing.http.request(
        "POST", "/greet", json.dumps({"name": name}, ensure_ascii=False).encode())
    assert status == 200
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert data.decode("utf-8") == json.dumps(f"Γειά σου, {name}! ", ensure_ascii=False)
    assert b"\\u" not in data
    _, _, data = invoicing.http.request("POST", "/greet", json.dumps({"name": "bob"}).encode())
    assert "Bob Björk" in data.decode("utf-8")  # from the child, through two membranes


def test_openapi_json_is_valid_and_describes_every_export(invoicing: Invoicing) -> None:
    http = invoicing.http
    status, headers, data = http.request("GET", "/openapi.json")
    assert status == 200 and headers["Content-Type"] == "application/json; charset=utf-8"
    document = json.loads(data)
    validate(document)  # OpenAPI 3.1 (JSON Schema 2020-12), by openapi-spec-validator
    assert document["openapi"] == "3.1.0"
    assert set(document["paths"]) == {f"/{e}" for e in EXPORTS}
    schemas = document["components"]["schemas"]
    assert {"Invoice", "Line", "Money", "Currency", "distdev.Error"} <= set(schemas)
    assert sorted(schemas["Currency"]["enum"]) == ["EUR", "JPY", "USD"]  # by value
    issue = document["paths"]["/issue"]["post"]
    assert issue["operationId"] == "issue"
    assert issue["summary"] == "Issue an invoice to a known customer."
    body = issue["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["customer", "lines", "issued"]
    assert body["additionalProperties"] is False
    assert body["properties"]["days"] == {"type": "integer", "minimum": 1, "default": 30}
    assert body["properties"]["lines"]["items"] == {"$ref": "#/components/schemas/Line"}
    for status_key in ("400", "422", "4XX", "500"):
        error = issue["responses"][status_key]["content"]["application/json"]["schema"]
        assert error == {"$ref": "#/components/schemas/distdev.Error"}
    # What the ingress answers is what the document says it answers.
    status, invoice = http.post("issue", {"customer": "bob", "lines": LINES, "issued": ISSUED})
    assert status == 200
    answers = [(issue["responses"]["200"], invoice)]
    status, problem = http.post("issue", {"customer": "bob", "lines": [], "issued": 1})
    assert status == 422
    answers.append((issue["responses"]["422"], problem))
    for response, answer in answers:
        schema = {**response["content"]["application/json"]["schema"],
                  "components": document["components"]}
        jsonschema.Draft202012Validator(schema).validate(answer)
    request = {"customer": "bob", "lines": LINES, "issued": ISSUED, "tags": ["x"]}
    jsonschema.Draft202012Validator({**body, "components": document["components"]}).validate(
        request)


def test_http_errors_are_journaled_with_their_status_and_replay(invoicing: Invoicing) -> None:
    http, deployment = invoicing.http, invoicing.deployment
    assert http.post("issue", {"customer": "nobody", "lines": [], "issued": ISSUED})[0] == 404
    assert http.post("get", {"invoice_id": "00000000-0000-0000-0000-000000000001"})[0] == 404
    root, child = deployment.journal("app"), deployment.journal("app/customers")
    raised = [e.error for e in read_journal(child).events if isinstance(e, Raise)]
    assert any(e.type == "HTTPError" and e.attributes["status"] == 404
               and e.attributes["detail"] == {"known": ["ann", "bob"]} for e in raised), raised
    events = read_journal(root).events
    received = [e.error for e in events if isinstance(e, ErrorIn)]  # the child's, at the root
    assert any(e.type == "HTTPError" and e.args[0] == 404 for e in received), received
    assert any(isinstance(e, Raise) and e.error.type == "HTTPError"
               and e.error.message == "404 no invoice 00000000-0000-0000-0000-000000000001"
               for e in events)
    for journal in (root, child):
        replayed = run_distdev("replay", journal, "--json")
        assert replayed.returncode == 0, replayed.stderr


def test_dev_serves_the_same_ingress(tmp_path: Path) -> None:
    server = DevServer(INVOICING / "app.py", tmp_path)
    try:
        status, invoice = server.post("issue", {"customer": "ann", "lines": LINES,
                                                "issued": ISSUED})
        assert status == 200 and invoice["total"] == {"amount": "20.00", "currency": "EUR"}
        status, answer = server.post("issue", {"customer": "zed", "lines": [],
                                               "issued": ISSUED})
        assert (status, answer["detail"]) == (404, {"known": ["ann", "bob"]})
        status, answer = server.post("issue", {"customer": "ann", "issued": ISSUED})
        assert (status, answer["detail"]["field"]) == (422, "lines")
        status, answer = server.post("nosuch", {})
        assert (status, answer["detail"]) == (404, {"exports": EXPORTS})
        document = Http(server.url).request("GET", "/openapi.json")[2]
        validate(json.loads(document))
    finally:
        code, output = server.stop()
    assert code == 0, output
