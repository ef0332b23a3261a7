"""The time-range pickers of the fleet and Overhead pages in a real browser:
picking a range redraws the page over it and the words name it, the filters
are kept; at 1440 and 390 px, no horizontal overflow and no serious or
critical axe-core violation."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from learning.models import Snapshot
from qefleet.memory.fleet import register_demo_fleet
from qefleet.memory.models import Agent
from tests.browser.helpers import log_in, overflow, screenshot, serious_violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

WIDTHS = (1440, 390)


def fits_and_passes_axe(page, axe_source, name):
    """Problems of the page at both widths (a screenshot of each is saved)."""
    problems = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        if (extra := overflow(page)) > 0:
            problems.append(f"{name} {width}: {extra} px of horizontal overflow")
        problems += [f"{name} {width}: axe {violation}" for violation in serious_violations(page, axe_source)]
        screenshot(page, f"{name}-{width}")
    page.set_viewport_size({"width": 1440, "height": 900})
    return problems


@pytest.fixture
def fleet_falling_over_the_week(users):
    """The demo fleet; test-generator's score fell over the week and rose in the last day."""
    register_demo_fleet()
    agent, now = Agent.objects.get(agent_id="test-generator"), timezone.now()
    Snapshot.objects.bulk_create([
        Snapshot(agent=agent, first_task=1, last_task=10, tasks=10, success_rate=score, avg_execution_ms=100.0,
                 error_rate=0.0, score=score, created_at=now - timedelta(hours=hours))
        for hours, score in [(150, 0.9), (130, 0.85), (100, 0.7), (60, 0.5), (20, 0.4), (12, 0.5), (2, 0.6)]])


def trend_of(page, agent_id):
    row = page.locator("#fleet-agents tbody tr").filter(has=page.get_by_role("link", name=agent_id, exact=True))
    return row.locator("td.trend .badge").inner_text()


def test_the_fleet_pickers_range_sets_the_sparklines_and_the_trend(
        live_server, page_without_csp, fleet_falling_over_the_week, axe_source):
    page = page_without_csp
    log_in(page, live_server, "operator")
    expect(page.get_by_label("Time range of the sparklines and trends")).to_have_value("24h")
    assert "rising" in trend_of(page, "test-generator")

    page.get_by_label("Team").select_option("core-testing")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_load_state("networkidle")
    page.get_by_label("Time range of the sparklines and trends").select_option("7d")
    page.get_by_role("button", name="Show").click()
    page.wait_for_load_state("networkidle")
    assert "range=7d" in page.url and "team=core-testing" in page.url  # the filters are kept
    expect(page.get_by_label("Trend, last 7 days")).to_be_visible()
    expect(page.locator("#fleet-agents thead")).to_contain_text("Trend, last 7 days")
    assert "falling" in trend_of(page, "test-generator")

    page.get_by_label("Trend, last 7 days").select_option("falling")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_load_state("networkidle")
    assert page.locator("#fleet-agents tbody th[scope=row] a").all_inner_texts() == ["test-generator"]
    page.locator("#fleet-agents").get_by_role("link", name="test-generator", exact=True).click()  # same range
    page.wait_for_load_state("networkidle")
    expect(page.get_by_label("Time range of every chart")).to_have_value("7d")
    page.go_back()
    page.wait_for_load_state("networkidle")
    assert fits_and_passes_axe(page, axe_source, "fleet-range-7d") == []


def test_the_overhead_pickers_range_sets_the_table_and_the_chart(
        live_server, page_without_csp, users, overhead_buffer, axe_source, settings):
    settings.LEARNING_OVERHEAD_BUDGET_MS = 60_000  # a busy test machine is no reason to fail
    now = time.time()
    overhead_buffer.add([("recommendation", 2.0), ("report", 5.0)] * 3, now - 3 * 3600)  # in the day, not the hour
    overhead_buffer.add([("recommendation", 2.0), ("report", 5.0)], now)
    overhead_buffer.flush(now)
    page = page_without_csp
    log_in(page, live_server, "viewer", then="/ops/overhead/")
    expect(page.get_by_role("heading", name="Last 24 hours", exact=True)).to_be_visible()
    table = page.locator("#overhead-window table")
    expect(table.locator("tbody tr").first).to_contain_text("4")  # samples of the day

    page.get_by_label("Time range of the table and the chart").select_option("1h")
    page.get_by_role("button", name="Show").click()
    page.wait_for_load_state("networkidle")
    expect(page.get_by_role("heading", name="Last hour", exact=True)).to_be_visible()
    expect(table.locator("tbody tr").first.locator("td").first).to_have_text("1")
    chart = page.locator('[data-figure="overhead-chart"]')
    expect(chart.locator(".main-svg").first).to_be_visible()
    expect(page.get_by_text("Per minute (UTC)")).to_be_visible()
    assert fits_and_passes_axe(page, axe_source, "overhead-range-1h") == []
