"""An A/B test's page at /ops/abtests/<id>/."""

import json
import math

import numpy as np
import pytest
from django.test import Client
from django.utils.html import escape

from dashboard import charts
from dashboard.pages import abtests, common
from learning.models import ABLook, ABTest, ArmRole
from tests.dashboard.helpers import (
    applied_test,
    control_wins_test,
    inconclusive_test,
    look_each_slot,
    running_test,
)
from tests.learning.abtest_helpers import set_arm, set_arms, start_test

pytestmark = pytest.mark.django_db


def test_it_requires_a_login(alice):
    test = running_test(alice)
    response = Client().get(f"/ops/abtests/{test.pk}/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_it_answers_404_for_an_unknown_test(viewer):
    assert viewer.get("/ops/abtests/999/").status_code == 404


def test_it_shows_the_arms_the_difference_and_the_decision(viewer, alice):
    test = running_test(alice)
    set_arm(test, ArmRole.TREATMENT, 120, 97, mean_ms=2500, error_tasks=12)
    response = viewer.get(f"/ops/abtests/{test.pk}/")
    page = response.content.decode()
    assert "<h1>A/B test #%d: unit-tests: parallel-execution vs sequential-execution</h1>" % test.pk in page
    assert "▶</span> running" in page and "too early to call: after 120 of 200 tasks per arm at the last look" in page
    arms = page[page.index('id="abtest-arms"'):page.index('id="interval-heading"')]
    for cell in ("sequential-execution", "parallel-execution", "75.0 %", "80.8 %", "2000 ms", "2500 ms", "10.0 %",
                 "+5.8 points", "+500 ms", "+10.0 points"):
        assert f"{cell}</td>" in arms, cell
    assert "always-valid, before the horizon" in arms
    interval = test.verdict["interval"]
    assert f"{interval[0] * 100:+.1f} points to {interval[1] * 100:+.1f} points" in arms


def test_it_badges_the_sample_ratio_and_the_guardrails_in_words(viewer, alice):
    test = running_test(alice)
    set_arms(test, (300, 225), (100, 80, 2600, 20))
    page = viewer.get(f"/ops/abtests/{test.pk}/").content.decode()
    assert "✗</span> sample ratio mismatch" in page and "for 300 and 100 tasks" in page
    assert "✗</span> time guardrail violated" in page and "mean time +30.0 %" in page
    assert "✗</span> error guardrail violated" in page and "error rate +20.0 points" in page
    set_arms(test, (100, 75), (100, 80))
    page = viewer.get(f"/ops/abtests/{test.pk}/").content.decode()
    assert "✓</span> sample ratio ok" in page and "✓</span> time guardrail held" in page
    assert "✓</span> error guardrail held" in page


def test_a_guardrails_change_that_rounds_to_zero_reads_plus_zero(alice):
    test = running_test(alice)
    set_arms(test, (2500, 1875, 2000, 2), (2500, 1900, 1999.99, 1))  # time -0.0005 %, errors -0.04 points
    details = {check.kind: check.detail for check in abtests.abtest_checks(ABTest.objects.get(pk=test.pk))}
    assert "mean time +0.0 % against" in details["time-guardrail"]
    assert "error rate +0.0 points against" in details["errors-guardrail"]


def test_the_interval_charts_hover_writes_a_bound_that_rounds_to_zero_as_plus_zero():
    looks = abtests.LookSeries(per_arm=np.array([40.0]), low=np.array([-0.04]), high=np.array([20.0]),
                               estimate=np.array([np.nan]))
    upper, lower, estimate = json.loads(charts.interval_figure(looks, 200))["data"]
    assert (upper["customdata"], lower["customdata"], estimate["customdata"]) == (["+20.0"], ["+0.0"], [None])
    assert lower["hovertemplate"] == "%{customdata} points<extra>lower</extra>"


def test_it_says_control_wins_in_the_badge_the_sentence_and_the_table(viewer, alice):
    test = control_wins_test(alice)
    page = viewer.get(f"/ops/abtests/{test.pk}/").content.decode()
    decision = page[page.index('id="abtest-decision"'):page.index('id="arms-heading"')]
    assert "◆</span> control wins</span>" in decision and "control wins: treatment -30.0 points" in decision
    assert "winner" not in decision
    arms = page[page.index('id="abtest-arms"'):page.index('id="interval-heading"')]
    assert "-30.0 points</td>" in arms


def test_guardrails_are_not_judged_for_a_treatment_that_did_not_win(viewer, alice):
    for test in (control_wins_test(alice), inconclusive_test(alice, "integration-tests")):
        page = viewer.get(f"/ops/abtests/{test.pk}/").content.decode()
        checks = page[page.index('class="checks"'):page.index('id="arms-heading"')]
        assert "violated" not in checks and "held" not in checks
        assert "time guardrail: not needed" in checks and "error guardrail: not needed" in checks
        assert "the treatment did not win, so nothing was applied" in checks


def test_it_says_why_a_decision_counted_past_the_horizon(viewer, alice):
    test = control_wins_test(alice)
    assert "at n = 110, past the horizon of 100 (reached between two looks)" in test.decision
    assert "n = 110 of 100" not in viewer.get(f"/ops/abtests/{test.pk}/").content.decode()


def test_it_charts_the_interval_over_time_against_the_horizon_and_zero(viewer, alice):
    test = running_test(alice)
    response = viewer.get(f"/ops/abtests/{test.pk}/")
    figure = json.loads(response.context["interval_figure"])
    upper, lower, estimate = figure["data"]
    assert upper["x"] == lower["x"] == estimate["x"] == [40, 80, 120]
    looks = list(ABLook.objects.filter(test=test).order_by("at"))
    assert lower["y"] == pytest.approx([look.low * 100 for look in looks])
    assert upper["y"] == pytest.approx([look.high * 100 for look in looks])
    assert estimate["y"] == pytest.approx([(look.low + look.high) * 50 for look in looks])
    assert lower["fill"] == "tonexty" and lower["name"] == "95 % interval"
    labels = [annotation["text"] for annotation in figure["layout"]["annotations"]]
    assert labels == ["0: no difference", "horizon: 200 per arm"]
    assert figure["layout"]["shapes"][1]["x0"] == 200
    assert 'id="interval-chart"' in response.content.decode()


def test_looks_at_the_same_count_are_one_point_and_long_series_are_averaged(alice, monkeypatch):
    test = look_each_slot(start_test(alice, horizon=400), [((40, 30), (40, 31)), ((40, 30), (40, 31)),
                                                          ((90, 60), (90, 64)), ((95, 60), (95, 64))])
    assert list(abtests.look_series(test).per_arm) == [40, 90, 95]
    monkeypatch.setattr(common, "MAX_POINTS", 2)
    series = abtests.look_series(test)  # buckets of 48 tasks: 40 | 90, 95
    assert list(series.per_arm) == [40, 95]
    looks = list(ABLook.objects.filter(test=test, n_control__gt=40))
    assert series.low[1] == pytest.approx(sum(look.low for look in looks) * 50)


def test_an_interval_clipped_at_100_points_has_no_estimate(alice):
    test = look_each_slot(start_test(alice, horizon=400), [((1, 1), (1, 0)), ((60, 30), (60, 33))])
    estimate = abtests.look_series(test).estimate
    assert math.isnan(estimate[0]) and not math.isnan(estimate[1])


def test_it_shows_the_lifecycle_and_the_plain_words_decision(viewer, alice):
    test = inconclusive_test(alice)
    page = viewer.get(f"/ops/abtests/{test.pk}/").content.decode()
    assert escape(test.decision) in page
    assert test.decision.startswith("inconclusive: the interval") and "at n = 100 of 100" in test.decision
    timeline = page[page.index('id="abtest-timeline"'):]
    rows = timeline.count("<tr>") - 1  # the header
    assert rows == test.transitions.count() == 3
    for step in test.transitions.all():
        assert escape(step.reason) in timeline
    assert "fixed, at the horizon" in page
    assert 'id="abtest-applied"' not in page


def test_an_applied_test_shows_its_monitoring_and_the_version_before(viewer, alice):
    test = applied_test(alice)
    ABTest.objects.filter(pk=test.pk).update(verdict={**test.verdict, "monitoring": {
        "state": "warning", "change_pct": -3.2, "checks": 0, "at": "2026-01-01T00:00:00+00:00"}})
    page = viewer.get(f"/ops/abtests/{test.pk}/").content.decode()
    applied = page[page.index('id="abtest-applied"'):page.index('id="timeline-heading"')]
    assert "the learned policy" in applied and test.monitor_until.strftime("%Y-%m-%d %H:%M") in applied
    assert "!</span> warning" in applied and "-3.2 % against the winning arm" in applied
    version = test.version_before
    assert f'href="/ops/agents/alice/?preview={version.number}#versions">{version.label}</a>' in applied
    assert "applied, monitoring" in page


def test_only_admins_get_the_abort_button_and_only_for_open_tests(viewer, operator, admin, alice):
    running, decided = running_test(alice), inconclusive_test(alice, "integration-tests")
    button = f'action="/ops/abtests/{running.pk}/abort"'
    assert button in admin.get(f"/ops/abtests/{running.pk}/").content.decode()
    assert button not in operator.get(f"/ops/abtests/{running.pk}/").content.decode()
    assert button not in viewer.get(f"/ops/abtests/{running.pk}/").content.decode()
    assert "/abort" not in admin.get(f"/ops/abtests/{decided.pk}/").content.decode()
    assert '<label for="abort-reason">' in admin.get(f"/ops/abtests/{running.pk}/").content.decode()


def test_it_keeps_to_the_query_budget(admin, alice, django_assert_max_num_queries):
    test = applied_test(alice)
    with django_assert_max_num_queries(25):
        assert admin.get(f"/ops/abtests/{test.pk}/").status_code == 200
