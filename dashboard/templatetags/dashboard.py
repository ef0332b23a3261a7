import math
from datetime import timezone as dt_timezone

from django import template
from django.utils import timezone
from django.utils.html import format_html

from learning.core.numbers import signed_number

from .. import words

register = template.Library()

# Words that need nothing of the template: dashboard/words.py's functions as they are.
for _plain_words in (words.state_words, words.applied_source, words.job_words, words.every_words):
    register.filter(_plain_words.__name__, _plain_words)


@register.filter
def undecided_look(test):
    """A running or inconclusive A/B test's latest look in words, or None."""
    return words.undecided_look(test.state, test.verdict, test.horizon)


@register.filter
def event_sentence(event):
    """A learning event (its type and payload) as a sentence."""
    return words.event_sentence(event.type, event.payload)


@register.filter
def audit_sentence(row):
    """An audit row as "who did what to what"."""
    return words.action_sentence(row.actor, row.action, row.target, row.detail)


@register.filter
def job_result(result):
    """A scheduled job's result dict in words."""
    return words.job_result_sentence(result)


@register.simple_tag
def when(moment, seconds=True):
    """A moment as ISO 24-hour UTC with how long ago it was beside it."""
    if moment is None:
        return ""
    shown = moment.astimezone(dt_timezone.utc)
    text = f"{shown:%Y-%m-%d %H:%M:%S}" if seconds else f"{shown:%Y-%m-%d %H:%M}"
    return format_html('<time datetime="{}">{} UTC</time> <span class="ago">({})</span>', moment.isoformat(), text,
                       words.ago(moment, timezone.now()))


@register.filter
def percent(value, digits=1):
    """0.123 -> "12.3 %"; nothing (None, or a missing object's "") -> ""."""
    if not isinstance(value, (int, float)):
        return ""
    return f"{value * 100:.{digits}f} %"


@register.filter
def signed_percent(value, digits=1):
    """0.123 -> "+12.3 %"; nothing -> ""."""
    if not isinstance(value, (int, float)):
        return ""
    return f"{signed_number(value * 100, digits)} %"


@register.filter
def signed(value, digits=3):
    """0.3 -> "+0.300"; nothing -> ""."""
    if not isinstance(value, (int, float)):
        return ""
    return signed_number(value, digits)


@register.filter
def points(value, digits=1):
    """A difference of two rates: 0.064 -> "+6.4 points"; nothing -> ""."""
    if not isinstance(value, (int, float)):
        return ""
    return f"{signed_number(value * 100, digits)} points"


@register.filter
def ms(value):
    """A duration: 0.0123 -> "0.012 ms", 4.56 -> "4.56 ms", 123.4 -> "123 ms";
    beyond the overhead histogram's range: "under 0.01 ms", "over 10 s";
    nothing -> ""."""
    if not isinstance(value, (int, float)):
        return ""
    if math.isinf(value):
        return "over 10 s"
    if value < 0.01:
        return "under 0.01 ms"
    return f"{value:.2g} ms" if value < 0.1 else f"{value:.3g} ms" if value < 100 else f"{value:.0f} ms"


@register.simple_tag(takes_context=True)
def url_with(context, name, value):
    """The current URL's query string with one parameter set to `value`."""
    query = context["request"].GET.copy()
    query[name] = value
    return f"?{query.urlencode()}"


@register.simple_tag(takes_context=True)
def other_params(context, name):
    """The current query's (name, value) pairs but `name`'s: what a form
    that sets `name` keeps as hidden fields."""
    return [(key, value) for key, values in context["request"].GET.lists() if key != name for value in values]


