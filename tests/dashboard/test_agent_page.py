"""An agent's page at /ops/agents/<agent_id>/."""

import json

import pytest
from django.test import Client
from django.utils.html import escape

from learning import abtests, tracker, versions
from learning.models import Adjustment, LearningProfile, Mitigation, Rollback, VersionReason
from tests.dashboard.helpers import applied_test, control_wins_test, inconclusive_test, running_test
from tests.learning.helpers import recommend, report, run_task

pytestmark = pytest.mark.django_db


def test_it_requires_a_login(alice):
    response = Client().get("/ops/agents/alice/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_it_answers_404_for_an_unknown_agent(viewer):
    assert viewer.get("/ops/agents/nobody/").status_code == 404


def test_it_says_so_before_the_first_task(viewer, alice):
    page = viewer.get("/ops/agents/alice/").content.decode()
    assert "No snapshot in the last 7 days: the first comes after 10 tasks" in page and "No version yet" in page and "No decision yet" in page


def test_it_charts_the_score_with_its_references_and_the_rollback(operator, alice, history):
    operator.post("/ops/agents/alice/rollback", {"version": "1", "reason": "worse since v1"})
    response = operator.get("/ops/agents/alice/?range=24h")
    charts = response.context["charts"]
    score = json.loads(charts["score"])
    assert len(score["data"][0]["x"]) == 6  # one point per snapshot (every 10 tasks)
    labels = [annotation["text"] for annotation in score["layout"]["annotations"]]
    legend = [trace["name"] for trace in score["data"]]
    assert any(name.startswith("baseline ") for name in legend)  # reference lines are named in the legend
    assert any(name.startswith("safeguard reference ") for name in legend) and not any(
        label.startswith(("baseline", "safeguard")) for label in labels)
    assert "rollback to v1 (operator)" in labels
    components = json.loads(charts["components"])
    assert [trace["name"] for trace in components["data"]] == [
        "success rate", "time (1 - ms/30 000)", "1 - error rate", "satisfaction", "efficiency"]
    exploration = json.loads(charts["exploration"])
    assert exploration["data"][1]["name"] == "Q entries (at each version)"
    assert 'id="score-chart"' in response.content.decode()


def test_the_change_vs_baseline_names_its_tasks_and_their_score(viewer, alice):
    # security-scanner showed a snapshot's 0.254 beside a baseline of 0.355
    # and "+1.8 %", measured on other tasks: each figure now names its own.
    for _ in range(50):
        run_task(alice)
    for _ in range(17):
        run_task(alice, success=False)
    score, change = tracker.current_improvement(alice, LearningProfile.objects.get(agent=alice))
    page = " ".join(viewer.get("/ops/agents/alice/").content.decode().split())
    summary = page[page.index('id="agent-summary"'):page.index("<dt>Safeguard</dt>")]
    assert "(latest snapshot: tasks 51–60)" in summary
    assert f"{change * 100:+.1f} % <span class=\"muted\">(score {score:.3f} over tasks 18–67, the latest 50" in summary


def test_it_shows_the_q_table_searchable_and_paginated(viewer, alice):
    for complexity in (0.1, 0.2, 0.3):
        run_task(alice, complexity=complexity)
    run_task(alice, type="integration-tests")
    page = viewer.get("/ops/agents/alice/").context["q_page"]
    assert page.paginator.count == 4
    first = page.object_list[0]
    assert (first.task_type, first.state_key, first.visits) == ("integration-tests", "0.6,0.1,0.0,0.8,1.0", 1)
    assert first.best_action and first.actions == 1
    found = viewer.get("/ops/agents/alice/?q=integration").context["q_page"]
    assert [state.task_type for state in found.object_list] == ["integration-tests"]


def test_it_paginates_the_q_table(viewer, alice):
    for step in range(11):
        for attempts in (0, 1):
            run_task(alice, complexity=step / 10, previous_attempts=attempts)
    response = viewer.get("/ops/agents/alice/?qpage=2")
    assert response.context["q_page"].number == 2 and len(response.context["q_page"].object_list) == 2
    assert "Page 2 of 2" in response.content.decode()


def test_it_explains_recent_decisions_and_lists_failure_patterns(viewer, alice):
    run_task(alice)
    failed = report(alice, recommend(alice), success=False, execution_time_ms=40000,
                    errors=[{"type": "TimeoutError", "message": "took too long"}])
    assert failed.status_code == 201
    response = viewer.get("/ops/agents/alice/")
    decision = response.context["decisions"][0]
    assert decision.reasoning.startswith(("Explored:", "Exploited:")) and decision.outcome.success is False
    page = response.content.decode()
    assert escape(decision.reasoning) in page and "✗ failed" in page
    failure = response.context["failures"][0]
    assert failure.failure_class == "timeout" and escape(failure.mitigation) in page


def test_it_links_each_version_but_the_live_one_to_a_rollback_confirmation_for_operators(viewer, operator, alice,
                                                                                        history):
    versions.capture(alice, VersionReason.ON_DEMAND)
    operator_page = operator.get("/ops/agents/alice/").content.decode()
    assert 'href="/ops/agents/alice/rollback/confirm?version=1"' in operator_page
    assert "Roll back to v1…" in operator_page and "Roll back to v2" not in operator_page  # v2 is live
    assert 'data-preview-url="/ops/agents/alice/preview?version=1"' in operator_page
    viewer_page = viewer.get("/ops/agents/alice/").content.decode()
    assert "Roll back to v1" not in viewer_page and "Preview v1" in viewer_page


def test_it_previews_the_version_asked_for_or_the_known_good_one(viewer, alice, history):
    versions.capture(alice, VersionReason.ON_DEMAND)
    assert viewer.get("/ops/agents/alice/").context["preview_version"] == 1
    assert viewer.get("/ops/agents/alice/?preview=2").context["preview_version"] == 2
    assert viewer.get("/ops/agents/alice/?preview=known-good").context["preview_version"] == 1


def test_after_a_rollback_it_offers_undo_resume_and_another_rollback(operator, admin, alice, history):
    operator.post("/ops/agents/alice/rollback", {"version": "1", "reason": "score slipping"})
    rollback = Rollback.objects.get()
    page = operator.get("/ops/agents/alice/").content.decode()
    assert "After the rollback" in page and "Learning paused" in page and "“score slipping”" in page
    assert f'action="/ops/agents/alice/rollbacks/{rollback.pk}/undo"' in page and "Roll back to another version" in page
    assert "Resume learning" in page  # the operator's own rollback: theirs to resume
    assert "An operator rolled back from" in page  # the event; the operator's own rollback raises no alert
    admin.post("/ops/agents/alice/re-enable")
    operator.post(f"/ops/agents/alice/rollbacks/{rollback.pk}/undo")
    assert LearningProfile.objects.get(agent=alice).enabled is False  # an undo pauses learning like a rollback
    score = json.loads(operator.get("/ops/agents/alice/").context["charts"]["score"])
    labels = {annotation["text"] for annotation in score["layout"]["annotations"]}
    assert {"rollback to v1 (operator)", "re-enabled by admin", f"undo of rollback #{rollback.pk} to v2 (operator)"} <= labels


@pytest.fixture
def loop_history(alice, history):
    """On top of `history`: a running, an inconclusive and a reverted test,
    and a mitigation."""
    running, decided, applied = running_test(alice), inconclusive_test(alice, "integration-tests"), \
        applied_test(alice, "e2e-tests")
    abtests.revert(applied, "degraded on 3 checks in a row")
    Mitigation.objects.create(agent=alice, task_type="unit-tests", failure_class="timeout",
                              adjustment=Adjustment.LESS_PARALLEL, strategies=["parallel-execution"],
                              tasks_before=100, failures_before=20, tasks_after=50, failures_after=4,
                              activated_after_task=40)
    return running, decided, applied


def test_it_marks_the_improvement_loop_on_the_score_chart(viewer, loop_history):
    running, decided, applied = loop_history
    score = json.loads(viewer.get("/ops/agents/alice/?range=24h").context["charts"]["score"])
    events = {trace["name"]: trace["text"] for trace in score["data"][1:] if trace.get("yaxis") == "y2"}
    assert events == {
        "A/B test started": [f"A/B test #{test.pk} started: {test.name}" for test in loop_history],
        "A/B test ended": [f"A/B test #{decided.pk} ended inconclusive: {decided.name}",
                           f"A/B test #{applied.pk} ended winner: {applied.name}"],
        "strategy applied": [f"parallel-execution applied for e2e-tests (A/B test #{applied.pk})"],
        "strategy reverted": [f"parallel-execution reverted for e2e-tests (A/B test #{applied.pk})"],
    }
    assert any(trace.get("yaxis") == "y2" for trace in score["data"][1:]) and score["layout"]["showlegend"] is True


def test_a_test_the_control_won_is_marked_in_words_on_the_score_chart(viewer, alice, history):
    test = control_wins_test(alice)
    score = json.loads(viewer.get("/ops/agents/alice/?range=24h").context["charts"]["score"])
    ended = next(trace["text"] for trace in score["data"][1:] if trace["name"] == "A/B test ended")
    assert ended == [f"A/B test #{test.pk} ended control wins: {test.name}"]


def test_a_withdrawn_mitigation_is_not_said_to_be_withdrawn_by_a_rollback(viewer, alice, history):
    # evaluate() withdraws one under which the task type succeeds less often:
    # no rollback was involved.
    Mitigation.objects.create(agent=alice, task_type="unit-tests", failure_class="memory",
                              adjustment=Adjustment.LESS_PARALLEL, state="withdrawn", tasks_before=100,
                              failures_before=20, activated_after_task=40)
    page = viewer.get("/ops/agents/alice/").content.decode()
    assert "↺</span> withdrawn</span>" in page and "by a rollback" not in page


def test_it_lists_the_agents_tests_and_mitigations(viewer, loop_history):
    response = viewer.get("/ops/agents/alice/")
    assert [test.pk for test in response.context["abtests"]] == [test.pk for test in reversed(loop_history)]
    page = response.content.decode()
    section = page[page.index('id="improvement"'):page.index('id="q-table"')]
    for test in loop_history:
        assert f'href="/ops/abtests/{test.pk}/"' in section
    assert "↺</span> reverted" in section and 'href="/ops/abtests/?agent=alice"' in section
    assert "timeout in unit-tests" in section and "lower parallelization" in section
    assert "implicated: parallel-execution" in section and "●</span> active" in section
    assert "20.0 % <span" in section and "8.0 % <span" in section


def test_tests_decided_before_the_window_are_left_out(viewer, alice):
    decided = inconclusive_test(alice)
    decided.transitions.update(at=decided.created_at.replace(year=2020))
    running = running_test(alice, "integration-tests")
    running.transitions.update(at=running.created_at.replace(year=2020))
    assert [test.pk for test in viewer.get("/ops/agents/alice/").context["abtests"]] == [running.pk]


def test_it_keeps_to_the_query_budget(operator, alice, history, loop_history, django_assert_max_num_queries):
    operator.post("/ops/agents/alice/rollback", {"version": "1"})
    # 26 for an operator, 24 for a superuser (who skips the 2 permission queries), the
    # "Is it learning?" panel's two grouped queries included.
    with django_assert_max_num_queries(26):
        assert operator.get("/ops/agents/alice/?q=unit").status_code == 200
