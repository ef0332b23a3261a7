"""The words an operator reads: states, events, job results and moments
written as sentences instead of the codes and dicts the models store.

Pure functions of stored values; the template filters in
templatetags/dashboard.py and the pages call them.
"""

from datetime import datetime

from learning.core.engine import parse_state_key
from learning.core.numbers import signed_number

# The time constraint is stored as min(ms / 300,000, 1); 1.0 means none or 5 min and more.
TIME_SCALE_MS = 300_000


def state_words(key):
    """`0.5,0.2,0.0,0.9,1.0` -> "complexity 0.5, 2 capabilities, first attempt,
    resources 0.9, no time limit". A key that does not parse is returned as it is."""
    try:
        complexity, capabilities, attempts, resources, time_limit = parse_state_key(key)
    except (ValueError, AttributeError):
        return key
    capabilities, attempts = round(capabilities * 10), round(attempts * 10)
    parts = [
        f"complexity {complexity:g}",
        f"{capabilities} capabilit{'y' if capabilities == 1 else 'ies'}",
        "first attempt" if attempts == 0 else f"{_ordinal(attempts + 1)} attempt",
        f"resources {resources:g}",
        "no time limit" if time_limit >= 1 else f"time limit about {time_limit * TIME_SCALE_MS / 60_000:.1g} min",
    ]
    return ", ".join(parts)


def _ordinal(number):
    if 10 <= number % 100 <= 20:
        return f"{number}th"
    return f"{number}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(number % 10, 'th')}"


def _mitigation(payload):
    return f"{payload.get('failure_class', 'a failure')} in {payload.get('task_type', 'a task type')}"


# An event type -> the sentence its payload makes (the agent is named around it).
EVENT_SENTENCES = {
    "learning:rollback": lambda p: (
        f"{'The safeguard' if p.get('trigger') == 'automatic' else 'An operator'} rolled back "
        f"from {p.get('from', '?')} to {p.get('to', '?')}"),
    "learning:rollback_dry_run": lambda p: (
        f"Degraded {signed_number(p['change_pct'], 1)} % against its reference; the safeguard would have rolled back "
        f"to {p.get('target') or 'its last good version'} (dry run, nothing changed)"
        if isinstance(p.get("change_pct"), (int, float)) else "The safeguard would have rolled back (dry run)"),
    "learning:failure_detected": lambda p: (
        f"A new kind of failure: {p.get('failure_class', '?')} in {p.get('task_type', '?')}"),
    "learning:pattern_discovered": lambda p: (
        f"Found a pattern worth keeping for {p.get('task_type', 'a task type')}"),
    "learning:mitigation_applied": lambda p: f"Applied a mitigation against {_mitigation(p)}",
    "learning:mitigation_withdrawn": lambda p: (
        f"Withdrew the mitigation against {_mitigation(p)}: {p.get('reason', 'it did not help')}"),
    "learning:abtest_started": lambda p: f"Started A/B test #{p.get('abtest_id', '?')} for {p.get('task_type', '?')}",
    "learning:abtest_completed": lambda p: (
        f"A/B test #{p.get('abtest_id', '?')} for {p.get('task_type', '?')} ended: "
        f"{str(p.get('state', 'decided')).replace('-', ' ')}"),
    "learning:strategy_changed": lambda p: (
        f"{'Applied' if p.get('state') == 'applied' else 'Reverted'} the strategy of A/B test "
        f"#{p.get('abtest_id', '?')} for {p.get('task_type', '?')}"),
    "learning:training": lambda p: (
        f"Learned from a {p.get('task_type', '?')} task with {p.get('strategy', '?')} "
        f"(reward {signed_number(p['reward'], 2)})" if isinstance(p.get("reward"), (int, float))
        else f"Learned from a {p.get('task_type', '?')} task"),
    "learning:feedback": lambda p: f"Received feedback rated {p.get('rating', '?')}",
    "learning:improvement": lambda p: "Recorded its progress against the baseline",
}


def event_sentence(event_type, payload):
    """A learning event as a sentence; an unknown type by its name in words."""
    payload = payload if isinstance(payload, dict) else {}
    make = EVENT_SENTENCES.get(event_type)
    if make is not None:
        try:
            return make(payload)
        except (KeyError, TypeError, ValueError):
            pass
    return event_type.split(":", 1)[-1].replace("_", " ").capitalize()


# An operator action (AuditEvent.action) -> what it did, in words; a target's kind -> its name.
ACTION_WORDS = {
    "rollback": "rolled back",
    "undo_rollback": "undid a rollback of",
    "pause_learning": "paused the learning of",
    "re_enable_learning": "resumed the learning of",
    "shadow_learning": "put",
    "promote_shadow": "promoted",
    "run_drills": "ran the statistics drills of",
    "calibrate_safeguard": "applied calibrated safeguard settings to",
    "run_cycle": "ran the improvement cycle of",
    "rebaseline": "reset the baseline of",
    "capture_version": "captured a version of",
    "abort_abtest": "aborted",
    "start_abtest": "started",
    "alert_acknowledge": "acknowledged",
    "alert_silence": "silenced",
    "alert_resolve": "resolved",
    "create_silence": "created",
    "change_silence": "changed",
    "end_silence": "ended",
    "quarantine_shared_pattern": "quarantined",
    "access_denied": "was refused access to",
    "rate_limited": "was rate-limited on",
}
TARGET_WORDS = {"alert": "alert #{}", "alerts": "{} alerts", "silence": "silence rule #{}", "abtest": "A/B test #{}",
                "shared_pattern": "shared pattern {}", "agent": "{}"}


