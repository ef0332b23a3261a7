"""What operators do to an agent's learning, each audited and idempotent:
a second click on the same target is a no-op, never a second action.

The one write path for operators: the dashboard's buttons and the admin's
actions both call these functions, so both leave the same audit row."""

from django.db import transaction
from django.http import Http404

from qefleet.memory.models import AuditEvent

from . import abtests, alerts, drills, improvement, safeguard, sharing, versions
from .models import (
    ABTest,
    ABTestState,
    Alert,
    DrillRun,
    LearningProfile,
    Rollback,
    Safeguard,
    StateVersion,
    VersionReason,
)

# The actions below audit against `agent:{id}`: the agent page's operator
# actions are these, never what agents' own requests write there.
AGENT_ACTIONS = ("rollback", "undo_rollback", "re_enable_learning", "run_cycle", "rebaseline", "capture_version",
                 "run_drills", "calibrate_safeguard")


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


@transaction.atomic
def start_test(test_id, user, request=None):
    """Start a draft A/B test; returns it, or None when it was no longer a draft."""
    test = ABTest.objects.select_for_update(of=("self",)).select_related("agent").filter(pk=test_id).first()
    if test is None:
        raise Http404("No such A/B test.")
    if test.state != ABTestState.DRAFT or not abtests.begin(test):
        return None
    AuditEvent.record(user.get_username(), "start_abtest", f"abtest:{test.pk}", request, agent=test.agent.agent_id,
                      horizon=test.horizon)
    return test


@transaction.atomic
def rebaseline(agent, user, request=None):
    """A new improvement baseline, measured from the agent's next tasks."""
    profile = LearningProfile.locked(agent)
    profile.rebaseline()
    AuditEvent.record(user.get_username(), "rebaseline", f"agent:{agent.agent_id}", request, task=profile.task_count)
    return profile


@transaction.atomic
def capture_version(agent, user, request=None):
    """A state version of the agent's learned state, now."""
    profile = LearningProfile.locked(agent)
    version = versions.capture(agent, VersionReason.ON_DEMAND, profile)
    AuditEvent.record(user.get_username(), "capture_version", f"agent:{agent.agent_id}", request,
                      version=version.label)
    return version


@transaction.atomic
def quarantine_shared(shared_patterns, user, request=None):
    """Quarantine active shared patterns (a queryset) by hand, as a rollback of
    their source would; returns those quarantined."""
    actor = user.get_username()
    quarantined = sharing.quarantine(shared_patterns, f"quarantined by {actor}")
    for shared in quarantined:
        AuditEvent.record(actor, "quarantine_shared_pattern", f"shared_pattern:{shared.pk}", request,
                          pattern=shared.key, source=shared.source.agent_id)
    return quarantined


@transaction.atomic
def run_drills(agent, user, request=None):
    """The agent's statistics drills, now (learning/drills.py); raises
    drills.TooFewTasks when it has too few logged tasks to resample."""
    run = drills.drill(agent, "operator")
    AuditEvent.record(user.get_username(), "run_drills", f"agent:{agent.agent_id}", request, drill_run=run.pk,
                      seed=run.seed)
    return run


CALIBRATED_FIELDS = {"window": "window", "z": "confidence_z", "consecutive": "consecutive", "check_every": "check_every"}


@transaction.atomic
def apply_calibration(agent, drill_run_id, user, request=None):
    """Set the agent's safeguard to the setting drill run `drill_run_id`
    proposed (learning/core/drills.calibrate); returns the Safeguard, or None
    when it already had that setting. known_good_after grows to at least the
    new window, which Safeguard.clean asks for."""
    run = DrillRun.objects.filter(agent=agent, pk=drill_run_id).first()
    if run is None or not run.figures.get("calibration"):
        raise Http404("No such drill run with a proposed setting.")
    proposed = run.figures["calibration"]["rule"]
    guard, _ = Safeguard.objects.select_for_update().get_or_create(agent=agent)
    before = {field: getattr(guard, field) for field in CALIBRATED_FIELDS.values()}
    after = {field: proposed[name] for name, field in CALIBRATED_FIELDS.items()}
    if before == after:
        return None
    for field, value in after.items():
        setattr(guard, field, value)
    guard.known_good_after = max(guard.known_good_after, guard.window)
    guard.full_clean()
    guard.save()
    AuditEvent.record(user.get_username(), "calibrate_safeguard", f"agent:{agent.agent_id}", request,
                      drill_run=run.pk, before=before, after=after)
    return guard
