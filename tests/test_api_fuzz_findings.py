"""What the schema fuzzer (tests/test_api_fuzz.py) found, pinned as plain examples."""

import pytest

from qefleet.api import api

pytestmark = pytest.mark.django_db


def test_it_rejects_a_null_ooda_phase_instead_of_failing(alice):
    cycle = alice.client.post("ooda", {}).json()
    response = alice.client.patch(f"ooda/{cycle['id']}", {"phase": None, "completed": None})
    assert response.status_code == 422
    assert response.json()["field"] in ("phase", "completed")


def test_it_still_clears_an_ooda_result_with_null(alice):
    cycle = alice.client.post("ooda", {}).json()
    alice.client.patch(f"ooda/{cycle['id']}", {"result": {"passed": 3}})
    response = alice.client.patch(f"ooda/{cycle['id']}", {"result": None, "phase": "act"})
    assert response.status_code == 200
    assert (response.json()["result"], response.json()["phase"]) == (None, "act")


@pytest.mark.parametrize("method, path", [
    ("put", "memory/notes/line%0Abreak"),  # the `path` converter stops at a newline
    ("post", "sessions/1.5/resume"),       # not an int: no route, and no CSRF page either
    ("get", "no-such-route"),
])
def test_it_answers_an_unrouted_api_path_with_json(alice, method, path):
    response = getattr(alice.client, method)(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == "not_found"


def test_it_documents_each_schema_under_its_own_name():
    document = api.get_openapi_schema()
    pattern_response = document["paths"]["/api/v1/patterns"]["post"]["responses"][201]
    assert pattern_response["content"]["application/json"]["schema"]["$ref"].endswith("/PatternOut")
    assert "usage_count" in document["components"]["schemas"]["PatternOut"]["properties"]
    assert "uses" in document["components"]["schemas"]["LearnedPatternOut"]["properties"]
    assert "name" in document["components"]["schemas"]["ActionIn"]["properties"]
    assert "retry_policy" in document["components"]["schemas"]["ExecutedActionIn"]["properties"]


def test_it_documents_the_answers_any_operation_can_give():
    document = api.get_openapi_schema()
    for methods in document["paths"].values():
        for operation in methods.values():
            assert {429, 503} <= operation["responses"].keys()


def test_it_rejects_a_plan_naming_an_id_beyond_the_database_range(alice):
    goal = alice.client.post("goap/goals", {"name": "ship"}).json()
    response = alice.client.post("goap/plans", {"goal_id": goal["id"], "sequence": [2**64]})
    assert response.status_code == 422
    assert response.json()["field"].startswith("sequence")


@pytest.mark.parametrize("query", ["hints?prefix=%00", "memory/notes?prefix=a%00", "abtests?agent=%00",
                                   "events?source=%00"])
def test_it_refuses_a_nul_in_a_query_parameter(alice, query):
    # PostgreSQL fails on a NUL in a query parameter; SQLite would match nothing.
    response = alice.client.get(query)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_query"


def test_it_finds_no_agent_named_with_a_nul(root):
    assert root.client.get("agents/a%00b").status_code == 404


def test_it_finds_no_agent_named_with_a_nul_for_an_ordinary_agent_either(alice):
    assert alice.client.get("agents/a%00b").status_code == 404


@pytest.mark.parametrize("since, answer", [
    ("0346-08-31T04:27:36%2B21:35", 200),  # PostgreSQL takes offsets only up to 15:59
    ("2026-01-01T00:00:00", 200),          # no offset: UTC
    ("0001-01-01T00:00:00%2B05:00", 400),  # year 0 in UTC
])
def test_it_reads_events_since_any_valid_datetime(alice, since, answer):
    response = alice.client.get(f"events?since={since}")
    assert response.status_code == answer
