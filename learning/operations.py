"""What operators do to an agent's learning, each audited and idempotent:
a second click on the same target is a no-op, never a second action.

The one write path for operators: the dashboard's buttons and the admin's
actions both call these functions, so both leave the same audit row."""

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from qefleet.memory.models import AuditEvent

from . import abtests, alerts, drills, improvement, safeguard, shadow, sharing, versions
from .models import (
    ABTest,
    ABTestState,
    Alert,
    DrillRun,
    LearningMode,
    LearningProfile,
    Rollback,
    Safeguard,
    SilenceRule,
    StateVersion,
    VersionReason,
)

# The actions below audit against `agent:{id}`: the agent page's operator
# actions are these, never what agents' own requests write there.
AGENT_ACTIONS = ("rollback", "undo_rollback", "pause_learning", "re_enable_learning", "run_cycle", "rebaseline",
                 "capture_version", "run_drills", "calibrate_safeguard", "shadow_learning", "promote_shadow")
ALERT_ACTIONS = ("acknowledge", "silence", "resolve")


class InvalidAction(ValueError):
    """An operator action the input does not allow; the message names the
    field (the dashboard answers it with 400)."""


@transaction.atomic
def roll_back_to(agent, number, user, reason, request=None):
    """Roll back to version `number` for `reason` (required: the audit trail
    and the agent page say why); returns the Rollback, or None when that
    version is already live with nothing learned since."""
    if not reason.strip():
        raise InvalidAction("reason must say why you roll back.")
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


def latest_rollback(agent):
    return Rollback.objects.filter(agent=agent).select_related("from_version", "to_version").defer(
        "from_version__payload", "to_version__payload").order_by("-created_at", "-pk").first()


@transaction.atomic
def undo(agent, rollback_id, user, request=None):
    """Put back the state captured just before rollback `rollback_id`: an
    undo, recorded as one (`undo_of`). None when it can no longer be undone
    (already undone, replaced by a later rollback, past its window, or an
    undo itself: there is no undo of an undo)."""
    profile = LearningProfile.locked(agent)
    rollback = Rollback.objects.filter(agent=agent, pk=rollback_id).select_related("from_version").first()
    if rollback is None:
        raise Http404("No such rollback.")
    if rollback.undo_refusal(profile, latest_rollback(agent)):
        return None
    record = safeguard.roll_forward(agent, profile, rollback, actor=user.get_username())
    AuditEvent.record(user.get_username(), "undo_rollback", f"agent:{agent.agent_id}", request,
                      rollback=rollback.pk, to=record.to_version.label)
    return record


def may_resume(user, profile):
    """Admins resume any agent's learning; an operator with the pause
    permission what they turned off themselves (a pause, a rollback or an
    undo), not what the safeguard turned off: that is the admins' review."""
    if user.has_perm("learning.reenable_learning"):
        return True
    return user.has_perm("learning.pause_learning") and bool(profile.disabled_by) and (
        profile.disabled_by == user.get_username())


@transaction.atomic
def pause(agent, user, reason, request=None):
    """Learning off for now (recommendations go on from what was learned);
    False when it already was off."""
    if not reason.strip():
        raise InvalidAction("reason must say why you pause learning.")
    profile = LearningProfile.locked(agent)
    if not profile.enabled:
        return False
    safeguard.freeze(profile, by=user.get_username())
    AuditEvent.record(user.get_username(), "pause_learning", f"agent:{agent.agent_id}", request, reason=reason,
                      task=profile.task_count)
    return True


@transaction.atomic
def re_enable(agent, user, request=None, in_shadow=False):
    """Learning on again (resume); False when it already was. PermissionDenied
    when this user may not resume it (may_resume). `in_shadow` resumes it in
    shadow mode (after a rollback: the learned state earns its way back),
    which also needs the shadow permission."""
    profile = LearningProfile.locked(agent)
    if profile.enabled:
        return False
    if not may_resume(user, profile):
        raise PermissionDenied("Only an admin re-enables learning the safeguard turned off.")
    if in_shadow and not user.has_perm("learning.shadow_learning"):
        raise PermissionDenied("Resuming in shadow needs the shadow permission.")
    safeguard.re_enable(profile)
    if in_shadow:
        profile.set_mode(LearningMode.SHADOW)
    AuditEvent.record(user.get_username(), "re_enable_learning", f"agent:{agent.agent_id}", request,
                      task=profile.task_count, mode=profile.mode)
    return True


