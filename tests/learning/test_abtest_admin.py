"""A/B tests and the cycle in the Django admin: an admin adds a draft, starts
and aborts it with actions; operators run a cycle; viewers only look."""

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse

from learning.models import ABTest, ABTestState, ImprovementCycle, LearningProfile
from qefleet.memory.models import AuditEvent
from tests.learning.abtest_helpers import start_test
from tests.learning.helpers import strategy

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:learning_abtest_changelist")
ADD = reverse("admin:learning_abtest_add")


def staff(role):
    user = User.objects.create_user(role, password="unused-password-123", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client


def add_form(agent, **overrides):
    form = {"agent": agent.pk, "task_type": "unit-tests", "control": strategy("sequential-execution").pk,
            "treatment": strategy("parallel-execution").pk, "control_weight": "0.5", "name": "", "hypothesis": "h",
            "mde": "0.1", "power": "0.8", "arms-TOTAL_FORMS": "0", "arms-INITIAL_FORMS": "0",
            "transitions-TOTAL_FORMS": "0", "transitions-INITIAL_FORMS": "0"}
    form.update(overrides)
    return form


def test_an_admin_adds_a_draft_and_starts_it(alice):
    client = staff("admin")
    response = client.post(ADD, add_form(alice))
    assert response.status_code == 302, response.context["adminform"].form.errors
    test = ABTest.objects.get()
    assert (test.state, test.source, test.created_by) == (ABTestState.DRAFT, "admin", "admin")
    assert test.arms.count() == 2
    client.post(CHANGELIST, {"action": "start", "_selected_action": [test.pk]})
    test.refresh_from_db()
    assert test.state == ABTestState.RUNNING and test.horizon >= 100


def test_the_form_refuses_the_same_strategy_twice_and_a_second_open_test(alice):
    client = staff("admin")
    response = client.post(ADD, add_form(alice, treatment=strategy("sequential-execution").pk))
    assert "treatment" in response.context["adminform"].form.errors
    start_test(alice)
    response = client.post(ADD, add_form(alice))
    assert "task_type" in response.context["adminform"].form.errors
    assert ABTest.objects.count() == 1


@pytest.mark.parametrize("field, value", [("mde", "1e-300"), ("mde", "0.6"), ("power", "0.9999999999999999")])
def test_the_form_refuses_a_design_no_test_can_use(alice, field, value):
    response = staff("admin").post(ADD, add_form(alice, **{field: value}))
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not ABTest.objects.exists()


def test_an_admin_aborts_a_running_test(alice):
    test = start_test(alice)
    staff("admin").post(CHANGELIST, {"action": "abort", "_selected_action": [test.pk]})
    test.refresh_from_db()
    assert test.state == ABTestState.ABORTED and test.decision == "aborted by admin"
    # The same write path as the dashboard's Abort button, so the same audit row.
    audit = AuditEvent.objects.get(action="abort_abtest")
    assert (audit.actor, audit.target, audit.detail["agent"]) == ("admin", f"abtest:{test.pk}", "alice")


def test_starting_a_draft_is_audited_once(alice):
    test = start_test(alice, start=False)
    client = staff("admin")
    for _ in range(2):
        client.post(CHANGELIST, {"action": "start", "_selected_action": [test.pk]})
    audit = AuditEvent.objects.get(action="start_abtest")
    assert (audit.actor, audit.target) == ("admin", f"abtest:{test.pk}")


def test_rebaselining_and_capturing_a_version_from_the_admin_are_audited(alice):
    profile = LearningProfile.objects.create(agent=alice, task_count=3)
    client = staff("admin")
    changelist = reverse("admin:learning_learningprofile_changelist")
    client.post(changelist, {"action": "rebaseline", "_selected_action": [profile.pk]})
    client.post(changelist, {"action": "capture_version", "_selected_action": [profile.pk]})
    profile.refresh_from_db()
    assert profile.baseline_task == 3
    assert AuditEvent.objects.get(action="rebaseline").detail == {"task": 3}
    assert AuditEvent.objects.get(action="capture_version").detail == {"version": "v1"}


def test_a_viewer_can_look_but_not_add_or_act(alice):
    test = start_test(alice)
    client = staff("viewer")
    assert client.get(CHANGELIST).status_code == 200
    assert client.get(ADD).status_code == 403
    client.post(CHANGELIST, {"action": "abort", "_selected_action": [test.pk]})
    assert ABTest.objects.get(pk=test.pk).state == ABTestState.RUNNING


def test_an_operator_runs_a_cycle_and_it_is_audited(alice):
    profile = LearningProfile.objects.create(agent=alice, task_count=3)
    staff("operator").post(reverse("admin:learning_learningprofile_changelist"),
                           {"action": "run_cycle", "_selected_action": [profile.pk]})
    assert ImprovementCycle.objects.get(agent=alice).trigger == "operator"
    assert AuditEvent.objects.filter(action="run_cycle", target="agent:alice").exists()


def test_a_viewer_cannot_run_a_cycle(alice):
    profile = LearningProfile.objects.create(agent=alice, task_count=3)
    staff("viewer").post(reverse("admin:learning_learningprofile_changelist"),
                         {"action": "run_cycle", "_selected_action": [profile.pk]})
    assert not ImprovementCycle.objects.exists()
