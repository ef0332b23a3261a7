"""The A/B tests list at /ops/abtests/."""

import pytest
from django.test import Client

from dashboard.pages import abtests
from tests.dashboard.helpers import applied_test, inconclusive_test, running_test
from tests.learning.abtest_helpers import start_test

pytestmark = pytest.mark.django_db


@pytest.fixture
def tests_of_alice_and_bob(alice, bob):
    """alice: a running and an inconclusive test; bob: an applied one (newest)."""
    return running_test(alice), inconclusive_test(alice, "integration-tests"), applied_test(bob)


def listed(response):
    return [test.pk for test in response.context["page"].object_list]


def test_it_requires_a_login():
    response = Client().get("/ops/abtests/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?next=/ops/abtests/"


def test_it_lists_tests_newest_first_with_state_arms_and_decision(viewer, tests_of_alice_and_bob):
    running, inconclusive, applied = tests_of_alice_and_bob
    response = viewer.get("/ops/abtests/")
    assert listed(response) == [applied.pk, inconclusive.pk, running.pk]
    page = response.content.decode()
    assert f'href="/ops/abtests/{running.pk}/"' in page and 'href="/ops/agents/bob/"' in page
    assert "▶</span> running" in page and "≈</span> inconclusive" in page and "applied, monitoring" in page
    assert "control: sequential-execution · 120 tasks, 75.0 % succeeded" in page
    assert "treatment: parallel-execution · 120 tasks, 80.8 % succeeded" in page
    assert ("inconclusive, no clear difference: after 100 of 100 tasks per arm at the last look, the treatment&#x27;s "
            "success rate is somewhere from -8.8 to +14.7 points against the control&#x27;s") in page
    assert "too early to call: after 120 of 200 tasks per arm" in page and "crosses zero" not in page


def test_it_has_labelled_filters(viewer, tests_of_alice_and_bob):
    page = viewer.get("/ops/abtests/").content.decode()
    assert '<label for="filter-state">State</label>' in page and '<select id="filter-state" name="state">' in page
    assert '<label for="filter-agent">Agent</label>' in page
    assert '<option value="alice">alice</option>' in page and '<option value="bob">bob</option>' in page


@pytest.mark.parametrize("query, expected", [
    ("state=running", ["running"]),
    ("state=inconclusive", ["inconclusive"]),
    ("agent=alice", ["inconclusive", "running"]),
    ("agent=bob&state=monitoring", ["applied"]),
    ("agent=bob&state=running", []),
    ("state=&agent=", ["applied", "inconclusive", "running"]),  # the defaults; other values: 400
])
def test_it_filters_by_state_and_agent(viewer, tests_of_alice_and_bob, query, expected):
    names = dict(zip(("running", "inconclusive", "applied"), (test.pk for test in tests_of_alice_and_bob)))
    assert listed(viewer.get(f"/ops/abtests/?{query}")) == [names[name] for name in expected]


def test_it_says_why_a_test_has_no_decision_yet(viewer, alice):
    start_test(alice, "unit-tests", start=False)
    start_test(alice, "integration-tests")
    page = viewer.get("/ops/abtests/").content.decode()
    assert "not started: an admin starts drafts" in page and "running: no look yet" in page


def test_it_pages_through_many_tests(viewer, alice, monkeypatch):
    monkeypatch.setattr(abtests, "ABTESTS_PER_PAGE", 2)
    tests = [start_test(alice, f"type-{number}") for number in range(3)]
    response = viewer.get("/ops/abtests/?agent=alice&page=2")
    assert listed(response) == [tests[0].pk]
    assert "Page 2 of 2" in response.content.decode() and "agent=alice&amp;page=1" in response.content.decode()


def test_it_keeps_to_the_query_budget(operator, alice, bob, django_assert_max_num_queries):
    for number in range(abtests.ABTESTS_PER_PAGE + 1):
        start_test(alice if number % 2 else bob, f"type-{number}")
    with django_assert_max_num_queries(25):
        response = operator.get("/ops/abtests/")
    assert len(response.context["page"].object_list) == abtests.ABTESTS_PER_PAGE