def _reason(detail):
    return f": “{detail['reason']}”" if detail.get("reason") else ""


# What an action's audit detail (as learning/operations.py records it) adds to the sentence.
ACTION_DETAILS = {
    "rollback": lambda detail: f" from {detail.get('from_')} to {detail.get('to')}{_reason(detail)}",
    "undo_rollback": lambda detail: f" (rollback #{detail.get('rollback')}; {detail.get('to')} live again)",
    "pause_learning": _reason,
    "re_enable_learning": lambda detail: " in shadow" if detail.get("mode") == "shadow" else "",
    "shadow_learning": lambda detail: f" in shadow{_reason(detail)}",
    "promote_shadow": lambda detail: f" from shadow to active{_reason(detail)}",
    "rebaseline": lambda detail: f" at task {detail['task']}" if "task" in detail else "",
    "capture_version": lambda detail: f" ({detail['version']})" if "version" in detail else "",
}


def action_sentence(actor, action, target, detail=None):
    """`operator`, `rollback`, `agent:x` -> "operator rolled back x", and with
    its audit detail "... from v3 to v1: “score slipping”";
    `alert_silence`, `alert:12` -> "operator silenced alert #12"."""
    kind, _, name = (target or "").partition(":")
    what = TARGET_WORDS.get(kind, f"{kind} {{}}").format(name) if name else kind
    sentence = f"{actor} {ACTION_WORDS.get(action, action.replace('_', ' '))} {what}".strip()
    details = ACTION_DETAILS.get(action)
    return sentence + (details(detail) if details and isinstance(detail, dict) else "")


def _value_words(value):
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value) if value else "none"
    if isinstance(value, dict):
        return f"{len(value)} item{'' if len(value) == 1 else 's'}"
    return str(value)


def applied_source(source):
    """Where an applied strategy came from, in words: "abtest:49" -> "won A/B
    test #49"; "revert:abtest:49" -> "put back when A/B test #49's winner was
    reverted"; "memory-api" -> "set through the memory API"."""
    kind, _, test = source.rpartition(":")
    if kind == "abtest" and test.isdigit():
        return f"won A/B test #{test}"
    if kind == "revert:abtest" and test.isdigit():
        return f"put back when A/B test #{test}'s winner was reverted"
    return {"operator": "set by an operator", "memory-api": "set through the memory API"}.get(source, source)


def undecided_look(state, verdict, horizon):
    """A running or inconclusive test's latest look in words, from its
    verdict (the stored decision names the statistics: "n = 7 of 246,
    always-valid interval -62.0 to +100.0 crosses zero"); None otherwise."""
    opening = {"running": "too early to call", "inconclusive": "inconclusive, no clear difference"}.get(state)
    try:
        low, high = (value * 100 for value in verdict["interval"])
        tasks = min(verdict["control"]["n"], verdict["treatment"]["n"])
    except (KeyError, TypeError, ValueError):
        return None
    if opening is None:
        return None
    of = f" of {horizon}" if horizon else ""
    return (f"{opening}: after {tasks}{of} tasks per arm at the last look, the treatment's success rate is "
            f"somewhere from {signed_number(low, 1)} to {signed_number(high, 1)} points against the control's")


# A scheduled job's name (learning/jobs.py) -> what it does, as the heartbeat names it.
JOB_WORDS = {
    "qefleet.learning.every_slot": "slot bookkeeping: snapshots, versions, learning watch, shadow promotions",
    "qefleet.learning.improvement_cycle": "improvement cycle",
    "qefleet.learning.cycle_guard": "re-run of a lost improvement cycle",
    "qefleet.learning.share_patterns": "pattern sharing",
    "qefleet.learning.prune_history": "pruning of old history",
    "qefleet.learning.statistics_drills": "statistics drills",
    "qefleet.learning.watch_schedules": "watch for late jobs",
    "qefleet.memory.sweep_expired": "sweep of expired memory",
}


def job_words(name):
    return JOB_WORDS.get(name, name)


def every_words(minutes):
    """An interval in minutes as an operator says it: 5 -> "5 min", 60 -> "1 h", 1440 -> "1 day"."""
    if minutes % 1440 == 0:
        days = minutes // 1440
        return f"{days} day{'' if days == 1 else 's'}"
    return f"{minutes // 60} h" if minutes % 60 == 0 else f"{minutes} min"


def job_result_sentence(result):
    """What a scheduled job's result says: {"lost": None} -> "lost cycle: none";
    {"snapshots": 3, "versions": 0} -> "snapshots: 3; versions: 0"."""
    if result in (None, "", {}):
        return "nothing to report"
    if not isinstance(result, dict):
        return str(result)
    names = {"lost": "lost cycle", "stale": "late jobs"}
    return "; ".join(f"{names.get(key, key.replace('_', ' '))}: {_value_words(value)}" for key, value in result.items())


def ago(moment, now):
    """How long before `now` (both aware): "just now", "3 min ago", "2 h ago",
    "5 days ago"; a moment ahead: "in 4 min"."""
    if not isinstance(moment, datetime):
        return ""
    seconds = (now - moment).total_seconds()
    ahead = seconds < 0
    seconds = abs(seconds)
    if seconds < 45:
        return "just now" if not ahead else "in under a minute"
    if seconds < 90 * 60:
        amount = f"{round(seconds / 60)} min"
    elif seconds < 36 * 3600:
        amount = f"{round(seconds / 3600)} h"
    else:
        days = round(seconds / 86400)
        amount = f"{days} day{'' if days == 1 else 's'}"
    return f"in {amount}" if ahead else f"{amount} ago"
