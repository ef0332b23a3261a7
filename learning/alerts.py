"""Alerts: raised once per dedup key while open, quieted by silence rules,
acted on by operators one by one or a group at a time, notified by email, an
optional HMAC-signed webhook and an optional Slack-compatible webhook.

Info alerts ask for no decision: they are kept for the inbox's digest and
never notified; warnings and high ones are the inbox."""

import hashlib
import hmac
import json
import logging
import urllib.request
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .models import SEVERITY_RANK, Alert, AlertState, Severity, SilenceRule

logger = logging.getLogger("qefleet.alerts")

AUTO_RESOLVE_AFTER = 3  # healthy checks in a row
# The longest an operator can silence an alert: past it, a problem nobody
# fixed notifies again rather than staying quiet for good.
MAX_SILENCE = timedelta(days=30)


def raise_alert(kind, severity, summary, numbers, agent=None, dedup_key=None, task_type=""):
    """Open an alert, or count another occurrence of the open one with the
    same dedup key; notifies after commit when a new alert fires that no
    silence rule quiets and that asks for a decision (not info)."""
    dedup_key = dedup_key or f"{kind}:{agent.agent_id if agent else 'fleet'}"
    now = timezone.now()
    alert = Alert.objects.open().filter(dedup_key=dedup_key).first()
    if alert is not None:
        alert.occurrences += 1
        alert.numbers = numbers
        alert.last_seen_at = now
        alert.save(update_fields=["occurrences", "numbers", "last_seen_at"])
        return alert, False
    alert = Alert(agent=agent, kind=kind, task_type=task_type, severity=severity, summary=summary[:300],
                  numbers=numbers, dedup_key=dedup_key, created_at=now, last_seen_at=now)
    rule = next((rule for rule in SilenceRule.objects.active(now).order_by("-until") if rule.matches(alert)), None)
    if rule is not None:
        alert.silenced_until, alert.silenced_by = rule.until, rule
    alert.save()
    if rule is None and severity != Severity.INFO:
        # robust: a broker that is down must not fail the request that raised it.
        transaction.on_commit(lambda: _queue_notification(alert.pk), robust=True)
    return alert, True


def _queue_notification(alert_id):
    from django_q.tasks import async_task

    async_task("learning.alerts.notify", alert_id)


def message(alert):
    return {"id": alert.pk, "kind": alert.kind, "severity": alert.severity, "summary": alert.summary,
            "agent": alert.agent_id and alert.agent.agent_id, "numbers": alert.numbers,
            "created_at": alert.created_at.isoformat()}


def slack_message(alert):
    """The alert as a Slack incoming-webhook body: `text` for notifications
    and clients without blocks, and blocks with the facts."""
    where = f" · agent {alert.agent.agent_id}" if alert.agent_id else ""
    where += f" · {alert.task_type}" if alert.task_type else ""
    headline = f"[QE Fleet {alert.severity}] {alert.summary}"
    numbers = ", ".join(f"{name} {value}" for name, value in alert.numbers.items()) or "none"
    return {"text": headline, "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{_slack_escape(headline)}*"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _slack_escape(
            f"{alert.kind}{where} · alert {alert.pk} · {alert.created_at:%Y-%m-%d %H:%M:%S} UTC · "
            f"measured: {numbers}")}]},
    ]}


