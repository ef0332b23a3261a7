"""What operators do to an agent's learning, each audited and idempotent:
a second click on the same target is a no-op, never a second action."""

from django.db import transaction
from django.http import Http404

from qefleet.memory.models import AuditEvent

from . import abtests, alerts, improvement, safeguard
from .models import ABTest, Alert, LearningProfile, Rollback, StateVersion


@transaction.atomic
def roll_back_to(agent, number, user, reason="", request=None):
    """Roll back to version `number`; returns the Rollback, or None when that
    version is already live with nothing learned since."""
    profile = LearningProfile.locked(agent)
    target = StateVersion.objects.filter(agent=agent, number=number).first()
    if target is None:
        raise Http404("No such version.")
    if profile.live_version_id == target.pk and profile.live_since_task == profile.task_count:
        return None
    record = safeguard.roll_back(agent, profile, target, automatic=False, actor=user.get_username(), reason=reason)
    AuditEvent.record(user.get_username(), "rollback", f"agent:{agent.agent_id}", request,
                      to=target.label, from_=record.from_version.label, reason=reason)
    return record


@transaction.atomic
def undo(agent, rollback_id, user, request=None):
    """Roll forward to the state captured just before rollback `rollback_id`;
    None when that rollback is no longer the live one (already undone)."""
    profile = LearningProfile.locked(agent)
    rollback = Rollback.objects.filter(agent=agent, pk=rollback_id).select_related("from_version").first()
    if rollback is None:
        raise Http404("No such rollback.")
    if profile.live_version_id != rollback.to_version_id or Rollback.objects.filter(
            agent=agent, created_at__gt=rollback.created_at).exists():
        return None
    record = safeguard.roll_forward(agent, profile, rollback, actor=user.get_username())
    AuditEvent.record(user.get_username(), "undo_rollback", f"agent:{agent.agent_id}", request,
                      rollback=rollback.pk, to=record.to_version.label)
    return record


@transaction.atomic
def re_enable(agent, user, request=None):
    """Learning on again; False when it already was."""
    profile = LearningProfile.locked(agent)
    if profile.enabled:
        return False
    safeguard.re_enable(profile)
    AuditEvent.record(user.get_username(), "re_enable_learning", f"agent:{agent.agent_id}", request)
    return True


@transaction.atomic
def act_on_alert(alert_id, action, user, note="", until=None, request=None):
    alert = Alert.objects.select_for_update().filter(pk=alert_id).first()
    if alert is None:
        raise Http404("No such alert.")
    if action == "acknowledge":
        alerts.acknowledge(alert, user.get_username(), note)
    elif action == "silence":
        alerts.silence(alert, until)
    elif action == "resolve":
        alerts.resolve(alert, note)
    else:
        raise ValueError(action)
    AuditEvent.record(user.get_username(), f"alert_{action}", f"alert:{alert.pk}", request, note=note,
                      until=until.isoformat() if until else None)
    return alert


def run_cycle(agent, user, request=None):
    """The agent's improvement cycle for the current slot, now (a second click
    in the same slot re-runs nothing it already did)."""
    cycle = improvement.run_cycle(agent, trigger="operator")
    if cycle is not None:
        AuditEvent.record(user.get_username(), "run_cycle", f"agent:{agent.agent_id}", request, cycle=cycle.pk)
    return cycle


@transaction.atomic
def abort_test(test_id, user, request=None, reason=""):
    """Abort a draft or running A/B test; returns it, or None when it had
    already ended (a second click)."""
    test = ABTest.objects.select_related("agent").filter(pk=test_id).first()
    if test is None:
        raise Http404("No such A/B test.")
    actor = user.get_username()
    if not abtests.abort(test.pk, f"aborted by {actor}: {reason}" if reason else f"aborted by {actor}"):
        return None
    AuditEvent.record(actor, "abort_abtest", f"abtest:{test.pk}", request, agent=test.agent.agent_id, reason=reason)
    return test
