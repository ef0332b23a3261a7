"""Shadow mode: an agent in shadow runs its own choice (propensity 1), the
learned choice is logged beside it, learning goes on, and promotion to
active is audited, by an operator or by the rule."""

import numpy as np
import pytest
from django.contrib.auth import get_user_model

from learning import operations, shadow
from learning.core import offline
from learning.models import Decision, LearningMode, QEntry
from qefleet.memory.models import AuditEvent
from tests.learning.helpers import profile, recommend, report, run_task, strategy, task

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(db):
    user = get_user_model().objects.create_user("operator")
    user.is_superuser = True  # every permission: the roles are tested with the dashboard
    user.save()
    return user


@pytest.fixture
def in_shadow(alice, operator):
    operations.put_in_shadow(alice, operator, "new agent, let it prove itself")
    return alice


def test_it_answers_the_agents_own_choice_with_propensity_1_and_logs_the_learned_one(in_shadow):
    decision, _ = run_task(in_shadow)  # the catalog default, learned as a success
    QEntry.objects.create(agent=in_shadow, task_type="unit-tests", state_key=decision["state_key"],
                          strategy=strategy("parallel-execution"), q_value=5.0, visits=10)
    body = in_shadow.client.post(f"agents/{in_shadow.agent_id}/recommendations",
                                 {"task": task(), "own_strategy": "adaptive-retry"}).json()
    assert body["strategy"] == "adaptive-retry" and body["propensity"] == 1.0 and body["mode"] == "shadow"
    assert body["explored"] is False and "abtest" not in body and "Shadow mode" in body["reasoning"]
    decision = Decision.objects.get(pk=body["decision_id"])
    assert decision.fallback == "shadow" and decision.strategy.name == "adaptive-retry"
    assert decision.shadow_strategy.name == "parallel-execution"


def test_without_own_strategy_the_agent_runs_the_catalog_default(in_shadow):
    body = recommend(in_shadow)
    decision = Decision.objects.get(pk=body["decision_id"])
    assert decision.strategy.is_default and body["propensity"] == 1.0
    assert "catalog default" in body["reasoning"]


def test_learning_goes_on_in_shadow(in_shadow):
    before = profile(in_shadow).task_count
    decision = recommend(in_shadow)
    response = report(in_shadow, decision, task())
    assert response.status_code == 201 and response.json()["q_value"] != response.json()["previous_q_value"]
    assert profile(in_shadow).task_count == before + 1
    assert QEntry.objects.filter(agent=in_shadow).exists()


def test_an_active_agent_says_so(alice):
    assert recommend(alice)["mode"] == "active"


def test_an_unknown_own_strategy_is_a_bad_request_naming_the_field_in_either_mode(in_shadow, bob):
    for agent in (in_shadow, bob):
        response = agent.client.post(f"agents/{agent.agent_id}/recommendations",
                                     {"task": task(), "own_strategy": "no-such-strategy"})
        assert response.status_code == 400 and "own_strategy" in response.content.decode()
    assert not Decision.objects.exists()


def test_putting_in_shadow_and_promoting_are_audited_with_their_reasons(in_shadow, operator):
    assert operations.put_in_shadow(in_shadow, operator, "again") is False  # a second click changes nothing
    for _ in range(3):
        run_task(in_shadow)
    assert operations.promote(in_shadow, operator, "the estimate looks good") is True
    assert profile(in_shadow).mode == LearningMode.ACTIVE and profile(in_shadow).shadow_since is None
    assert operations.promote(in_shadow, operator, "again") is False
    rows = list(AuditEvent.objects.filter(target="agent:alice", action__in=("shadow_learning", "promote_shadow"))
                .order_by("pk"))
    assert [row.action for row in rows] == ["shadow_learning", "promote_shadow"]
    assert rows[1].actor == "operator" and rows[1].detail["reason"] == "the estimate looks good"
    assert rows[1].detail["decisions"] == 3


def test_a_reason_is_required(alice, operator):
    with pytest.raises(operations.InvalidAction, match="reason"):
        operations.put_in_shadow(alice, operator, " ")


