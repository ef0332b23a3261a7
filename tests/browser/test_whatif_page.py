"""The What-if page in a real browser: an operator asks what always using
adaptive-retry for test-executor's integration tests would have scored, and
gets the estimate with its interval; a question missing an input names it."""

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import log_in, screenshot
from tests.conftest import make_agent
from tests.learning.offline_helpers import log_tasks

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_an_operator_asks_what_if_and_gets_an_interval(live_server, watched, users):
    executor = make_agent("test-executor", "core-testing", "qe")
    log_tasks(executor, 1000)
    log_in(watched, live_server, "operator", then="/ops/whatif/")
    watched.get_by_label("Agent", exact=True).select_option("test-executor")
    watched.get_by_label("Task type (fixed)").select_option("integration-tests")
    watched.get_by_label("Strategy (fixed)").select_option("adaptive-retry")
    watched.get_by_role("button", name="Estimate").click()
    watched.wait_for_load_state("networkidle")
    answer = watched.get_by_test_id("whatif-answer")
    expect(answer).to_contain_text("always adaptive-retry for integration-tests")
    expect(answer.locator("tbody tr").first).to_contain_text("Success rate")
    expect(answer).to_contain_text("Effective sample size")
    expect(watched.get_by_test_id("whatif-outlook")).to_contain_text("tasks per arm")
    screenshot(watched, "whatif")

    watched.goto(f"{live_server.url}/ops/whatif/?policy=current&agent=test-executor")
    expect(watched.get_by_test_id("whatif-error")).to_contain_text("exploration_rate")
