"""The on-call flows in a real browser (Debian's chromium): a card of
grouped alerts acknowledged at once, a silence rule that silences, a
rollback through its confirmation with a reason, its undo, and pausing and
resuming learning. Screenshots of the alerts page and the rollback
confirmation at 1440 and 390 px go to var/screenshots/; neither page may
scroll sideways."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from learning import alerts, versions
from learning.models import Alert, Rollback, SilenceRule, VersionReason
from qefleet.memory.fleet import issue_token, register_demo_fleet
from qefleet.memory.models import Agent
from tests.browser.helpers import log_in, screenshot, visit
from tests.conftest import AgentClient
from tests.learning.helpers import learn_then_worsen, profile

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

WIDTHS = (1440, 390)
# The elements of the main content that stick out of the page (what makes it scroll
# sideways); the shared navigation bar is the fleet pages' work (branch i18a).
WIDER_THAN_THE_PAGE = """Array.from(document.querySelectorAll("main *"))
  .filter((element) => !element.closest(".table-wrap"))  // a wide table scrolls in its own box
  .filter((element) => element.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
  .map((element) => element.tagName + "#" + element.id + "." + element.className).slice(0, 8)"""


@pytest.fixture
def storm(users):
    """Three validation alerts of two agents (one card), one rollback alert, two info ones (the digest)."""
    register_demo_fleet()
    agents = {agent.agent_id: agent for agent in Agent.objects.filter(agent_id__in=["quality-gate", "test-generator"])}
    for agent_id, task_type in (
        ("quality-gate", "unit-tests"),
        ("quality-gate", "e2e-tests"),
        ("test-generator", "unit-tests"),
    ):
        alerts.raise_alert(
            "failure:needs_operator",
            "warning",
            f"{agent_id}: validation failures in {task_type} rose from 5% to 30% of tasks",
            {},
            agents[agent_id],
            task_type=task_type,
            dedup_key=f"failure:{agent_id}:{task_type}",
        )
    alerts.raise_alert(
        "safeguard:rollback",
        "high",
        "test-generator rolled back automatically to v3",
        {},
        agents["test-generator"],
        dedup_key="rollback:1",
    )
    for agent_id, agent in agents.items():
        alerts.raise_alert(
            "failure:needs_operator",
            "info",
            f"{agent_id}: steady parsing failures",
            {},
            agent,
            task_type="api-tests",
            dedup_key=f"steady:{agent_id}",
        )


def at_each_width(page, name):
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        screenshot(page, f"{name}-{width}")
        wider = page.evaluate(WIDER_THAN_THE_PAGE)
        assert wider == [], (width, wider)
    page.set_viewport_size({"width": 1440, "height": 900})


def test_a_card_groups_one_kind_and_is_acknowledged_at_once(live_server, watched, storm):
    log_in(watched, live_server, "operator", then="/ops/alerts/")
    cards = watched.locator("#alert-list ul.alerts > li.alert-group").filter(has=watched.locator(":visible"))
    expect(watched.locator("#inbox-safeguardrollback")).to_be_visible()
    first, second = watched.locator("li[id^=inbox-]").nth(0), watched.locator("li[id^=inbox-]").nth(1)
    expect(first).to_contain_text("Automatic rollbacks")  # high before warning
    expect(second).to_contain_text("Failures no strategy change fixes")
    expect(second).to_contain_text("3 alerts · 2 agents · 2 task types")
    expect(watched.locator("#digest")).to_contain_text("Digest: 2 for information")
    assert cards.count() >= 2
    at_each_width(watched, "alerts")
    second.get_by_label("Note").fill("fixtures rebuilt at 14:00")
    second.get_by_role("button", name="Acknowledge checked").click()
    watched.wait_for_load_state("networkidle")
    expect(watched.get_by_role("status")).to_contain_text("3 alerts acknowledged.")
    expect(watched.locator("#inbox-failureneeds_operator")).to_contain_text("acknowledged by operator")
    assert set(Alert.objects.filter(severity="warning").values_list("state", flat=True)) == {"acknowledged"}


def test_a_card_is_silenced_until_the_utc_time_the_form_sends(live_server, watched, storm):
    log_in(watched, live_server, "operator", then="/ops/alerts/")
    card = watched.locator("#inbox-safeguardrollback")
    until = (timezone.now() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    card.get_by_label("Silence until (UTC)").fill(until)
    card.get_by_role("button", name="Silence checked").click()
    watched.wait_for_load_state("networkidle")
    expect(watched.get_by_role("status")).to_contain_text("1 alert silenced.")
    expect(watched.locator("#inbox-safeguardrollback")).to_have_count(0)
    expect(watched.locator("#silenced")).to_contain_text("Silenced: 1")
    alert = Alert.objects.get(kind="safeguard:rollback")
    assert alert.silenced_until == datetime.fromisoformat(until).replace(tzinfo=UTC)


def test_a_silence_rule_silences_what_it_matches(live_server, watched, storm):
    log_in(watched, live_server, "operator", then="/ops/alerts/")
    watched.locator("#inbox-failureneeds_operator").get_by_role("link", name="silence this kind…").click()
    watched.wait_for_load_state("networkidle")
    form = watched.get_by_role("form", name="New silence rule")
    expect(form.get_by_label("Kind")).to_have_value("failure:needs_operator")
    form.get_by_label("Task type").fill("unit-tests")
    form.get_by_label("Why").fill("unit fixtures are being rebuilt")
    form.get_by_role("button", name="Add silence rule").click()
    watched.wait_for_load_state("networkidle")
    expect(watched.get_by_role("status")).to_contain_text("it quieted 2 open alerts")
    rule = SilenceRule.objects.get()
    expect(watched.locator(f"#silence-rule-{rule.pk}")).to_contain_text("unit fixtures are being rebuilt")
    expect(watched.locator("#inbox-failureneeds_operator")).to_contain_text("1 alert")  # e2e-tests still heard
    expect(watched.locator("#silenced")).to_contain_text("Silenced: 2")
    screenshot(watched, "alerts-silence-rule")
    watched.locator(f"#silence-rule-{rule.pk}").get_by_role("button", name="End now").click()
    watched.wait_for_load_state("networkidle")
    expect(watched.locator("#inbox-failureneeds_operator")).to_contain_text("3 alerts")


def test_rollback_with_confirmation_and_reason_then_undo(live_server, watched, users):
    register_demo_fleet()
    agent = Agent.objects.get(agent_id="chaos-engineer")
    agent.client = AgentClient(issue_token(agent)[1])
    good = learn_then_worsen(agent)
    live = versions.capture(agent, VersionReason.CYCLE)  # the slot's capture of the worse state
    log_in(watched, live_server, "operator", then="/ops/agents/chaos-engineer/")
    expect(watched.get_by_role("link", name=f"Roll back to {live.label}…")).to_have_count(0)
    watched.get_by_role("link", name=f"Roll back to {good.label}…").click()
    watched.wait_for_load_state("networkidle")
    expect(watched.get_by_role("heading", name=f"Roll chaos-engineer back to {good.label}?")).to_be_visible()
    expect(watched.locator("#rollback-preview")).to_contain_text(f"Rolling back to {good.label}")
    at_each_width(watched, "rollback-confirmation")
    watched.get_by_role("button", name=f"Roll back to {good.label}").click()  # no reason: the browser refuses
    assert not Rollback.objects.exists()
    watched.get_by_label("Why? (required; kept in the audit trail)").fill("score slipping since the deploy")
    watched.get_by_role("button", name=f"Roll back to {good.label}").click()
    watched.wait_for_load_state("networkidle")
    expect(watched.get_by_role("status")).to_contain_text(f"Rolled chaos-engineer back to {good.label}")
    panel = watched.locator("#after-rollback")
    expect(panel).to_contain_text("“score slipping since the deploy”")
    expect(panel).to_contain_text("It stays available until the agent has reported task")
    expect(watched.locator("#agent-activity")).to_contain_text("operator rolled back chaos-engineer from")
    screenshot(watched, "agent-after-rollback")
    rollback = Rollback.objects.get()
    panel.get_by_role("button", name=f"Undo rollback #{rollback.pk}").click()
    watched.wait_for_load_state("networkidle")
    expect(watched.get_by_role("status")).to_contain_text(f"Undid rollback #{rollback.pk} of chaos-engineer")
    expect(panel).to_contain_text("After the undo")
    expect(panel.get_by_role("button", name="Undo rollback")).to_have_count(0)  # no undo of the undo
    expect(watched.locator("#agent-activity")).to_contain_text(f"operator undid a rollback of chaos-engineer (rollback #{rollback.pk};")
    screenshot(watched, "agent-after-undo")


def test_an_operator_pauses_and_resumes_learning(live_server, watched, users):
    register_demo_fleet()
    agent = Agent.objects.get(agent_id="flaky-test-hunter")
    agent.client = AgentClient(issue_token(agent)[1])
    learn_then_worsen(agent)
    log_in(watched, live_server, "operator", then="/ops/agents/flaky-test-hunter/")
    control = watched.locator(".learning-control")
    expect(control).to_contain_text("Learning on")
    control.get_by_label("Reason for pausing").fill("staging database is down")
    control.get_by_role("button", name="Pause learning").click()
    watched.wait_for_load_state("networkidle")
    expect(watched.get_by_role("status")).to_contain_text("Learning of flaky-test-hunter is paused")
    expect(control).to_contain_text("Turned off by operator")
    assert profile(agent).enabled is False
    screenshot(watched, "agent-paused")
    control.get_by_role("button", name="Resume learning").click()
    watched.wait_for_load_state("networkidle")
    expect(watched.get_by_role("status")).to_contain_text("Learning of flaky-test-hunter is on again")
    expect(control).to_contain_text("Learning on")
    assert profile(agent).enabled is True
    visit(watched, f"{live_server.url}/ops/agents/flaky-test-hunter/")