# (kind, value) -> (icon, words, tone): the words carry the state; the icon
# and the tone's colour only repeat it.
BADGES = {
    ("safeguard", "ok"): ("✓", "ok", "good"),
    ("safeguard", "warning"): ("!", "warning", "warn"),
    ("safeguard", "degraded"): ("✗", "degraded", "bad"),
    ("safeguard", "insufficient-data"): ("…", "insufficient data", "neutral"),
    ("learning", True): ("●", "learning on", "good"),
    ("learning", False): ("○", "learning off", "bad"),
    ("mode", "shadow"): ("◐", "in shadow", "warn"),
    ("severity", "high"): ("▲", "high", "bad"),
    ("severity", "warning"): ("!", "warning", "warn"),
    ("severity", "info"): ("i", "info", "neutral"),
    ("alert", "firing"): ("●", "firing", "bad"),
    ("alert", "acknowledged"): ("◐", "acknowledged", "warn"),
    ("alert", "resolved"): ("✓", "resolved", "good"),
    ("job", True): ("✓", "on time", "good"),
    ("job", False): ("⚠", "stale", "bad"),
    ("abtest", "draft"): ("✎", "draft", "neutral"),
    ("abtest", "running"): ("▶", "running", "warn"),
    ("abtest", "winner"): ("★", "winner", "good"),
    ("abtest", "control-wins"): ("◆", "control wins", "neutral"),
    ("abtest", "inconclusive"): ("≈", "inconclusive", "neutral"),
    ("abtest", "aborted"): ("■", "aborted", "bad"),
    ("abtest", "applied"): ("✓", "applied", "good"),
    ("abtest", "monitoring"): ("◔", "applied, monitoring", "warn"),
    ("abtest", "kept"): ("✓", "applied and kept", "good"),
    ("abtest", "reverted"): ("↺", "reverted", "bad"),
    ("band", "in-band"): ("✓", "within its band", "good"),
    ("band", "out-of-band"): ("✗", "out of its band", "bad"),
    ("band", "out-of-reach"): ("◌", "out of reach at this noise", "warn"),
    ("srm", "ok"): ("✓", "sample ratio ok", "good"),
    ("srm", "mismatch"): ("✗", "sample ratio mismatch", "bad"),
    ("srm", "pending"): ("…", "sample ratio: too few tasks yet", "neutral"),
    ("time-guardrail", "held"): ("✓", "time guardrail held", "good"),
    ("time-guardrail", "violated"): ("✗", "time guardrail violated", "bad"),
    ("time-guardrail", "pending"): ("…", "time guardrail: no tasks yet", "neutral"),
    ("time-guardrail", "moot"): ("–", "time guardrail: not needed", "neutral"),
    ("errors-guardrail", "held"): ("✓", "error guardrail held", "good"),
    ("errors-guardrail", "violated"): ("✗", "error guardrail violated", "bad"),
    ("errors-guardrail", "pending"): ("…", "error guardrail: no tasks yet", "neutral"),
    ("errors-guardrail", "moot"): ("–", "error guardrail: not needed", "neutral"),
    ("shared", "active"): ("●", "active", "good"),
    ("shared", "quarantined"): ("⊘", "quarantined", "bad"),
    ("import", "probation"): ("…", "probation", "warn"),
    ("import", "active"): ("✓", "active", "good"),
    ("import", "rejected"): ("✗", "rejected", "neutral"),
    ("import", "quarantined"): ("⊘", "quarantined", "bad"),
    ("mitigation", "active"): ("●", "active", "warn"),
    ("mitigation", "effective"): ("✓", "effective", "good"),
    ("mitigation", "ineffective"): ("✗", "not shown to help", "bad"),
    ("mitigation", "withdrawn"): ("↺", "withdrawn", "neutral"),
    ("triage", "healthy"): ("✓", "healthy", "good"),
    ("triage", "warning"): ("!", "warning", "warn"),
    ("triage", "degraded"): ("✗", "degraded", "bad"),
    ("triage", "learning-off"): ("○", "learning off", "bad"),
    ("triage", "waiting"): ("…", "no verdict yet", "neutral"),
    ("band", "below-zero"): ("▼", "below zero", "bad"),
    ("band", "below-target"): ("▽", "below target", "warn"),
    ("band", "on-target"): ("▲", "on target", "good"),
    ("trend", "rising"): ("↗", "rising", "good"),
    ("trend", "falling"): ("↘", "falling", "bad"),
    ("trend", "flat"): ("→", "flat", "neutral"),
    ("trend", "unknown"): ("…", "no trend yet", "neutral"),
    ("budget", True): ("✓", "within budget", "good"),
    ("budget", False): ("✗", "over budget", "bad"),
    ("learning-health", "learning"): ("✓", "learning", "good"),
    ("learning-health", "not-learning"): ("✗", "not learning", "bad"),
    ("learning-health", "mostly-default"): ("!", "mostly default", "warn"),
    ("learning-health", "too-early"): ("…", "too early to tell", "neutral"),
    ("learning-health", "learning-off"): ("○", "learning off", "neutral"),
}


@register.simple_tag
def badge(kind, value):
    icon, words, tone = BADGES.get((kind, value), ("", str(value), "neutral"))
    return format_html('<span class="badge badge-{}"><span aria-hidden="true">{}</span> {}</span>', tone, icon, words)
