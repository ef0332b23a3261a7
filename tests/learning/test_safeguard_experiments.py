"""Tasks an A/B test forces onto a fixed strategy are judged by the test, not
by the safeguard: a bad arm must not roll back a healthy learned state."""

import pytest

from learning.models import Rollback, Safeguard, SafeguardState
from tests.learning.abtest_helpers import start_test
from tests.learning.helpers import healthy_history, recommend, report, run_task, task

pytestmark = pytest.mark.django_db


def test_failing_forced_arms_do_not_degrade_the_safeguard(alice):
    healthy_history(alice)
    start_test(alice, task_type="api-tests")
    for number in range(40):
        decision = recommend(alice, id=f"forced-{number}", type="api-tests")
        assert decision["abtest"] is not None
        report(alice, decision, task(id=f"forced-{number}", type="api-tests"), success=False)
        run_task(alice)  # the policy's own tasks stay healthy
    guard = Safeguard.objects.get(agent=alice)
    assert guard.state == SafeguardState.OK and guard.consecutive_degraded == 0
    assert not Rollback.objects.exists()


def test_the_policys_own_failures_still_count(alice):
    healthy_history(alice)
    start_test(alice, task_type="api-tests", control=None)
    for number in range(30):
        decision = recommend(alice, id=f"mixed-{number}")  # unit-tests: not under test
        report(alice, decision, task(id=f"mixed-{number}"), success=False)
    assert Rollback.objects.filter(agent=alice).exists()
