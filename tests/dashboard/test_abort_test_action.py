"""Aborting an A/B test from its page: admins only, POST only, CSRF,
audited, and a second click does nothing."""

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from learning.models import ABTestState
from qefleet.memory.models import AuditEvent
from tests.dashboard.helpers import inconclusive_test, running_test

pytestmark = pytest.mark.django_db


@pytest.fixture
def running(alice):
    return running_test(alice)


def test_an_admin_aborts_a_running_test_once_even_when_clicking_twice(admin, running):
    url = f"/ops/abtests/{running.pk}/abort"
    first = admin.post(url, {"reason": "wrong task type", "next": f"/ops/abtests/{running.pk}/"})
    assert first.status_code == 302 and first["Location"] == f"/ops/abtests/{running.pk}/"
    second = admin.post(url, {"reason": "again"})
    assert second["Location"] == f"/ops/abtests/{running.pk}/"  # the test's page without `next`
    running.refresh_from_db()
    assert running.state == ABTestState.ABORTED and running.decision == "aborted by admin: wrong task type"
    assert list(running.transitions.values_list("to_state", flat=True))[-1] == ABTestState.ABORTED
    audit = AuditEvent.objects.exclude(action="token_issue").get()
    assert (audit.actor, audit.action, audit.target, audit.detail) == (
        "admin", "abort_abtest", f"abtest:{running.pk}", {"agent": "alice", "reason": "wrong task type"})
    page = admin.get(f"/ops/abtests/{running.pk}/").content.decode()
    assert f"A/B test #{running.pk} had already ended; nothing to abort." in page
    assert "■</span> aborted" in page and "/abort" not in page


def test_the_message_says_what_was_aborted(admin, running):
    admin.post(f"/ops/abtests/{running.pk}/abort")
    page = admin.get(f"/ops/abtests/{running.pk}/").content.decode()
    assert f"Aborted A/B test #{running.pk} (unit-tests: parallel-execution vs sequential-execution) of alice." in page
    running.refresh_from_db()
    assert running.decision == "aborted by admin"


def test_a_decided_test_is_not_aborted(admin, alice):
    decided = inconclusive_test(alice)
    admin.post(f"/ops/abtests/{decided.pk}/abort")
    decided.refresh_from_db()
    assert decided.state == ABTestState.INCONCLUSIVE and not AuditEvent.objects.exclude(action="token_issue").exists()


def test_refusals_change_nothing(viewer, operator, admin, running):
    url = f"/ops/abtests/{running.pk}/abort"
    assert viewer.post(url).status_code == 403
    assert operator.post(url).status_code == 403
    assert admin.get(url).status_code == 405
    assert Client().post(url).status_code == 403
    user = User.objects.create_user("admin2")
    user.groups.add(Group.objects.get(name="admin"))
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert strict.post(url).status_code == 403
    assert admin.post("/ops/abtests/999/abort").status_code == 404
    running.refresh_from_db()
    assert running.state == ABTestState.RUNNING and not AuditEvent.objects.exclude(action="token_issue").exists()
