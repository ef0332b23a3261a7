"""Alerts: raised once per dedup key while open, acted on by operators,
notified by email and an optional HMAC-signed webhook."""

import hashlib
import hmac
import json
import logging
import urllib.request
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from .models import Alert, AlertState

logger = logging.getLogger("qefleet.alerts")

AUTO_RESOLVE_AFTER = 3  # healthy checks in a row
# The longest an operator can silence an alert: past it, a problem nobody
# fixed notifies again rather than staying quiet for good.
MAX_SILENCE = timedelta(days=30)


def raise_alert(kind, severity, summary, numbers, agent=None, dedup_key=None):
    """Open an alert, or count another occurrence of the open one with the
    same dedup key; notifies after commit when a new alert fires."""
    dedup_key = dedup_key or f"{kind}:{agent.agent_id if agent else 'fleet'}"
    now = timezone.now()
    alert = Alert.objects.open().filter(dedup_key=dedup_key).first()
    if alert is not None:
        alert.occurrences += 1
        alert.numbers = numbers
        alert.last_seen_at = now
        alert.save(update_fields=["occurrences", "numbers", "last_seen_at"])
        return alert, False
    alert = Alert.objects.create(agent=agent, kind=kind, severity=severity, summary=summary[:300], numbers=numbers,
                                 dedup_key=dedup_key, created_at=now, last_seen_at=now)
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


def notify(alert_id):
    """Email the operators and call the webhook, unless the alert is silenced."""
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
        request = urllib.request.Request(settings.ALERT_WEBHOOK_URL, data=data, method="POST", headers={
            "Content-Type": "application/json", "X-QEFleet-Signature": f"sha256={signature}"})
        with urllib.request.urlopen(request, timeout=5):
            pass
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


def resolve(alert, note=""):
    if alert.state != AlertState.RESOLVED:
        alert.state = AlertState.RESOLVED
        alert.resolved_at = timezone.now()
        alert.note = note or alert.note
        alert.save(update_fields=["state", "resolved_at", "note"])
    return alert
