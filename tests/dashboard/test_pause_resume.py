"""Operators pause and resume an agent's learning (a reason to pause), and
resume what they turned off themselves (a pause, a rollback, an undo); what
the safeguard turned off waits for an admin; viewers do neither."""

import pytest

from learning import safeguard, versions
from learning.models import VersionReason
from qefleet.memory.models import AuditEvent
from tests.dashboard.helpers import client_for
from tests.learning.helpers import profile, run_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def learning(alice):
    for _ in range(3):
        run_task(alice)
    return alice


def test_an_operator_pauses_with_a_reason_and_resumes(learning):
    operator = client_for("operator")
    assert "Pause learning" in operator.get("/ops/agents/alice/").content.decode()
    operator.post("/ops/agents/alice/pause", {"reason": "staging is down"})
    assert profile(learning).enabled is False and profile(learning).disabled_by == "operator"
    page = operator.get("/ops/agents/alice/").content.decode()
    assert "Learning paused" in page and "Resume learning" in page and "operator paused the learning of alice: “staging is down”" in page
    operator.post("/ops/agents/alice/re-enable")
    assert profile(learning).enabled is True and profile(learning).disabled_by == ""
    assert list(AuditEvent.objects.order_by("pk").values_list("action", flat=True).filter(
        action__in=("pause_learning", "re_enable_learning"))) == ["pause_learning", "re_enable_learning"]


def test_a_pause_needs_a_reason(learning):
    response = client_for("operator").post("/ops/agents/alice/pause", {"reason": " "})
    assert response.status_code == 400 and "reason" in response.content.decode()
    assert profile(learning).enabled is True


def test_another_operator_cannot_resume_what_one_paused_but_an_admin_can(learning, django_user_model):
    client_for("operator").post("/ops/agents/alice/pause", {"reason": "looking into it"})
    other = client_for("operator")
    other.force_login(django_user_model.objects.create_user("other-operator"))
    django_user_model.objects.get(username="other-operator").groups.add(
        *django_user_model.objects.get(username="operator").groups.all())
    assert other.post("/ops/agents/alice/re-enable").status_code == 403
    assert "operator or an admin can resume it" in other.get("/ops/agents/alice/").content.decode()
    assert client_for("admin").post("/ops/agents/alice/re-enable").status_code == 302
    assert profile(learning).enabled is True


def test_an_operator_resumes_learning_after_their_own_rollback_not_the_safeguards(learning):
    good = versions.capture(learning, VersionReason.ON_DEMAND)
    run_task(learning)
    operator = client_for("operator")
    operator.post("/ops/agents/alice/rollback", {"version": str(good.number), "reason": "checking"})
    assert operator.post("/ops/agents/alice/re-enable").status_code == 302 and profile(learning).enabled
    run_task(learning)
    safeguard.roll_back(learning, profile(learning), good, automatic=True, reason="3 consecutive degraded checks")
    assert operator.post("/ops/agents/alice/re-enable").status_code == 403 and not profile(learning).enabled
    assert "Only an admin can resume learning the safeguard turned off" in operator.get(
        "/ops/agents/alice/").content.decode()


def test_viewers_neither_pause_nor_resume(learning):
    viewer = client_for("viewer")
    assert viewer.post("/ops/agents/alice/pause", {"reason": "x"}).status_code == 403
    assert viewer.post("/ops/agents/alice/re-enable").status_code == 403
    assert "Pause learning" not in viewer.get("/ops/agents/alice/").content.decode()
