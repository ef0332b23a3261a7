"""The Statistics health page in a real browser: an operator drills an agent
and reads its measured rates, bands and what to change, wide and narrow."""

import pytest
from playwright.sync_api import expect

from learning import drills
from learning.models import DrillTrigger
from tests.browser.helpers import log_in, screenshot
from tests.conftest import make_agent
from tests.learning.drill_helpers import logged_history

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_an_operator_drills_an_agent_and_reads_its_health(live_server, watched, users):
    steady, slow = make_agent("steady-agent", "core", "qe"), make_agent("slow-agent", "core", "qe")
    logged_history(steady, tasks=300, success_rate=1.0)
    logged_history(slow, tasks=200, tasks_per_hour=0.5, seed=1)
    drills.drill(slow, DrillTrigger.COMMAND)
    log_in(watched, live_server, "operator", then="/ops/statistics/")
    expect(watched.get_by_role("link", name="Statistics")).to_have_attribute("aria-current", "page")
    expect(watched.get_by_text("Not drilled yet: steady-agent.")).to_be_visible()
    watched.get_by_role("row", name="slow-agent").get_by_role("link", name="slow-agent").click()
    expect(watched.get_by_role("heading", name="slow-agent")).to_be_visible()
    expect(watched.locator(".findings")).to_contain_text("Too little traffic for the horizon")
    watched.set_viewport_size({"width": 1440, "height": 900})
    screenshot(watched, "statistics-agent-1440")
    watched.goto(f"{live_server.url}/ops/statistics/")
    expect(watched.get_by_role("heading", name="The fleet")).to_be_visible()
    watched.get_by_role("row", name="slow-agent").get_by_role("button", name="Drill now").click()
    expect(watched.get_by_text("Drilled slow-agent in")).to_be_visible()
    screenshot(watched, "statistics-1440")
    watched.set_viewport_size({"width": 390, "height": 844})
    screenshot(watched, "statistics-390")
