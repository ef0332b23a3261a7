"""The alerts inbox: open alerts grouped by kind into cards (the most severe
and most recent first) that an operator acts on a card at a time; the
digest of info alerts, which ask for no decision; the alerts silence rules
quiet; and the silence rules themselves, with the form that makes one."""

from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from learning.alerts import MAX_SILENCE, grouped
from learning.models import Alert, AlertState, Severity, SilenceRule
from qefleet.memory.models import Agent

from ..params import BadParameter, choice, moment, text
from .common import agents_with, options

# The most alerts a page lists (the newest); past it the page says so. An
# inbox that long is a storm a silence rule should quiet, not a list to read.
MAX_ALERTS = 500
MINUTES = "%Y-%m-%dT%H:%M"  # what the time inputs hold: ISO, 24-hour
ALERT_STATES = {"open": "open (firing or acknowledged)", **{state.value: state.value for state in AlertState},
                "all": "all"}
ENDED_RULES_SHOWN = timedelta(days=1)  # ended silence rules stay listed this long
# What each kind of alert is about, as a card's title.
KIND_TITLES = {
    "safeguard:rollback": "Automatic rollbacks: learning is off until reviewed",
    "safeguard:rollback_failed": "Rollbacks that failed",
    "safeguard:operator_needed": "Degraded agents the safeguard will not roll back again",
    "safeguard:frozen": "Degraded agents whose learning the safeguard froze",
    "safeguard:degraded": "Degraded agents",
    "safeguard:dry_run": "Degraded agents (safeguard in dry run)",
    "abtest:srm": "A/B tests aborted: sample ratio mismatch",
    "abtest:reverted": "Applied strategies reverted after degrading",
    "failure:needs_operator": "Failures no strategy change fixes",
    "schedule:stale": "Scheduled jobs late or failing",
}


@dataclass
class AlertFilter:
    state: str = "open"
    severity: str = ""
    agent: str = ""

    @classmethod
    def from_query(cls, query):
        return cls(state=choice(query, "state", ALERT_STATES, "open"),
                   severity=choice(query, "severity", Severity.values), agent=text(query, "agent"))

    def apply(self, alerts):
        if self.state == "open":
            alerts = alerts.open()
        elif self.state != "all":
            alerts = alerts.filter(state=self.state)
        if self.severity:
            alerts = alerts.filter(severity=self.severity)
        if self.agent:
            alerts = alerts.filter(agent__agent_id=self.agent)
        return alerts


@dataclass
class Inbox:
    """The filtered alerts in three parts, each grouped into cards."""

    decisions: list  # warning and high, not silenced: the inbox proper
    digest: list  # info: no decision asked
    silenced: list
    total: int
    shown: int

    @property
    def decision_count(self):
        return sum(group.count for group in self.decisions)

    @property
    def digest_count(self):
        return sum(group.count for group in self.digest)

    @property
    def silenced_count(self):
        return sum(group.count for group in self.silenced)


def inbox(alert_filter, now):
    """One query for the newest MAX_ALERTS matching alerts and one to count them."""
    matching = alert_filter.apply(Alert.objects.select_related("agent", "silenced_by__agent"))
    alerts = list(matching.order_by("-last_seen_at", "-pk")[:MAX_ALERTS])
    total = len(alerts) if len(alerts) < MAX_ALERTS else matching.count()
    silenced = [alert for alert in alerts if alert.silenced_until and alert.silenced_until > now]
    audible = [alert for alert in alerts if not (alert.silenced_until and alert.silenced_until > now)]
    parts = Inbox(decisions=grouped(alert for alert in audible if alert.severity != Severity.INFO),
                  digest=grouped(alert for alert in audible if alert.severity == Severity.INFO),
                  silenced=grouped(silenced), total=total, shown=len(alerts))
    for group in (*parts.decisions, *parts.digest, *parts.silenced):
        group.title = KIND_TITLES.get(group.kind, group.kind)
    return parts


def silence_rules(now):
    """Active rules, the soonest to end first, then those ended in the last day."""
    rules = list(SilenceRule.objects.filter(until__gt=now - ENDED_RULES_SHOWN).select_related("agent")
                 .order_by("until"))
    return [rule for rule in rules if rule.until > now], [rule for rule in rules if rule.until <= now][::-1]


def silence_rule_input(form):
    """The new silence rule's fields from the inbox's form (400 naming the
    field for what it cannot use)."""
    now = timezone.now()
    agent_id = text(form, "agent", max_length=64)
    agent = Agent.objects.filter(agent_id=agent_id).first() if agent_id else None
    if agent_id and agent is None:
        raise BadParameter("agent must name a registered agent.")
    return {"kind": text(form, "kind", max_length=32).strip(), "agent": agent,
            "task_type": text(form, "task_type", max_length=64).strip(),
            "severity": choice(form, "severity", Severity.values),
            "until": moment(form, "until", now, now + MAX_SILENCE),
            "comment": text(form, "comment", max_length=500).strip()}


def alerts_context(query):
    alert_filter = AlertFilter.from_query(query)
    now = timezone.now()
    active_rules, ended_rules = silence_rules(now)
    kinds = sorted(set(KIND_TITLES) | set(Alert.objects.values_list("kind", flat=True).distinct()))
    return {
        "filter": alert_filter, "inbox": inbox(alert_filter, now),
        "states": ALERT_STATES.items(), "severities": options(Severity.values),
        "agents": options(agents_with("alerts")), "kinds": kinds, "kind_titles": KIND_TITLES,
        "active_rules": active_rules, "ended_rules": ended_rules,
        "rule_kind": choice(query, "kind", kinds),
        # the time inputs are naive; the silence actions read them as UTC
        # and take a time from now to MAX_SILENCE ahead.
        "silence_default": (now + timedelta(hours=1)).strftime(MINUTES),
        "rule_default": (now + timedelta(hours=4)).strftime(MINUTES),
        "silence_latest": (now + MAX_SILENCE).strftime(MINUTES),
    }
