"""Incidents prevented (learning/incidents.py) as a self-contained partial:
`incidents_context` for any page that includes dashboard/_incidents_prevented.html."""

from datetime import timedelta

from django.utils import timezone

from learning import incidents
from qefleet.memory.models import Agent

FLEET_PAGE_DAYS = 90  # the executions the estimate counts are kept this long


def incidents_context(agents=None, start=None, end=None, now=None):
    """{"incidents_prevented": ...} over `agents` (an Agent queryset; default: every agent) from
    `start` (default: FLEET_PAGE_DAYS ago) to `end` (default: now)."""
    now = now or timezone.now()
    found = incidents.prevented(
        Agent.objects.all() if agents is None else agents,
        start or now - timedelta(days=FLEET_PAGE_DAYS),
        end or now,
        now,
    )
    return {"incidents_prevented": {**found, "days": None if start else FLEET_PAGE_DAYS}}