def _slack_escape(text):
    """Slack reads &, < and > as markup (links, mentions); agents name tasks."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _post_json(url, data, headers=None):
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(request, timeout=5):
        pass


def notify(alert_id):
    """Email the operators and call the webhooks, unless the alert is silenced."""
    alert = Alert.objects.select_related("agent").filter(pk=alert_id).first()
    if alert is None or (alert.silenced_until and alert.silenced_until > timezone.now()):
        return "skipped"
    body = message(alert)
    if settings.ALERT_EMAILS:
        send_mail(f"[QE Fleet {alert.severity}] {alert.summary}", json.dumps(body, indent=2),
                  settings.DEFAULT_FROM_EMAIL, settings.ALERT_EMAILS)
    if settings.ALERT_WEBHOOK_URL:
        data = json.dumps(body, separators=(",", ":")).encode()
        signature = hmac.new(settings.ALERT_WEBHOOK_SECRET.encode(), data, hashlib.sha256).hexdigest()
        _post_json(settings.ALERT_WEBHOOK_URL, data, {"X-QEFleet-Signature": f"sha256={signature}"})
    if settings.ALERT_SLACK_WEBHOOK_URL:
        _post_json(settings.ALERT_SLACK_WEBHOOK_URL, json.dumps(slack_message(alert)).encode())
    return "sent"


def resolve_healthy(agent, healthy_checks, learning_enabled=True):
    """Resolve the agent's open safeguard alerts after enough healthy checks.
    While its learning is off (rolled back or frozen) they stay open: an
    operator still has to decide, and healthy checks of a restored state do
    not decide for them."""
    if healthy_checks < AUTO_RESOLVE_AFTER or not learning_enabled:
        return 0
    return Alert.objects.open().filter(agent=agent, kind__startswith="safeguard").update(
        state=AlertState.RESOLVED, resolved_at=timezone.now(), note="Resolved by healthy safeguard checks.")


def resolve_cleared(kind, still_firing, note):
    """Resolve the open alerts of `kind` whose condition has cleared: every
    one whose dedup key is not in `still_firing`."""
    return Alert.objects.open().filter(kind=kind).exclude(dedup_key__in=still_firing).update(
        state=AlertState.RESOLVED, resolved_at=timezone.now(), note=note)


def acknowledge(alert, user, note=""):
    """Someone is on it: who, when and why. Idempotent."""
    if alert.state == AlertState.FIRING:
        alert.state = AlertState.ACKNOWLEDGED
        alert.acknowledged_by = user
        alert.acknowledged_at = timezone.now()
        alert.note = note
        alert.save(update_fields=["state", "acknowledged_by", "acknowledged_at", "note"])
    return alert


def silence(alert, until):
    """No notifications until `until` (in the future, at most MAX_SILENCE away)."""
    alert.silenced_until = until
    alert.save(update_fields=["silenced_until"])
    return alert


def apply_rule(rule):
    """Quiet the open alerts a new silence rule matches until it ends
    (an alert silenced for longer keeps its longer silence)."""
    matched = rule.matching(Alert.objects.open()).filter(Q(silenced_until__isnull=True) | Q(silenced_until__lt=rule.until))
    return matched.update(silenced_until=rule.until, silenced_by=rule)


def release(rule, now=None):
    """The alerts `rule` quieted are heard again (it ended or was edited;
    apply_rule quiets again what it still matches)."""
    return rule.alerts.filter(silenced_until__gt=now or timezone.now()).update(silenced_until=None, silenced_by=None)


def end_rule(rule, now=None):
    """End a silence rule now: the alerts it quieted are heard again."""
    now = now or timezone.now()
    release(rule, now)
    rule.until = now
    rule.save(update_fields=["until"])
    return rule


@dataclass
class AlertGroup:
    """Open alerts of one kind, across agents and task types: one card."""

    kind: str
    alerts: list

    @property
    def severity(self):
        return min((alert.severity for alert in self.alerts), key=SEVERITY_RANK.__getitem__)

    @property
    def last_seen_at(self):
        return max(alert.last_seen_at for alert in self.alerts)

    @property
    def count(self):
        return len(self.alerts)

    @property
    def agents(self):
        return sorted({alert.agent.agent_id for alert in self.alerts if alert.agent_id})

    @property
    def task_types(self):
        return sorted({alert.task_type for alert in self.alerts if alert.task_type})

    @property
    def firing(self):
        return sum(alert.state == AlertState.FIRING for alert in self.alerts)


def grouped(alerts):
    """Alerts (an iterable) grouped by kind, the most severe group first,
    then the most recent; inside a group, likewise."""
    groups = {}
    for alert in alerts:
        groups.setdefault(alert.kind, []).append(alert)

    def order(alert):
        return SEVERITY_RANK[alert.severity], -alert.last_seen_at.timestamp(), -alert.pk

    ordered = [AlertGroup(kind, sorted(members, key=order)) for kind, members in groups.items()]
    return sorted(ordered, key=lambda group: (SEVERITY_RANK[group.severity], -group.last_seen_at.timestamp(),
                                              group.kind))


def resolve(alert, note=""):
    if alert.state != AlertState.RESOLVED:
        alert.state = AlertState.RESOLVED
        alert.resolved_at = timezone.now()
        alert.note = note or alert.note
        alert.save(update_fields=["state", "resolved_at", "note"])
    return alert
