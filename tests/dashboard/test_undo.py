"""An undo is worded as an undo (message, audit, page), recorded as one,
cannot itself be undone, and stays available until the agent has reported
ROLLBACK_UNDO_TASKS (a setting) tasks after the rollback or another rollback
happened; the page says until when."""

import pytest
from django.conf import settings

from learning import versions
from learning.models import Rollback, VersionReason
from qefleet.memory.models import AuditEvent
from tests.dashboard.helpers import client_for
from tests.learning.helpers import profile, run_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def rolled_back(alice):
    for _ in range(5):
        run_task(alice)
    versions.capture(alice, VersionReason.ON_DEMAND)
    for _ in range(5):
        run_task(alice, success=False, complexity=0.1)
    client_for("operator").post("/ops/agents/alice/rollback", {"version": "1", "reason": "bad deploy"})
    return Rollback.objects.get()


def test_an_undo_is_worded_and_recorded_as_one(alice, rolled_back):
    operator = client_for("operator")
    response = operator.post(f"/ops/agents/alice/rollbacks/{rolled_back.pk}/undo", follow=True)
    page = response.content.decode()
    undo = Rollback.objects.exclude(pk=rolled_back.pk).get()
    assert undo.undo_of == rolled_back and undo.is_undo and undo.reason == ""
    assert f"Undid rollback #{rolled_back.pk} of alice: {rolled_back.from_version.label}, the state before it" in page
    assert "After the undo" in page and f"operator undid a rollback of alice (rollback #{rolled_back.pk};" in page
    assert "rolled back from" not in page.split("After the undo")[1].split("</section>")[0]
    assert AuditEvent.objects.get(action="undo_rollback").detail["rollback"] == rolled_back.pk


def test_there_is_no_undo_of_an_undo(alice, rolled_back):
    operator = client_for("operator")
    operator.post(f"/ops/agents/alice/rollbacks/{rolled_back.pk}/undo")
    undo = Rollback.objects.get(undo_of=rolled_back)
    assert "/undo" not in operator.get("/ops/agents/alice/").content.decode()
    operator.post(f"/ops/agents/alice/rollbacks/{undo.pk}/undo")
    assert Rollback.objects.count() == 2


def test_the_undo_outlives_a_version_capture_and_says_until_when(alice, rolled_back):
    operator = client_for("operator")
    operator.post("/ops/agents/alice/re-enable")  # the operator resumes their own rollback's learning
    run_task(alice)
    versions.capture(alice, VersionReason.CYCLE)  # the next slot's capture: a new live version
    page = operator.get("/ops/agents/alice/").content.decode()
    until = rolled_back.task_count + settings.ROLLBACK_UNDO_TASKS
    assert f"until the agent has reported task {until} (it is at {profile(alice).task_count})" in page
    assert f'action="/ops/agents/alice/rollbacks/{rolled_back.pk}/undo"' in page


def test_the_undo_closes_once_the_agent_has_moved_on(alice, rolled_back):
    agent_profile = profile(alice)
    agent_profile.task_count = rolled_back.task_count + settings.ROLLBACK_UNDO_TASKS + 1
    agent_profile.save()
    operator = client_for("operator")
    page = operator.get("/ops/agents/alice/").content.decode()
    assert f"Undo is no longer available: the agent has reported more than {settings.ROLLBACK_UNDO_TASKS} tasks since" in page
    operator.post(f"/ops/agents/alice/rollbacks/{rolled_back.pk}/undo")
    assert Rollback.objects.count() == 1


def test_the_undo_window_is_a_setting(alice, rolled_back, settings):
    settings.ROLLBACK_UNDO_TASKS = 3
    agent_profile = profile(alice)
    agent_profile.task_count = rolled_back.task_count + 4
    agent_profile.save()
    operator = client_for("operator")
    assert "the agent has reported more than 3 tasks since" in operator.get("/ops/agents/alice/").content.decode()
    confirm = operator.get(f"/ops/agents/alice/rollback/confirm?version={rolled_back.from_version.number}")
    assert "undo the rollback for the next 3 tasks" in confirm.content.decode()
