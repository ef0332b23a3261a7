"""The alerts inbox: alerts filtered by state, severity and agent, a page at
a time, with the actions' forms."""

from dataclasses import dataclass
from datetime import timedelta

from django.core.paginator import Paginator
from django.utils import timezone

from learning.alerts import MAX_SILENCE
from learning.models import Alert, AlertState, Severity

from ..params import choice, page_number, text
from .common import agents_with, options

ALERTS_PER_PAGE = 50
MINUTES = "%Y-%m-%dT%H:%M"  # what a datetime-local input holds
ALERT_STATES = {"open": "open (firing or acknowledged)", **{state.value: state.value for state in AlertState},
                "all": "all"}


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


def alert_page(alert_filter, page_number):
    alerts = alert_filter.apply(Alert.objects.select_related("agent")).order_by("-last_seen_at", "-pk")
    return Paginator(alerts, ALERTS_PER_PAGE).get_page(page_number)


def alerts_context(query):
    alert_filter = AlertFilter.from_query(query)
    now = timezone.now()
    return {
        "filter": alert_filter, "page": alert_page(alert_filter, page_number(query)),
        "states": ALERT_STATES.items(), "severities": options(Severity.values),
        "agents": options(agents_with("alerts")),
        # datetime-local inputs are naive; the silence action reads them as UTC
        # and takes a time from now to MAX_SILENCE ahead.
        "silence_default": (now + timedelta(hours=1)).strftime(MINUTES),
        "silence_earliest": now.strftime(MINUTES), "silence_latest": (now + MAX_SILENCE).strftime(MINUTES),
    }
