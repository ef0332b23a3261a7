"""The Overhead page in a real browser: the figures of tasks the API just
learned from, and the chart of the two requests against the budget."""

import time

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import log_in, screenshot
from tests.conftest import make_agent
from tests.learning.helpers import run_task

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_the_overhead_page_shows_measured_figures_and_draws_the_chart(
        live_server, watched, users, overhead_buffer, settings):
    settings.LEARNING_OVERHEAD_BUDGET_MS = 60_000  # a busy test machine is no reason to fail
    agent = make_agent("overhead-probe", "core", "qe")
    for _ in range(5):
        run_task(agent)
    overhead_buffer.flush(time.time())
    log_in(watched, live_server, "viewer", then="/ops/overhead/")
    table = watched.locator("#overhead-window table")
    expect(table).to_contain_text("execution report request (whole)")
    expect(table.locator("tbody tr")).to_have_count(12)
    expect(table).to_contain_text("within budget")
    chart = watched.locator('[data-figure="overhead-chart"]')
    expect(chart.locator(".main-svg").first).to_be_visible()
    expect(chart).to_contain_text("budget 60000 ms")
    screenshot(watched, "overhead")
