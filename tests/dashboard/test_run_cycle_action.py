"""Running an agent's improvement cycle from its page: operators and admins,
POST only, CSRF, audited; a second click in the same slot repeats nothing."""

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from learning.models import ABTest, ABTestState, ImprovementCycle, LearningProfile
from qefleet.memory.models import AuditEvent
from tests.learning.abtest_helpers import set_arms, start_test
from tests.learning.helpers import run_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def due(alice):
    """alice has learned a little and has a test at its horizon of 100 per arm."""
    for _ in range(3):
        run_task(alice)
    test = start_test(alice, horizon=100)
    set_arms(test, (100, 75), (100, 78))
    return test


def test_an_operator_runs_the_cycle_and_is_told_what_it_did(operator, due):
    response = operator.post("/ops/agents/alice/run-cycle", {"next": "/ops/agents/alice/#improvement"})
    assert response.status_code == 302 and response["Location"] == "/ops/agents/alice/#improvement"
    due.refresh_from_db()
    assert due.state == ABTestState.INCONCLUSIVE
    cycle = ImprovementCycle.objects.get(agent__agent_id="alice")
    assert cycle.trigger == "operator"
    page = operator.get("/ops/agents/alice/").content.decode()
    assert f"Improvement cycle of alice for the slot from {cycle.slot_start:%Y-%m-%d %H:%M} UTC" in page
    assert f"decided A/B tests #{due.pk} inconclusive" in page
    audit = AuditEvent.objects.exclude(action="token_issue").get()
    assert (audit.actor, audit.action, audit.target, audit.detail) == (
        "operator", "run_cycle", "agent:alice", {"cycle": cycle.pk})


def test_a_second_click_in_the_same_slot_repeats_nothing(operator, due):
    for _ in range(2):
        assert operator.post("/ops/agents/alice/run-cycle").status_code == 302
    cycle = ImprovementCycle.objects.get()
    assert [item["kind"] for item in cycle.decisions].count("abtest_decided") == 1
    assert ABTest.objects.count() == 1 and due.transitions.count() == 3
    assert AuditEvent.objects.filter(action="run_cycle").count() == 2  # each click is on the record


def test_with_nothing_to_do_it_says_so(operator, alice):
    run_task(alice)
    operator.post("/ops/agents/alice/run-cycle")
    assert "nothing to change" in operator.get("/ops/agents/alice/").content.decode()


def test_an_agent_whose_learning_is_off_is_skipped(operator, alice, bob):
    run_task(alice)
    LearningProfile.objects.filter(agent=alice).update(enabled=False)  # as after a rollback
    for agent_id in ("alice", "bob"):  # bob has reported no task
        operator.post(f"/ops/agents/{agent_id}/run-cycle")
        page = operator.get(f"/ops/agents/{agent_id}/").content.decode()
        assert f"The improvement cycle skips {agent_id}: its learning is off or it has reported no task yet." in page
    assert not ImprovementCycle.objects.exists() and not AuditEvent.objects.exclude(action="token_issue").exists()


def test_viewers_have_no_button_and_are_refused(viewer, operator, admin, due):
    button = 'action="/ops/agents/alice/run-cycle"'
    assert button in operator.get("/ops/agents/alice/").content.decode()
    assert button in admin.get("/ops/agents/alice/").content.decode()
    assert button not in viewer.get("/ops/agents/alice/").content.decode()
    assert viewer.post("/ops/agents/alice/run-cycle").status_code == 403
    assert operator.get("/ops/agents/alice/run-cycle").status_code == 405
    assert Client().post("/ops/agents/alice/run-cycle").status_code == 403
    user = User.objects.create_user("op2")
    user.groups.add(Group.objects.get(name="operator"))
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert strict.post("/ops/agents/alice/run-cycle").status_code == 403
    assert operator.post("/ops/agents/nobody/run-cycle").status_code == 404
    assert not ImprovementCycle.objects.exists() and not AuditEvent.objects.exclude(action="token_issue").exists()