@transaction.atomic
def put_in_shadow(agent, user, reason, request=None):
    """Shadow mode from the next recommendation on (learning/shadow.py);
    False when the agent already was in shadow."""
    if not reason.strip():
        raise InvalidAction("reason must say why the agent goes into shadow.")
    profile = LearningProfile.locked(agent)
    if not profile.set_mode(LearningMode.SHADOW):
        return False
    AuditEvent.record(user.get_username(), "shadow_learning", f"agent:{agent.agent_id}", request, reason=reason,
                      task=profile.task_count)
    return True


@transaction.atomic
def promote(agent, user, reason, request=None):
    """Out of shadow: the learned policy chooses again. Audited with the
    shadow figures it was promoted on; False when the agent was active."""
    if not reason.strip():
        raise InvalidAction("reason must say why you promote the agent.")
    profile = LearningProfile.locked(agent)
    if not profile.in_shadow:
        return False
    return shadow.record_promotion(agent, profile, user.get_username(), reason, shadow.figures(agent, profile),
                                   request)


@transaction.atomic
def act_on_alerts(alert_ids, action, user, note="", until=None, request=None):
    """Acknowledge, silence or resolve alerts, one or a group, in one
    transaction with one audit row; every id must name an alert, else
    nothing changes. Returns the alerts."""
    if action not in ALERT_ACTIONS:
        raise InvalidAction(f"action must be one of: {', '.join(ALERT_ACTIONS)}.")
    if action == "silence" and until is None:
        raise InvalidAction("until must say when the silence ends.")
    ids = sorted(set(alert_ids))
    if not ids:
        raise InvalidAction("alert must name at least one alert.")
    found = list(Alert.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
    if len(found) != len(ids):
        raise InvalidAction("alert must name existing alerts only.")
    actor = user.get_username()
    for alert in found:
        if action == "acknowledge":
            alerts.acknowledge(alert, actor, note)
        elif action == "silence":
            alerts.silence(alert, until)
        else:
            alerts.resolve(alert, note)
    target = f"alert:{ids[0]}" if len(ids) == 1 else f"alerts:{len(ids)}"
    AuditEvent.record(actor, f"alert_{action}", target, request, note=note, alerts=ids,
                      until=until.isoformat() if until else None)
    return found


def act_on_alert(alert_id, action, user, note="", until=None, request=None):
    """One alert (the admin's action and the one-alert URL); 404 when it does not exist."""
    if not Alert.objects.filter(pk=alert_id).exists():
        raise Http404("No such alert.")
    return act_on_alerts([alert_id], action, user, note, until, request)[0]


def create_silence(user, until, kind="", agent=None, task_type="", severity="", comment="", request=None):
    """A silence rule, applied at once to the open alerts it matches and from
    now on to those raised; returns it with how many open alerts it quieted."""
    rule = SilenceRule(kind=kind, agent=agent, task_type=task_type, severity=severity, until=until, comment=comment,
                       created_by=user.get_username(), created_at=timezone.now())
    return save_silence(rule, user, request)


@transaction.atomic
def save_silence(rule, user, request=None):
    """Store a new or edited silence rule (the dashboard's form and the
    admin), and quiet the open alerts it matches until it ends; returns it
    with how many open alerts it quieted."""
    if not rule.narrows():
        raise InvalidAction(rule.TOO_WIDE)
    created = rule.pk is None
    rule.save()
    if not created:  # an edit: what it no longer matches, or no longer this long, it quiets no more
        alerts.release(rule)
    quieted = alerts.apply_rule(rule)
    AuditEvent.record(user.get_username(), "create_silence" if created else "change_silence", f"silence:{rule.pk}",
                      request, rule=rule.describe(), until=rule.until.isoformat(), comment=rule.comment,
                      quieted=quieted)
    return rule, quieted


@transaction.atomic
def end_silence(rule_id, user, request=None):
    """End a silence rule now; None when it had already ended."""
    rule = SilenceRule.objects.select_for_update().filter(pk=rule_id).first()
    if rule is None:
        raise Http404("No such silence rule.")
    if rule.until <= timezone.now():
        return None
    alerts.end_rule(rule)
    AuditEvent.record(user.get_username(), "end_silence", f"silence:{rule.pk}", request, rule=rule.describe())
    return rule


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
