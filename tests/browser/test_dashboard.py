"""The dashboard in a real browser (Debian's chromium): logging in, charts
drawn, a viewer refused, and pages refreshing in place (acting on alerts,
rollback, undo, pause and resume: test_alerts_and_rollback.py)."""


import pytest
from playwright.sync_api import expect

from learning import alerts, operations, versions
from learning.models import Rollback, StateVersion
from qefleet.memory.fleet import issue_token, register_demo_fleet
from qefleet.memory.models import Agent
from tests.browser.helpers import log_in, screenshot, visit
from tests.conftest import AgentClient
from tests.learning.helpers import learn_then_worsen, profile

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def demo_agent(agent_id):
    agent = Agent.objects.get(agent_id=agent_id)
    agent.client = AgentClient(issue_token(agent)[1])
    return agent


@pytest.fixture
def fleet(users, django_user_model):
    """The 17 demo agents; test-generator learned, got worse (its safeguard
    alerts), was rolled back to v1 by the operator and re-enabled by the
    admin."""
    register_demo_fleet()
    agent = demo_agent("test-generator")
    learn_then_worsen(agent)
    alerts.raise_alert("safeguard:degraded", "high", "test-generator degraded -12.0% against its reference",
                       {"change_pct": -12.0}, agent)
    operations.roll_back_to(agent, 1, django_user_model.objects.get(username="operator"), "worse since v1")
    operations.re_enable(agent, django_user_model.objects.get(username="admin"))
    return agent


def live_checksum(agent):
    return versions.checksum(versions.learned_state(agent, profile(agent)))


def test_an_operator_logs_in_and_sees_the_fleet(live_server, watched, fleet):
    log_in(watched, live_server, "operator")
    expect(watched.get_by_role("heading", name="Fleet overview")).to_be_visible()
    expect(watched.locator("#fleet-agents tbody tr")).to_have_count(17)
    row = watched.locator("#fleet-agents tbody tr", has=watched.get_by_role("link", name="test-generator"))
    expect(row.locator("td.trend svg.inline-chart")).to_be_visible()
    expect(watched.locator('[data-figure="fleet-change"] .main-svg').first).to_be_visible()
    expect(watched.locator('[data-figure="fleet-change"]')).to_contain_text("target +20 %")
    expect(watched.locator("#heartbeat tbody tr").first).to_contain_text("qefleet.")
    screenshot(watched, "fleet")


def test_the_agent_page_draws_its_charts_with_annotations(live_server, watched, fleet):
    log_in(watched, live_server, "operator", then="/ops/agents/test-generator/")
    score = watched.locator('[data-figure="score-chart"]')
    expect(score.locator(".main-svg").first).to_be_visible()
    expect(score).to_contain_text("rollback to v1 (operator)")
    expect(score).to_contain_text("re-enabled by admin")
    expect(score).to_contain_text("baseline")
    for title, chart in (("The five components", "components-chart"), ("Exploration and Q-table size",
                                                                           "exploration-chart")):
        watched.get_by_text(title).click()  # folded until asked for
        expect(watched.locator(f'[data-figure="{chart}"] .main-svg').first).to_be_visible()
    expect(watched.locator("#rollback-preview")).to_contain_text("Rolling back to v1")
    expect(watched.locator("#q-states tbody tr").first).to_contain_text("unit-tests")
    expect(watched.locator("#decisions tbody tr").first).to_contain_text("Explo")
    screenshot(watched, "agent")


def test_a_viewer_has_no_action_buttons_and_is_refused(live_server, watched, fleet):
    log_in(watched, live_server, "viewer", then="/ops/agents/test-generator/")
    expect(watched.get_by_role("button", name="Preview v1")).to_be_visible()
    expect(watched.get_by_role("link", name="Roll back to v1…")).to_have_count(0)
    screenshot(watched, "agent-as-viewer")
    visit(watched, f"{live_server.url}/ops/alerts/")
    expect(watched.locator(".alert-item").first).to_be_visible()
    expect(watched.get_by_role("button", name="Acknowledge checked")).to_have_count(0)
    token = next(cookie["value"] for cookie in watched.context.cookies() if cookie["name"] == "csrftoken")
    response = watched.request.post(f"{live_server.url}/ops/agents/test-generator/rollback",
                                    form={"version": "1", "reason": "r", "csrfmiddlewaretoken": token},
                                    headers={"Referer": f"{live_server.url}/ops/agents/test-generator/"})
    assert response.status == 403 and "CSRF" not in response.text()
    assert Rollback.objects.count() == 1  # the fixture's


def test_pages_refresh_their_numbers_in_place(live_server, watched, fleet, settings):
    settings.DASHBOARD_REFRESH_SECONDS = 1
    log_in(watched, live_server, "viewer")
    watched.evaluate("window.loadedOnce = true")
    row = watched.locator("#fleet-agents tbody tr", has=watched.get_by_role("link", name="quality-gate"))
    expect(row.locator("td").last).to_have_text("0")
    alerts.raise_alert("safeguard:degraded", "high", "quality-gate degraded", {},
                       Agent.objects.get(agent_id="quality-gate"))
    expect(row.locator("td").last).to_have_text("1", timeout=5000)
    expect(watched.locator("#live-status")).to_contain_text("Updated at")
    assert watched.evaluate("window.loadedOnce") is True  # no reload
    assert StateVersion.objects.filter(agent=fleet).exists()
