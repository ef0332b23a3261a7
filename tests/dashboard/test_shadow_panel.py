"""Shadow mode on the console: the fleet page marks and filters agents in
shadow; the agent page's panel shows the shadow figures in words beside
their numbers, and operators put an agent in shadow and promote it (a
reason and a confirmation), audited; viewers do neither."""

import re

import pytest

from learning import shadow
from qefleet.memory.models import AuditEvent
from tests.dashboard.helpers import client_for
from tests.learning.helpers import profile, run_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def in_shadow(alice, bob):
    for _ in range(3):
        run_task(bob)
    client_for("operator").post("/ops/agents/alice/shadow", {"reason": "new agent"})
    for _ in range(4):
        run_task(alice)
    return alice


def test_an_operator_puts_an_agent_in_shadow_with_a_reason(alice):
    run_task(alice)
    operator = client_for("operator")
    assert "Put in shadow" in operator.get("/ops/agents/alice/").content.decode()
    assert operator.post("/ops/agents/alice/shadow", {"reason": " "}).status_code == 400
    operator.post("/ops/agents/alice/shadow", {"reason": "re-enabled after a rollback"})
    assert profile(alice).in_shadow
    page = operator.get("/ops/agents/alice/").content.decode()
    assert "operator put alice in shadow: “re-enabled after a rollback”" in page


def test_the_panel_shows_the_figures_and_the_rule_in_words(in_shadow):
    page = client_for("viewer").get("/ops/agents/alice/").content.decode()
    figures = shadow.figures(in_shadow, profile(in_shadow))
    assert 'id="shadow-heading">Shadow mode<' in page
    assert re.search(r"Decisions in shadow</dt>\s*<dd>4 <span class=\"muted\">\(4 reported\)", page)
    assert f"{figures['agreement'] * 100:.0f} %" in page
    assert "4 reported (196 to go)" in page and "Promotes to active when" in page
    assert "Promote to active" not in page and "Put in shadow" not in page  # a viewer acts on nothing
    assert "own choice (propensity 1); the learned policy would have chosen" in page


def test_promoting_needs_the_confirmation_and_a_reason_and_is_audited(in_shadow):
    operator = client_for("operator")
    assert operator.post("/ops/agents/alice/promote", {"reason": "looks good"}).status_code == 400
    assert operator.post("/ops/agents/alice/promote", {"reason": "", "confirm": "yes"}).status_code == 400
    assert profile(in_shadow).in_shadow
    operator.post("/ops/agents/alice/promote", {"reason": "looks good", "confirm": "yes"})
    assert not profile(in_shadow).in_shadow
    row = AuditEvent.objects.get(action="promote_shadow")
    assert row.actor == "operator" and row.detail["decisions"] == 4
    page = operator.get("/ops/agents/alice/").content.decode()
    assert "operator promoted alice from shadow to active: “looks good”" in page


def test_viewers_may_not_put_in_shadow_or_promote(in_shadow):
    viewer = client_for("viewer")
    assert viewer.post("/ops/agents/alice/promote", {"reason": "x", "confirm": "yes"}).status_code == 403
    assert viewer.post("/ops/agents/bob/shadow", {"reason": "x"}).status_code == 403


def test_the_fleet_page_marks_filters_and_counts_agents_in_shadow(in_shadow):
    viewer = client_for("viewer")
    page = viewer.get("/ops/").content.decode()
    assert "in shadow" in page
    assert re.search(r'<span class="tile-number">1</span> <span aria-hidden="true">◐</span> in shadow', page)
    only = viewer.get("/ops/?mode=shadow").content.decode()
    assert 'href="/ops/agents/alice/"' in only and 'href="/ops/agents/bob/"' not in only
    assert viewer.get("/ops/?mode=nonsense").status_code == 400


def test_an_operator_resumes_their_pause_in_shadow(alice):
    run_task(alice)
    operator = client_for("operator")
    operator.post("/ops/agents/alice/pause", {"reason": "a bad deploy"})
    assert "Resume in shadow" in operator.get("/ops/agents/alice/").content.decode()
    operator.post("/ops/agents/alice/re-enable", {"mode": "shadow"})
    assert profile(alice).enabled and profile(alice).in_shadow
    page = operator.get("/ops/agents/alice/").content.decode()
    assert "operator resumed the learning of alice in shadow" in page
    assert operator.post("/ops/agents/alice/re-enable", {"mode": "sideways"}).status_code == 400


def test_is_it_learning_does_not_say_an_agent_in_shadow_chooses_by_what_it_learned(alice):
    run_task(alice)
    client_for("operator").post("/ops/agents/alice/shadow", {"reason": "new agent"})
    for _ in range(35):
        run_task(alice)
    page = client_for("viewer").get("/ops/agents/alice/").content.decode()
    assert "most of its decisions are its own choices (shadow mode)" in page
    assert "mostly come from what it learned" not in page
