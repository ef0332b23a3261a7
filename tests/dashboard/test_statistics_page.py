"""The Statistics health page: the fleet's and each agent's measured rates
beside their nominal ones, what to change when out of band, drills on demand."""

import pytest

from learning import drills
from learning.models import DrillRun, DrillTrigger
from qefleet.memory.models import AuditEvent
from tests.learning.drill_helpers import logged_history

pytestmark = pytest.mark.django_db


@pytest.fixture
def drilled(alice, bob):
    logged_history(alice, tasks=300, success_rate=1.0)  # steady: every rule in band
    logged_history(bob, tasks=200, tasks_per_hour=0.5, seed=1)  # too slow for an A/B horizon
    return [drills.drill(alice, DrillTrigger.COMMAND), drills.drill(bob, DrillTrigger.COMMAND)]


def test_the_page_shows_the_fleets_rates_beside_their_nominal_ones(viewer, drilled):
    page = viewer.get("/ops/statistics/").content.decode()
    fleet = drills.fleet_figures(drilled)
    assert "A/A tests ending in a verdict, winner or loser" in page and "5 % (the rule&#x27;s two-sided level)" in page
    assert "A/A tests naming a false winner" in page and "about 2.5 % (one side), at most 5 %" in page
    assert f"of {fleet['aa']['runs']}" in page
    assert "The newest drills of 2 agents, their counts summed;\n    1 of them have a rule out of its band" in page
    assert 'href="/ops/statistics/bob/"' in page
    assert "Drill now" not in page  # a viewer cannot drill


def test_an_agents_page_says_what_to_change(viewer, drilled):
    page = viewer.get("/ops/statistics/bob/").content.decode()
    assert "Too little traffic for the horizon" in page
    assert "out of its band" in page


def test_an_operator_drills_an_agent_now(operator, drilled):
    response = operator.post("/ops/statistics/alice/drill")
    assert response.status_code == 302 and response["Location"] == "/ops/statistics/alice/"
    assert DrillRun.objects.filter(agent__agent_id="alice", trigger=DrillTrigger.OPERATOR).count() == 1
    assert AuditEvent.objects.filter(action="run_drills", actor="operator").count() == 1
    page = operator.get("/ops/statistics/alice/").content.decode()
    assert "Drilled alice in" in page and "every rule within its band" in page


def test_a_viewer_cannot_drill(viewer, drilled):
    assert viewer.post("/ops/statistics/alice/drill").status_code == 403


def test_an_agent_with_too_few_tasks_is_told_so(operator, carol):
    logged_history(carol, tasks=20)
    operator.post("/ops/statistics/carol/drill")
    page = operator.get("/ops/statistics/").content.decode()
    assert "the drills need 100" in page
    assert "Not drilled yet" in page and "carol" in page
