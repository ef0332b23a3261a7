"""The improvement loop's pages in a real browser: an A/B test with its
interval chart, timeline and decision, aborted by an admin; the A/B tests
list filtered; pattern sharing with its graph and metrics over time."""

import pytest
from playwright.sync_api import expect

from learning.models import ABTestState
from qefleet.memory.fleet import register_demo_fleet
from qefleet.memory.models import Agent
from tests.browser.helpers import log_in, screenshot
from tests.dashboard.helpers import control_wins_test, inconclusive_test, running_test, shared_and_imported

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def fleet(users):
    register_demo_fleet()
    return {agent.agent_id: agent for agent in Agent.objects.all()}


def test_an_admin_reads_an_ab_test_and_aborts_it(live_server, watched, fleet):
    test = running_test(fleet["test-generator"])
    inconclusive_test(fleet["coverage-analyzer"])
    log_in(watched, live_server, "admin", then="/ops/abtests/")
    watched.get_by_label("State").select_option("running")
    watched.get_by_role("button", name="Filter").click()
    watched.wait_for_load_state("networkidle")
    expect(watched.locator("#abtest-list tbody tr")).to_have_count(1)
    screenshot(watched, "abtests")
    watched.get_by_role("link", name=f"#{test.pk}").click()
    watched.wait_for_load_state("networkidle")
    chart = watched.locator('[data-figure="interval-chart"]')
    expect(chart.locator(".main-svg").first).to_be_visible()
    expect(chart).to_contain_text("horizon: 200 per arm")
    expect(chart).to_contain_text("95 % interval")
    expect(watched.locator("#abtest-decision")).to_contain_text("too early to call: after 120 of 200 tasks per arm")
    expect(watched.locator("#abtest-decision")).to_contain_text("sample ratio ok")
    expect(watched.locator("#abtest-timeline tbody tr")).to_have_count(2)
    expect(watched.locator("#abtest-timeline")).to_contain_text("horizon")
    screenshot(watched, "abtest")

    watched.get_by_label("Reason for aborting (optional)").fill("the wrong task type")
    watched.get_by_role("button", name="Abort this test").click()
    watched.wait_for_load_state("networkidle")
    expect(watched.get_by_role("status")).to_contain_text(f"Aborted A/B test #{test.pk}")
    expect(watched.locator("#abtest-timeline tbody tr")).to_have_count(3)
    expect(watched.locator("#abtest-decision")).to_contain_text("aborted by admin: the wrong task type")
    expect(watched.get_by_role("button", name="Abort this test")).to_have_count(0)
    test.refresh_from_db()
    assert test.state == ABTestState.ABORTED


def test_badge_sentence_and_table_agree_when_the_control_wins(live_server, watched, fleet):
    test = control_wins_test(fleet["security-scanner"])
    log_in(watched, live_server, "viewer", then="/ops/abtests/")
    row = watched.locator("#abtest-list tbody tr", has_text=f"#{test.pk}")
    expect(row.locator(".badge")).to_have_text("◆ control wins")
    expect(row).to_contain_text("control wins: treatment -30.0 points")
    row.get_by_role("link", name=f"#{test.pk}").click()
    watched.wait_for_load_state("networkidle")
    decision = watched.locator("#abtest-decision .decision")
    expect(decision.locator(".badge")).to_have_text("◆ control wins")
    expect(decision).to_contain_text("control wins: treatment -30.0 points")
    expect(decision).to_contain_text("past the horizon of 100 (reached between two looks)")
    expect(decision).not_to_contain_text("winner")
    expect(watched.locator("#abtest-arms tfoot")).to_contain_text("-30.0 points")
    checks = watched.locator("#abtest-decision .checks")
    expect(checks).to_contain_text("time guardrail: not needed")
    expect(checks).not_to_contain_text("violated")
    screenshot(watched, "abtest-control-wins")


def test_the_patterns_page_draws_who_imported_from_whom(live_server, watched, fleet):
    shared_and_imported(fleet["test-generator"], ("unit-tests", "integration-tests"))
    shared_and_imported(fleet["flaky-test-hunter"], ("e2e-tests",))
    log_in(watched, live_server, "viewer", then="/ops/patterns/")
    graph = watched.locator('[data-figure="import-graph"]')
    expect(graph.locator(".main-svg").first).to_be_visible()
    expect(graph).to_contain_text("flaky-test-hunter")
    expect(watched.locator('[data-figure="sharing-history"] .main-svg').first).to_be_visible()
    expect(watched.locator("#fleet-metrics")).to_contain_text("Patterns shared")
    expect(watched.locator("#shared-patterns tbody tr")).to_have_count(3)
    screenshot(watched, "patterns")