def test_the_status_carries_the_mode_and_the_shadow_figures(in_shadow, alice):
    for _ in range(4):
        run_task(in_shadow)
    body = in_shadow.client.get(f"agents/{in_shadow.agent_id}/learning").json()
    assert body["mode"] == "shadow"
    figures = body["shadow"]
    assert figures["decisions"] == 4 and figures["reported"] == 4 and figures["agreement"] is not None
    assert figures["estimator"] == "doubly robust" and figures["promotes"] is False
    assert "4 reported" in figures["rule_words"]


def _comparison(low):
    estimate = offline.Estimate(0.05, low, 0.1)
    return offline.Comparison(estimate, offline.Estimate(0.7, 0.65, 0.75), estimate, 0.4, 300, 2000, 0.0, 0.95)


@pytest.mark.parametrize("reported, low, met", [
    (199, 0.05, False),   # too few decisions, however good the estimate
    (200, 0.021, True),   # the lower bound above the 2-point margin
    (200, 0.02, False),   # on the margin is not above it
    (500, -0.01, False),
])
def test_the_rule_promotes_on_enough_decisions_and_a_lower_bound_above_the_margin(settings, reported, low, met):
    settings.SHADOW_PROMOTE_MARGIN_POINTS, settings.SHADOW_PROMOTE_MIN_DECISIONS = 2, 200
    assert shadow.rule_status(reported, _comparison(low))[0] is met


def test_the_rule_writes_a_lower_bound_that_rounds_to_zero_as_plus_zero(settings):
    settings.SHADOW_PROMOTE_MARGIN_POINTS, settings.SHADOW_PROMOTE_MIN_DECISIONS = 2, 200
    assert shadow.rule_status(500, _comparison(-0.000004))[1].endswith("now not met: the lower bound is +0.0 points.")


def test_the_scheduled_check_promotes_as_the_system_and_audits_it(in_shadow, settings, monkeypatch):
    settings.SHADOW_PROMOTE_MIN_DECISIONS = 3
    for _ in range(3):
        run_task(in_shadow)
    monkeypatch.setattr(shadow, "comparison", lambda agent, profile: (_comparison(0.04), None, 2000))
    assert shadow.promote_ready() == {"shadow_promoted": ["alice"]}
    assert profile(in_shadow).mode == LearningMode.ACTIVE
    row = AuditEvent.objects.get(action="promote_shadow")
    assert row.actor == "system" and row.detail["lift_low"] == 0.04 and "now met" in row.detail["reason"]
    assert shadow.promote_ready() == {"shadow_promoted": []}


def test_the_scheduled_check_leaves_an_agent_short_of_the_rule_in_shadow(in_shadow, settings):
    for _ in range(3):
        run_task(in_shadow)
    assert shadow.promote_ready() == {"shadow_promoted": []}
    assert profile(in_shadow).in_shadow


def test_new_agents_start_in_shadow_when_the_setting_says_so(settings, db):
    from tests.conftest import make_agent

    settings.SHADOW_NEW_AGENTS = True
    newcomer = make_agent("newcomer", "core", "qe")
    assert recommend(newcomer)["mode"] == "shadow"
    assert profile(newcomer).shadow_since is not None


def test_resuming_after_a_rollback_can_leave_the_agent_in_shadow(alice, operator):
    for _ in range(3):
        run_task(alice)
    operations.pause(alice, operator, "a rollback's review")
    operations.re_enable(alice, operator, in_shadow=True)
    assert profile(alice).enabled and profile(alice).in_shadow
    row = AuditEvent.objects.get(action="re_enable_learning")
    assert row.detail["mode"] == "shadow"


def test_the_learned_value_is_estimated_from_the_swarms_logs(in_shadow, bob):
    """Bob (same swarm) tried other strategies; the estimate borrows his outcomes."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        run_task(bob, success=bool(rng.random() < 0.5))
    for _ in range(6):
        run_task(in_shadow)
    result, refused, reference = shadow.comparison(in_shadow, profile(in_shadow))
    assert reference >= 20 and (result is not None or refused["reason"] == "no_overlap")
