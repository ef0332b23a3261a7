"""Every dashboard page over a simulated month, at 1440 px (a desktop) and
390 px (a phone): no horizontal overflow of the page, no serious or critical
accessibility violation that axe-core (run inside the page) finds, and a
screenshot of each under var/screenshots/ to look at.

One seeded month and one login serve every page (the data setup is the
slow part); the problems of all pages are collected and reported together."""

import io

import pytest
from django.core.management import call_command

from learning.harness.history import constants as history_constants
from learning.models import ABTest, Rollback
from qefleet.memory.models import Agent
from tests.browser.helpers import log_in, overflow, screenshot, serious_violations, visit
from tests.learning.helpers import run_in_shadow

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

WIDTHS = (1440, 390)
SHADOW_AGENT = "test-generator"  # one of the demo agents, in shadow for its last 120 tasks


@pytest.fixture
def month(users, monkeypatch):
    """30 days of history for the 17 demo agents, made lighter (as test_report's)."""
    monkeypatch.setattr(history_constants, "BASE_TASKS_PER_HOUR", 4)
    monkeypatch.setattr(history_constants, "EXPERIENCES", 300)
    monkeypatch.setattr(history_constants, "CYCLE_SECONDS", 86400)
    call_command("seed_history", "--days", 30, "--events", 500, "--samples", 100, stdout=io.StringIO())
    run_in_shadow(Agent.objects.get(agent_id=SHADOW_AGENT), 120)
    return Rollback.objects.select_related("agent").earliest("created_at").agent


def pages(agent_id, abtest_id):
    """(screenshot name, path, HTTP status) of every page an operator opens."""
    return [
        ("fleet", "/ops/", 200),
        ("fleet-filtered", "/ops/?state=healthy&sort=-change", 200),
        ("fleet-shadow", "/ops/?mode=shadow", 200),
        ("agent", f"/ops/agents/{agent_id}/", 200),
        ("agent-shadow", f"/ops/agents/{SHADOW_AGENT}/", 200),
        ("alerts", "/ops/alerts/", 200),
        ("timeline", "/ops/timeline/", 200),
        ("compare", f"/ops/compare/?agent={agent_id}&agent=test-generator&agent=quality-gate", 200),
        ("abtests", "/ops/abtests/", 200),
        ("abtest", f"/ops/abtests/{abtest_id}/", 200),
        ("patterns", "/ops/patterns/", 200),
        ("overhead", "/ops/overhead/", 200),
        ("report-fleet", "/ops/report/", 200),
        ("report-agent", f"/ops/agents/{agent_id}/report/", 200),
        ("rollback-confirmation", f"/ops/agents/{agent_id}/rollback/confirm?version=1", 200),
        ("whatif", f"/ops/whatif/?agent={agent_id}", 200),
        ("statistics", "/ops/statistics/", 200),
        ("statistics-agent", f"/ops/statistics/{agent_id}/", 200),
        ("not-found", "/ops/agents/nobody/", 404),
        ("bad-request", "/ops/report/?days=forever", 400),
    ]


def test_every_page_fits_both_widths_and_passes_axe(live_server, page_without_csp, month, axe_source):
    page = page_without_csp
    abtest = ABTest.objects.order_by("pk").first()
    log_in(page, live_server, "admin")
    problems = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        for name, path, status in pages(month.agent_id, abtest.pk):
            response = page.goto(f"{live_server.url}{path}")
            page.wait_for_load_state("networkidle")
            if response.status != status:
                problems.append(f"{name} {width}: HTTP {response.status}, expected {status}")
            if (extra := overflow(page)) > 0:
                problems.append(f"{name} {width}: {extra} px of horizontal overflow")
            problems += [f"{name} {width}: axe {violation}" for violation in serious_violations(page, axe_source)]
            screenshot(page, f"{name}-{width}")
    visit(page, f"{live_server.url}/ops/")
    assert not problems, "\n".join(problems)
