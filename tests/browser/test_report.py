"""The improvement report in a real browser over a simulated month
(seed_history, made lighter): the
fleet's and an agent's charts drawn, the downloads parsed, the printed page
without navigation or buttons."""

import csv
import io
import json

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from learning.harness.history import constants as history_constants
from learning.models import Rollback
from learning.report import DECISION_COLUMNS
from tests.browser.helpers import log_in, screenshot, visit

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def month(users, monkeypatch):
    """30 days of history for the 17 demo agents (about 10 s: fewer tasks an
    hour, 300 decisions kept per agent, a day of improvement cycles, which
    the report does not read); returns an agent rolled back in the period."""
    monkeypatch.setattr(history_constants, "BASE_TASKS_PER_HOUR", 4)
    monkeypatch.setattr(history_constants, "EXPERIENCES", 300)
    monkeypatch.setattr(history_constants, "CYCLE_SECONDS", 86400)
    call_command("seed_history", "--days", 30, "--events", 500, "--samples", 100, stdout=io.StringIO())
    return Rollback.objects.select_related("agent").earliest("created_at").agent


def downloaded(page, link_name):
    with page.expect_download() as download:
        page.get_by_role("link", name=link_name).click()
    with open(download.value.path(), encoding="utf-8") as file:
        return download.value.suggested_filename, file.read()


def test_the_report_draws_a_simulated_month_and_its_downloads_parse(live_server, watched, month):
    log_in(watched, live_server, "viewer", then="/ops/report/")
    expect(watched.get_by_role("heading", name="Improvement report: the fleet (17 agents)")).to_be_visible()
    for chart in ("report-score", "report-components", "report-change"):
        expect(watched.locator(f'[data-figure="{chart}"] .main-svg').first).to_be_visible()
    expect(watched.locator('[data-figure="report-score"]')).to_contain_text("target +20 %")
    expect(watched.locator("#report-agents tbody tr")).to_have_count(17)
    expect(watched.locator("#report-checkpoints thead th")).to_have_count(6)  # the figure, days 0, 7, 14, 21, 30
    screenshot(watched, "report-fleet")

    name, text = downloaded(watched, "Download JSON")
    data = json.loads(text)
    assert name.startswith("qefleet-report-fleet-") and len(data["agents"]) == 17
    improvement = data["fleet"]["improvement"]
    expect(watched.locator("#report-target")).to_contain_text(f"{improvement * 100:+.1f} %")
    name, text = downloaded(watched, "Download CSV")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert name.endswith(".csv") and {row["agent"] for row in rows} >= {"fleet", month.agent_id}
    assert float(next(row["value"] for row in rows if (row["agent"], row["field"]) == ("fleet", "improvement"))) \
        == improvement

    visit(watched, f"{live_server.url}/ops/agents/{month.agent_id}/report/")
    for chart in ("report-score", "report-components", "report-learning"):
        expect(watched.locator(f'[data-figure="{chart}"] .main-svg').first).to_be_visible()
    expect(watched.locator('[data-figure="report-score"]')).to_contain_text("rollback #")
    expect(watched.locator("#report-rollbacks tbody tr").first).to_be_visible()
    expect(watched.locator("#attribution-method")).to_contain_text("an estimate")
    screenshot(watched, "report-agent")
    name, text = downloaded(watched, "Decisions and executions (CSV)")
    decisions = list(csv.DictReader(io.StringIO(text)))
    assert name.startswith(f"qefleet-decisions-{month.agent_id}-") and list(decisions[0]) == list(DECISION_COLUMNS)
    assert len(decisions) == 300 and all(0 < float(row["propensity"]) <= 1 for row in decisions)

    watched.emulate_media(media="print")
    expect(watched.get_by_role("navigation", name="Main")).to_be_hidden()
    expect(watched.get_by_role("button", name="Print")).to_be_hidden()
    expect(watched.locator("#report-checkpoints")).to_be_visible()
