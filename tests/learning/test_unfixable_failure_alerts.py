"""A frequent failure class no strategy fixes (validation, say) asks an
operator only when it rose: a steady share of assertion failures is tests
finding bugs, so it is an info alert for the digest, not a decision."""

import pytest

from learning import mitigations
from learning.models import Alert, LearningProfile
from tests.learning.test_mitigations import fail, succeed

pytestmark = pytest.mark.django_db


def activate(agent):
    return mitigations.activate(agent, LearningProfile.objects.get(agent=agent))


def test_a_steady_share_of_validation_failures_goes_to_the_digest(alice):
    for round_ in range(40):  # 200 tasks, a fifth of them failing validation throughout
        succeed(alice, 4, prefix=f"s{round_}")
        fail(alice, 1, "AssertionError", "expected status 200, got 500", prefix=f"f{round_}")
    [applied] = activate(alice)
    assert applied["adjustment"] == "none"
    alert = Alert.objects.get(kind="failure:needs_operator")
    assert (alert.severity, alert.task_type) == ("info", "unit-tests")
    assert "no rise" in alert.summary and alert.numbers["rate_now"] == alert.numbers["rate_earlier"] == 0.2


def test_a_rise_in_validation_failures_asks_an_operator(alice):
    succeed(alice, 100, prefix="before")
    fail(alice, 30, "AssertionError", "schema mismatch")
    succeed(alice, 70, prefix="after")
    activate(alice)
    alert = Alert.objects.get(kind="failure:needs_operator")
    assert alert.severity == "warning" and "rose from 0% to 30%" in alert.summary
    assert (alert.numbers["tasks_earlier"], alert.numbers["tasks_now"]) == (100, 100)


def test_without_enough_earlier_tasks_no_rise_can_be_told(alice):
    fail(alice, 10, "AssertionError", "schema mismatch")
    succeed(alice, 20)
    activate(alice)
    assert Alert.objects.get(kind="failure:needs_operator").severity == "info"
