"""The console's own pages: the fleet's timeline, the comparison of agents,
and the styled 400 and 404 pages."""

import pytest
from django.contrib.auth.models import User

from learning import alerts, operations
from learning.models import LearningProfile, Safeguard
from tests.conftest import make_agent
from tests.learning.helpers import run_task

pytestmark = pytest.mark.django_db


def test_the_timeline_lists_learning_events_and_operator_actions_as_sentences(operator, history, alice):
    operations.roll_back_to(alice, 1, User.objects.get(username="operator"), "worse")
    page = " ".join(operator.get("/ops/timeline/").content.decode().split())
    assert "An operator rolled back from" in page and "operator rolled back alice" in page
    assert "learning:" not in page.split('id="timeline"')[1]
    events_only = operator.get("/ops/timeline/?kind=events").content.decode()
    assert "operator rolled back alice" not in events_only


def test_the_timeline_says_why_it_is_empty(viewer):
    page = viewer.get("/ops/timeline/?days=1").content.decode()
    assert "Nothing in this window" in page


def test_compare_sets_agents_side_by_side_with_one_chart(viewer, alice):
    bob = make_agent("bob")
    for agent in (alice, bob):
        for _ in range(20):
            run_task(agent)
    response = viewer.get("/ops/compare/?agent=alice&agent=bob")
    assert [row.agent.agent_id for row in response.context["compared"]] == ["alice", "bob"]
    assert response.context["figure"] is not None and 'id="compare-chart"' in response.content.decode()
    assert "Tick two to" in viewer.get("/ops/compare/?agent=alice").content.decode()


def test_compare_refuses_an_unknown_agent_on_a_styled_page(viewer, alice):
    response = viewer.get("/ops/compare/?agent=alice&agent=nobody")
    page = response.content.decode()
    assert response.status_code == 400 and "agent must name registered agents." in page
    assert 'class="site-header"' in page  # the dashboard's own page, not plain text


def test_an_unknown_agent_answers_the_dashboards_404_page(viewer):
    response = viewer.get("/ops/agents/nobody/")
    assert response.status_code == 404 and "Nothing here by that name" in response.content.decode()


def test_the_nav_links_the_api_docs_timeline_and_compare(viewer):
    page = viewer.get("/ops/").content.decode()
    assert 'href="/api/v1/docs"' in page and 'href="/ops/timeline/"' in page and 'href="/ops/compare/"' in page


def test_each_state_tile_counts_the_rows_its_link_shows(viewer, alice, bob, carol):
    """Alice warns with learning off, Bob only warns, Carol is healthy: the
    warning tile counts Bob alone, as ?state=warning lists him alone."""
    for agent in (alice, bob, carol):
        run_task(agent)
    Safeguard.objects.filter(agent__in=[alice, bob]).update(state="warning")
    Safeguard.objects.filter(agent=carol).update(state="ok")
    LearningProfile.objects.filter(agent=alice).update(enabled=False)
    tiles = viewer.get("/ops/").context["tiles"]
    for state, key in (("warning", "warning"), ("learning-off", "learning_off"), ("healthy", "healthy")):
        shown = viewer.get(f"/ops/?state={state}").context["rows"]
        assert tiles[key] == len(shown) == 1, state


def test_the_fleet_tiles_count_states_alerts_and_incidents(viewer, alice):
    run_task(alice)
    alerts.raise_alert("safeguard:degraded", "high", "alice degraded", {}, alice)
    tiles = viewer.get("/ops/").context["tiles"]
    assert dict(tiles["alerts"])["high"] == 1 and tiles["incidents"] == 0
