"""The slot's job raises an alert when an agent stops learning (outcomes
arrive but its values do not move, or most decisions fall back to the
catalog default) and resolves it when learning resumes."""

import pytest

from learning.jobs import every_slot
from learning.learning_health import watch_learning
from learning.models import Alert, AlertState, Decision, Execution, LearningProfile
from tests.learning.helpers import run_task

pytestmark = pytest.mark.django_db


def freeze_values(agent):
    """Make every stored outcome of the agent one that left its value where it was."""
    Execution.objects.filter(agent=agent).update(q_value=0.25, previous_q=0.25)


def open_alerts(kind):
    return list(Alert.objects.open().filter(kind=kind))


def test_values_that_do_not_move_raise_an_alert_once(alice):
    for _ in range(40):
        run_task(alice)
    freeze_values(alice)
    assert every_slot()["not_learning"] == 1
    [alert] = open_alerts("learning:values_static")
    assert alert.agent == alice and alert.severity == "warning"
    assert alert.summary == "alice is not learning: 0 of its last 40 outcomes moved its learned values"
    assert (alert.numbers["outcomes"], alert.numbers["changed"], alert.numbers["window_tasks"]) == (40, 0, 100)
    watch_learning()
    assert Alert.objects.get(pk=alert.pk).occurrences == 2 and Alert.objects.count() == 1


def test_it_resolves_when_the_values_move_again(alice):
    for _ in range(40):
        run_task(alice)
    freeze_values(alice)
    watch_learning()
    for _ in range(40):  # 40 moving outcomes of the last 80: half
        run_task(alice)
    assert watch_learning() == {"learning_judged": 1, "not_learning": 0}
    alert = Alert.objects.get(kind="learning:values_static")
    assert alert.state == AlertState.RESOLVED and "learning again" in alert.note


def test_most_decisions_on_the_catalog_default_raise_an_alert_and_resolve(alice):
    for _ in range(40):
        run_task(alice)
    Decision.objects.filter(agent=alice).update(fallback="default")
    watch_learning()
    [alert] = open_alerts("learning:mostly_default")
    assert alert.summary == "alice mostly falls back to the catalog default: 40 of its last 40 decisions"
    Decision.objects.filter(agent=alice).update(fallback="")
    watch_learning()
    assert open_alerts("learning:mostly_default") == []


def test_a_newcomer_is_too_early_to_judge(alice):
    for _ in range(29):
        run_task(alice)
    freeze_values(alice)
    assert watch_learning() == {"learning_judged": 0, "not_learning": 0}
    assert Alert.objects.count() == 0


def test_learning_turned_off_neither_raises_nor_resolves(alice):
    for _ in range(40):
        run_task(alice)
    freeze_values(alice)
    watch_learning()
    LearningProfile.objects.filter(agent=alice).update(enabled=False)
    assert watch_learning() == {"learning_judged": 0, "not_learning": 0}
    assert len(open_alerts("learning:values_static")) == 1


def test_one_agent_resolving_leaves_another_agents_alert_open(alice, bob):
    for agent in (alice, bob):
        for _ in range(40):
            run_task(agent)
        freeze_values(agent)
    watch_learning()
    for _ in range(40):
        run_task(alice)
    watch_learning()
    assert [alert.agent for alert in open_alerts("learning:values_static")] == [bob]
