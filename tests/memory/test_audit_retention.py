"""The audit trail is bounded: agents' refused requests are kept
AUDIT_DENIAL_RETENTION_DAYS, everything else AUDIT_RETENTION_DAYS (the
daily prune_history job); nothing else ever deletes a row."""

from datetime import timedelta

import pytest
from django.utils import timezone

from learning.jobs import prune_history
from qefleet.memory.models import AuditEvent

pytestmark = pytest.mark.django_db


def old_row(action, days, now):
    return AuditEvent.objects.create(actor="someone", action=action, target="agent:alice",
                                     at=now - timedelta(days=days))


def test_it_prunes_each_kind_of_row_past_its_retention(settings):
    settings.AUDIT_RETENTION_DAYS, settings.AUDIT_DENIAL_RETENTION_DAYS = 365, 30
    now = timezone.now()
    kept = [old_row("rollback", 364, now), old_row("access_denied", 29, now), old_row("rate_limited", 29, now)]
    old_row("rollback", 366, now)
    old_row("access_denied", 31, now)
    old_row("rate_limited", 31, now)

    assert prune_history(now)[AuditEvent._meta.db_table] == 3
    assert set(AuditEvent.objects.values_list("pk", flat=True)) == {row.pk for row in kept}


def test_the_trail_still_refuses_any_other_delete():
    row = AuditEvent.record("alice", "rollback", "agent:alice")
    with pytest.raises(TypeError):
        AuditEvent.objects.all().delete()
    with pytest.raises(TypeError):
        row.delete()
