import pytest

from learning.models import Execution, FailurePattern, LearnedPattern, LearningProfile, QEntry
from qefleet.memory.models import Event, Pattern, PerformanceMetric
from tests.learning.helpers import recommend, report, run_task, task

pytestmark = pytest.mark.django_db


def test_it_learns_from_a_report(alice):
    decision = recommend(alice)
    response = report(alice, decision, coverage=0.9)
    assert response.status_code == 201
    body = response.json()
    assert body["reward"] == pytest.approx(1.660833, abs=1e-6)
    assert (body["previous_q_value"], body["q_value"]) == (0.0, pytest.approx(0.1660833, abs=1e-6))
    assert body["exploration_rate"] == pytest.approx(0.3 * 0.995)
    entry = QEntry.objects.get(agent=alice)
    assert (entry.strategy.name, entry.state_key, entry.visits) == (decision["strategy"], decision["state_key"], 1)
    assert body["patterns"][0]["pattern"] == f"unit-tests:{decision['strategy']}"


def test_the_q_update_bootstraps_from_the_next_state(alice):
    decision = recommend(alice)
    strategy = decision["strategy"]
    from learning.models import Strategy
    QEntry.objects.create(agent=alice, task_type="unit-tests", state_key="0.6,0.1,0.1,0.7,1.0",
                          strategy=Strategy.objects.get(name=strategy), q_value=0.92, visits=3)
    QEntry.objects.create(agent=alice, task_type="unit-tests", state_key=decision["state_key"],
                          strategy=Strategy.objects.get(name=strategy), q_value=0.85, visits=3)
    body = report(alice, decision, coverage=0.9).json()
    # The design's worked example (docs/ARCHITECTURE.md, "Golden values"), with the unrounded reward.
    assert body["q_value"] == pytest.approx(0.85 + 0.1 * (1.660833 + 0.95 * 0.92 - 0.85), abs=1e-6)


def test_a_reported_next_task_sets_the_next_state(alice):
    decision = recommend(alice)
    body = {"decision_id": decision["decision_id"], "task": task(),
            "result": {"success": True, "execution_time_ms": 100, "errors": []},
            "next_task": task(complexity=0.2)}
    assert alice.client.post("agents/alice/executions", body).status_code == 201
    assert Execution.objects.get().next_state_key == "0.2,0.1,0.0,0.8,1.0"


def test_a_repeated_report_has_one_effect(alice):
    decision = recommend(alice)
    body_task = task()
    first = report(alice, decision, body_task)
    second = report(alice, decision, body_task)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json() == second.json()
    assert Execution.objects.count() == 1
    assert QEntry.objects.get().visits == 1
    assert LearningProfile.objects.get(agent=alice).task_count == 1


def test_a_report_without_decision_names_its_action(alice):
    body = {"task": task(), "result": {"success": False, "execution_time_ms": 100, "errors": []},
            "action": {"strategy": "adaptive-retry", "parallelization": 0.5, "retry_policy": "adaptive"}}
    headers = {"Idempotency-Key": "k-1"}
    first = alice.client.post("agents/alice/executions", body, headers=headers)
    assert first.status_code == 201
    assert alice.client.post("agents/alice/executions", body, headers=headers).json() == first.json()
    changed = dict(body, result={"success": True, "execution_time_ms": 100, "errors": []})
    conflict = alice.client.post("agents/alice/executions", changed, headers=headers)
    assert conflict.status_code == 422 and conflict.json()["field"] == "Idempotency-Key"
    assert Execution.objects.count() == 1


def test_a_report_needs_a_decision_or_a_key(alice):
    body = {"task": task(), "result": {"success": True, "execution_time_ms": 1, "errors": []},
            "action": {"strategy": "adaptive-retry", "parallelization": 0.5, "retry_policy": "adaptive"}}
    response = alice.client.post("agents/alice/executions", body)
    assert response.status_code == 400 and response.json()["field"] == "Idempotency-Key"


@pytest.mark.parametrize("action,field", [
    (None, "action"),
    ({"strategy": "warp-drive", "parallelization": 0.5, "retry_policy": "fixed"}, "action.strategy"),
    ({"strategy": "adaptive-retry", "parallelization": 0.9, "retry_policy": "adaptive"}, "action"),
])
def test_it_refuses_unknown_actions(alice, action, field):
    body = {"task": task(), "result": {"success": True, "execution_time_ms": 1, "errors": []}}
    if action:
        body["action"] = action
    response = alice.client.post("agents/alice/executions", body, headers={"Idempotency-Key": "x"})
    assert response.status_code == 400 and response.json()["field"] == field
    assert not Execution.objects.exists() and not QEntry.objects.exists()


