"""Operator actions: POST only, CSRF, roles, idempotent, audited."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

from learning import alerts, safeguard, versions
from learning.models import Alert, Rollback, VersionReason
from qefleet.memory.models import AuditEvent
from tests.dashboard.helpers import client_for
from tests.learning.helpers import profile, run_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def learned(alice):
    """Alice with v1 (good) and a worse live state after it."""
    for _ in range(5):
        run_task(alice)
    good = versions.capture(alice, VersionReason.ON_DEMAND)
    for _ in range(5):
        run_task(alice, success=False, complexity=0.1)
    return good


def test_an_operator_rolls_back_once_even_when_clicking_twice(alice, learned):
    operator = client_for("operator")
    for _ in range(2):
        response = operator.post("/ops/agents/alice/rollback", {"version": "1", "reason": "bad deploy"})
        assert response.status_code == 302
    assert Rollback.objects.count() == 1
    assert versions.checksum(versions.learned_state(alice, profile(alice))) == learned.checksum
    assert profile(alice).enabled is False
    audit = AuditEvent.objects.get(action="rollback")
    assert (audit.actor, audit.target, audit.detail["to"], audit.detail["reason"]) == (
        "operator", "agent:alice", "v1", "bad deploy")


def test_undo_rolls_forward_once(alice, learned):
    operator = client_for("operator")
    operator.post("/ops/agents/alice/rollback", {"version": "1", "reason": "bad deploy"})
    rollback = Rollback.objects.get()
    for _ in range(2):
        operator.post(f"/ops/agents/alice/rollbacks/{rollback.pk}/undo")
    assert Rollback.objects.count() == 2
    assert versions.checksum(versions.learned_state(alice, profile(alice))) == rollback.from_version.checksum
    assert AuditEvent.objects.filter(action="undo_rollback").count() == 1


def test_an_operators_own_rollback_and_undo_raise_no_alert(alice, learned):
    # The operator acted and the audit trail says so: an alert would ask the
    # operators to look at what one of them just did.
    operator = client_for("operator")
    operator.post("/ops/agents/alice/rollback", {"version": "1", "reason": "bad deploy"})
    operator.post(f"/ops/agents/alice/rollbacks/{Rollback.objects.get().pk}/undo")
    assert Rollback.objects.count() == 2
    assert not Alert.objects.exists()
    assert AuditEvent.objects.filter(action__in=("rollback", "undo_rollback")).count() == 2


def test_only_admins_re_enable_learning_the_safeguard_turned_off(alice, learned):
    safeguard.roll_back(alice, profile(alice), learned, automatic=True, reason="3 consecutive degraded checks")
    assert client_for("operator").post("/ops/agents/alice/re-enable").status_code == 403
    assert profile(alice).enabled is False
    assert client_for("viewer").post("/ops/agents/alice/re-enable").status_code == 403
    assert client_for("admin").post("/ops/agents/alice/re-enable").status_code == 302
    assert profile(alice).enabled is True
    assert AuditEvent.objects.filter(action="re_enable_learning").count() == 1


def test_refusals_change_nothing(alice, learned):
    before = versions.checksum(versions.learned_state(alice, profile(alice)))
    assert client_for("viewer").post("/ops/agents/alice/rollback", {"version": "1"}).status_code == 403
    assert client_for("operator").get("/ops/agents/alice/rollback").status_code == 405
    anonymous = Client().post("/ops/agents/alice/rollback", {"version": "1"})
    assert anonymous.status_code == 403
    user = User.objects.create_user("op2", password="pw")
    user.groups.add(Group.objects.get(name="operator"))
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert strict.post("/ops/agents/alice/rollback", {"version": "1", "reason": "r"}).status_code == 403
    assert client_for("operator").post("/ops/agents/alice/rollback", {"version": "x", "reason": "r"}).status_code == 400
    assert client_for("operator").post("/ops/agents/alice/rollback", {"version": "9", "reason": "r"}).status_code == 404
    no_reason = client_for("operator").post("/ops/agents/alice/rollback", {"version": "1", "reason": "  "})
    assert no_reason.status_code == 400 and "reason" in no_reason.content.decode()
    assert versions.checksum(versions.learned_state(alice, profile(alice))) == before
    assert not Rollback.objects.exists() and not AuditEvent.objects.exclude(action="token_issue").exists()


def test_the_preview_shows_what_a_rollback_changes(alice, learned):
    learned.known_good = True
    learned.save()
    body = client_for("viewer").get("/ops/agents/alice/preview").json()
    assert body["version"] == "v1" and body["known_good"] is True
    assert body["q_entries"]["restored"] < body["q_entries"]["live"]
    assert body["largest_q_changes"] and "exploration_rate" in body["config_changes"]
    assert body["best_action_changes"]
    for change in body["best_action_changes"]:  # each state in words, as the page shows it
        assert change["state_words"].startswith("complexity ") and "capabilit" in change["state_words"]
    assert all(name.startswith("unit-tests:") for name in body["patterns_removed"] + body["patterns_added"])
    assert client_for("viewer").get("/ops/agents/alice/preview?version=7").status_code == 404
    assert Client().get("/ops/agents/alice/preview").status_code == 302  # login first


def test_the_alert_life_cycle(alice):
    alert, _ = alerts.raise_alert("safeguard:degraded", "high", "alice degraded", {}, alice)
    operator = client_for("operator")
    operator.post(f"/ops/alerts/{alert.pk}/acknowledge", {"note": "looking\r\ninto it"})
    alert.refresh_from_db()
    assert (alert.state, alert.acknowledged_by, alert.note) == ("acknowledged", "operator", "looking\r\ninto it")
    assert AuditEvent.objects.get(action="alert_acknowledge").detail["note"] == "looking\\r\\ninto it"
    assert operator.post(f"/ops/alerts/{alert.pk}/silence", {"until": ""}).status_code == 400
    past = (timezone.now() - timedelta(hours=1)).isoformat()
    assert operator.post(f"/ops/alerts/{alert.pk}/silence", {"until": past}).status_code == 400
    until = (timezone.now() + timedelta(hours=2)).replace(microsecond=0)
    operator.post(f"/ops/alerts/{alert.pk}/silence", {"until": until.isoformat()})
    operator.post(f"/ops/alerts/{alert.pk}/resolve", {"note": "fixed"})
    alert.refresh_from_db()
    assert (alert.state, alert.silenced_until, alert.note) == ("resolved", until, "fixed")
    assert operator.post(f"/ops/alerts/{alert.pk}/explode").status_code == 404
    assert client_for("viewer").post(f"/ops/alerts/{alert.pk}/resolve").status_code == 403


def test_the_audit_trail_is_append_only(alice):
    event = AuditEvent.record("someone", "rollback", "agent:alice")
    with pytest.raises(TypeError):
        event.save()
    with pytest.raises(TypeError):
        AuditEvent.objects.all().delete()
    with pytest.raises(TypeError):
        AuditEvent.objects.update(actor="x")
    assert Alert.objects.count() == 0


def test_the_admin_shows_safeguards_rollbacks_alerts_and_the_audit_trail(admin_client, alice, learned):
    client_for("operator").post("/ops/agents/alice/rollback", {"version": "1"})
    for url in ("/admin/learning/rollback/", "/admin/learning/alert/", "/admin/memory/auditevent/",
                "/admin/learning/safeguard/"):
        assert admin_client.get(url).status_code == 200, url
    alert, _ = alerts.raise_alert("safeguard:degraded", "high", "alice degraded", {}, alice)
    response = admin_client.post("/admin/learning/alert/", {"action": "acknowledge", "_selected_action": [alert.pk]})
    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.state == "acknowledged"
    assert AuditEvent.objects.filter(action="alert_acknowledge").count() == 1
    assert admin_client.post(f"/admin/memory/auditevent/{AuditEvent.objects.first().pk}/delete/").status_code == 403
