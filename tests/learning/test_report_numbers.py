"""The improvement report's numbers for a constructed 30-day history: the
checkpoints' scores and components, improvement and projection, the learned
state at each checkpoint, attribution, tests, mitigations and rollbacks."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from learning import report
from learning.core import report_math, scoring
from tests.conftest import make_agent
from tests.learning.report_helpers import APPLIED_DAY, BASELINE, STEP, constructed_history, success_on

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fixed_now(time_machine):
    """The clock stands still at noon yesterday: the history and the report
    share one `now`, and the projected date (about 16 h later in the day than
    `now`) lies far from midnight, so its day is the expected one."""
    noon = (timezone.now() - timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)
    time_machine.move_to(noon, tick=False)


@pytest.fixture
def built():
    now = timezone.now()
    agent = make_agent("alice", "core", "qe")
    period = constructed_history(agent, now)
    return period, report.build(period, now, agent).agents[0]


def score_on(day):
    return scoring.composite_score(success_on(day), 0.58, 0.15, 0.70, 0.50)


def test_it_scores_the_checkpoints_from_the_days_snapshots(built):
    _, agent = built
    assert [point.label for point in agent.checkpoints] == ["day 0", "day 7", "day 14", "day 21", "day 30"]
    day_0 = agent.checkpoints[0]
    assert day_0.score == pytest.approx(0.6935)  # the golden composite score (docs/ARCHITECTURE.md)
    assert (day_0.tasks, day_0.success_rate, day_0.avg_ms, day_0.time_score, day_0.error_rate, day_0.satisfaction,
            day_0.efficiency) == pytest.approx((20, 0.75, 12_600, 0.58, 0.15, 0.70, 0.50))
    # Day k reads the day that ends k days after the start: day index k - 1.
    for point, day in zip(agent.checkpoints[1:], (6, 13, 20, 29)):
        assert point.score == pytest.approx(score_on(day))
        assert point.success_rate == pytest.approx(success_on(day))
        assert point.change == pytest.approx(score_on(day) / BASELINE - 1)
        assert point.directions == {"score": "up, better", "success_rate": "up, better", "avg_ms": "flat, same",
                                    "error_rate": "flat, same", "satisfaction": "flat, same",
                                    "efficiency": "flat, same"}
    assert len(agent.daily) == 30 and agent.daily[29].score == pytest.approx(score_on(29))


def test_it_measures_the_improvement_and_projects_the_target(built):
    period, agent = built
    assert agent.baseline == BASELINE
    assert agent.improvement == pytest.approx(score_on(29) / BASELINE - 1)
    assert not agent.achieved
    # The daily change grows 0.3 x STEP / BASELINE a day from 0 at day 0's midpoint.
    slope = 0.3 * STEP / BASELINE
    assert agent.projection["slope_per_day"] == pytest.approx(slope)
    expected = period.start + timedelta(days=0.5 + 0.2 / slope)
    assert abs(agent.projection["date"] - expected) < timedelta(minutes=1)
    assert agent.projection["words"] == f"{expected:%Y-%m-%d} at this trend"


def test_it_reads_the_learned_state_from_versions_and_the_live_state(built):
    _, agent = built
    day_0, day_7, *_, day_30 = agent.checkpoints
    assert (day_0.patterns, day_0.q_entries, day_0.state_from) == (None, None, "")  # no version by then
    assert (day_7.patterns, day_7.q_entries, day_7.exploration_rate) == (1, 2, 0.2)
    assert day_7.state_from.startswith("v1 (")
    assert (day_30.patterns, day_30.q_entries, day_30.exploration_rate, day_30.state_from) == (1, 3, 0.1, "live")


def test_it_attributes_the_applied_strategy_and_leaves_the_rest_to_learning(built):
    period, agent = built
    (row,) = agent.strategies
    assert (row.strategy, row.replaced, row.task_type, row.state) == (
        "parallel-execution", "sequential-execution", "unit-tests", "kept")
    assert row.applied_at == period.start + timedelta(days=APPLIED_DAY) and row.reverted_at is None
    assert (row.effect, row.effect_low, row.effect_high) == pytest.approx((0.20, 0.08, 0.32))
    assert (row.served, row.type_tasks, row.all_tasks) == (6, 8, 10)
    assert (row.share_of_type, row.share_of_all) == pytest.approx((0.75, 0.6))
    assert (row.points, row.points_low, row.points_high) == pytest.approx((0.12, 0.048, 0.192))
    assert agent.success_change == pytest.approx(STEP * 29)
    assert agent.attributed == pytest.approx(0.12)
    assert agent.other == pytest.approx(STEP * 29 - 0.12)


def test_it_lists_the_tests_mitigations_and_rollbacks_of_the_period(built):
    _, agent = built
    (test,) = agent.abtests
    assert (test.state, test.effect, test.n_control, test.n_treatment) == ("kept", pytest.approx(0.2), 100, 100)
    (mitigation,) = agent.mitigations
    assert (mitigation.failure_class, mitigation.rate_before, mitigation.rate_after) == ("timeout", 0.2, 0.1)
    (rollback,) = agent.rollbacks
    # The day before holds day 20's snapshots, the day after day 21's.
    assert (rollback.score_before, rollback.score_after) == pytest.approx((score_on(20), score_on(21)))
    assert (rollback.tasks_before, rollback.tasks_after) == (20, 20)
    assert rollback.change == pytest.approx(score_on(21) - score_on(20))


def test_it_builds_the_fleet_report_in_a_fixed_number_of_queries():
    now = timezone.now()
    for name in ("alice", "bob", "carol"):
        constructed_history(make_agent(name, "core", "qe"), now)
    period = report_math.parse_period({}, now)
    with CaptureQueriesContext(connection) as queries:
        fleet = report.build(period, now)
    assert len(queries) <= 25  # 20, and incidents prevented: one query when none, five otherwise
    assert fleet.fleet.agents == 3 and fleet.fleet.agents_achieved == 0
    assert fleet.fleet.checkpoints[0].score == pytest.approx(0.6935)
    assert fleet.fleet.checkpoints[1].patterns == 3 and fleet.fleet.checkpoints[-1].q_entries == 9
    assert fleet.fleet.attributed == pytest.approx(0.12)