def test_an_unknown_or_foreign_decision_is_404(alice, bob):
    decision = recommend(bob)
    assert report(alice, decision).status_code == 404
    assert report(alice, {"decision_id": "00000000-0000-0000-0000-000000000000"}).status_code == 404
    assert not Execution.objects.exists()


def test_a_decision_counts_once_even_under_another_key(alice):
    decision = recommend(alice)
    report(alice, decision)
    again = report(alice, decision, headers={"Idempotency-Key": "other"})
    assert again.status_code == 409
    assert Execution.objects.count() == 1


def test_patterns_count_success_not_reward(alice):
    for success in (True, True, False, True):
        run_task(alice, success=success)
    patterns = LearnedPattern.objects.filter(agent=alice)
    assert sum(p.uses for p in patterns) == 4 and sum(p.successes for p in patterns) == 3
    mirrored = Pattern.objects.filter(owner=alice)
    assert {p.pattern for p in mirrored} == {p.key for p in patterns}
    assert all(m.confidence == pytest.approx(patterns.get(strategy__name=m.pattern.split(":")[1]).confidence)
               for m in mirrored)


def test_failures_are_classified_with_a_mitigation(alice):
    decision = recommend(alice)
    report(alice, decision, success=False,
           errors=[{"type": "TimeoutError", "message": "timed out after 30s"}, {"type": "Error", "message": "ECONNRESET"}])
    failures = {f.failure_class: f for f in FailurePattern.objects.filter(agent=alice)}
    assert set(failures) == {"timeout", "network"}
    assert failures["timeout"].frequency == 1 and failures["timeout"].confidence == 1.0
    assert "time budget" in failures["timeout"].mitigation
    run_task(alice, success=True)
    run_task(alice, success=False)
    failures = {f.failure_class: f for f in FailurePattern.objects.filter(agent=alice)}
    assert failures["other"].confidence == pytest.approx(1 / 3)


def test_it_records_events_and_a_performance_sample(alice):
    decision, body = run_task(alice, success=False)
    types = list(Event.objects.filter(owner=alice).values_list("type", flat=True))
    assert sorted(types) == ["learning:failure_detected", "learning:pattern_discovered", "learning:training"]
    training = Event.objects.get(type="learning:training")
    assert training.payload["execution_id"] == body["execution_id"]
    assert training.payload["decision_id"] == decision["decision_id"]
    assert PerformanceMetric.objects.filter(owner=alice, metric="task_score").count() == 1


def test_a_disabled_agent_records_but_does_not_learn(alice):
    LearningProfile.objects.update_or_create(agent=alice, defaults={"enabled": False})
    decision = recommend(alice)
    assert decision["explored"] is False
    body = report(alice, decision).json()
    assert body["learning_enabled"] is False and body["q_value"] == 0.0
    assert body["exploration_rate"] == pytest.approx(0.3)
    assert Execution.objects.count() == 1 and not LearnedPattern.objects.exists()


@pytest.mark.parametrize("result,field", [
    ({"success": "yes", "execution_time_ms": 1, "errors": []}, "result.success"),
    ({"success": True, "execution_time_ms": -1, "errors": []}, "result.execution_time_ms"),
    ({"success": True, "execution_time_ms": 1, "errors": [], "coverage": 1.2}, "result.coverage"),
    ({"success": True, "execution_time_ms": 1, "errors": [{"message": "x"}]}, "result.errors.0.type"),
    ({"execution_time_ms": 1, "errors": []}, "result.success"),
])
def test_it_validates_the_result(alice, result, field):
    decision = recommend(alice)
    body = {"decision_id": decision["decision_id"], "task": task(), "result": result}
    response = alice.client.post("agents/alice/executions", body)
    assert response.status_code == 422 and response.json()["field"] == field
    assert not Execution.objects.exists() and not QEntry.objects.exists()


def test_nan_never_reaches_the_q_table(alice):
    decision = recommend(alice)
    raw = ('{"decision_id": "%s", "task": {"id": "t", "type": "unit-tests", "complexity": 0.6, '
           '"available_resources": 0.8}, "result": {"success": true, "execution_time_ms": 1, "errors": [], '
           '"coverage": NaN}}') % decision["decision_id"]
    assert alice.client.post("agents/alice/executions", raw).status_code == 400
    assert not QEntry.objects.exists()
