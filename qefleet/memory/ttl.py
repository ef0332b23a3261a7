"""Deleting old rows in short batches, and the TTL sweeper built on it.

Expired rows are already invisible to every read (Expiring.objects), so the
sweeper only reclaims space. Each batch is its own short transaction with a
pause after it, so agents' writes are never starved of the SQLite write lock.
"""

import time

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import EXPIRING_MODELS


def delete_in_batches(queryset, order_by, batch_size=None, pause_ms=None):
    """Delete the rows of `queryset` a batch at a time; returns how many.

    The filter is applied again in each delete, so a row that stopped
    matching since it was selected (an entry renewed meanwhile) stays.
    """
    batch_size = batch_size or settings.SWEEP_BATCH_SIZE
    pause = (settings.SWEEP_PAUSE_MS if pause_ms is None else pause_ms) / 1000
    label = queryset.model._meta.label
    total = 0
    while True:
        with transaction.atomic():
            ids = list(queryset.order_by(order_by).values_list("pk", flat=True)[:batch_size])
            _, deleted = queryset.filter(pk__in=ids).delete()
        total += deleted.get(label, 0)
        if len(ids) < batch_size:
            return total
        time.sleep(pause)


def sweep_expired(batch_size=None, pause_ms=None, now=None):
    """Delete rows that expired at or before `now`; returns {table: count}."""
    now = now or timezone.now()
    return {
        model._meta.db_table: delete_in_batches(model.with_expired.expired(now), "expires_at", batch_size, pause_ms)
        for model in EXPIRING_MODELS
    }
