"""Triage on the fleet page in a real browser: the tiles count the fleet's
states, and the table filters by state and team and sorts by a column, at
desktop and phone widths."""

import pytest
from playwright.sync_api import expect

from learning.models import LearningProfile, Safeguard
from qefleet.memory.fleet import register_demo_fleet
from qefleet.memory.models import Agent
from tests.browser.helpers import log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def fleet(users):
    """The 17 demo agents learning; quality-gate degraded, test-executor warning, chaos-engineer's learning off."""
    register_demo_fleet()
    for agent in Agent.objects.all():
        LearningProfile.objects.create(agent=agent, task_count=60, baseline_score=0.5,
                                       enabled=agent.agent_id != "chaos-engineer")
        state = {"quality-gate": "degraded", "test-executor": "warning"}.get(agent.agent_id, "ok")
        Safeguard.objects.create(agent=agent, state=state)


def agent_names(page):
    return page.locator("#fleet-agents tbody th[scope=row] a").all_inner_texts()


def test_an_operator_triages_the_fleet_by_state_team_and_sort(live_server, watched, fleet):
    log_in(watched, live_server, "operator")
    tiles = watched.get_by_role("list", name="Fleet health")
    expect(tiles).to_contain_text("1 ✗ degraded")
    expect(tiles).to_contain_text("1 ○ learning off")
    expect(tiles).to_contain_text("1 ! warning")
    assert agent_names(watched)[:3] == ["quality-gate", "chaos-engineer", "test-executor"]  # worst first

    tiles.get_by_role("link", name="degraded").click()
    watched.wait_for_load_state("networkidle")
    assert agent_names(watched) == ["quality-gate"]
    expect(watched.locator("#fleet-agents")).to_contain_text("1 of 17 agents match the filters")

    watched.get_by_role("link", name="Clear the filters").click()
    watched.get_by_label("Team").select_option("core-testing")
    watched.get_by_role("button", name="Filter").click()
    watched.wait_for_load_state("networkidle")
    core = sorted(Agent.objects.filter(team="core-testing").values_list("agent_id", flat=True))
    assert sorted(agent_names(watched)) == core

    watched.get_by_role("link", name="Agent").click()  # sort by name, then reversed
    watched.wait_for_load_state("networkidle")
    assert agent_names(watched) == core
    watched.get_by_role("link", name="Agent").click()
    watched.wait_for_load_state("networkidle")
    assert agent_names(watched) == core[::-1]
    expect(watched.locator("th[aria-sort=descending]")).to_contain_text("Agent")
    screenshot(watched, "triage-sorted")

    watched.set_viewport_size({"width": 390, "height": 844})
    watched.get_by_label("State").select_option("learning-off")
    watched.get_by_label("Team").select_option("")
    watched.get_by_role("button", name="Filter").click()
    watched.wait_for_load_state("networkidle")
    assert agent_names(watched) == ["chaos-engineer"]
    assert watched.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(watched, "triage-phone")
