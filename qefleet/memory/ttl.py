"""The TTL sweeper: deletes expired rows in short batches.

Expired rows are already invisible to every read (Expiring.objects), so the
sweeper only reclaims space. Each batch is its own short transaction with a
pause after it, so agents' writes are never starved of the SQLite write lock.
"""

import time

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import EXPIRING_MODELS


def sweep_expired(batch_size=None, pause_ms=None, now=None):
    """Delete rows that expired at or before `now`; returns {table: count}."""
    batch_size = batch_size or settings.SWEEP_BATCH_SIZE
    pause = (settings.SWEEP_PAUSE_MS if pause_ms is None else pause_ms) / 1000
    now = now or timezone.now()
    counts = {}
    for model in EXPIRING_MODELS:
        total = 0
        while True:
            with transaction.atomic():
                ids = list(
                    model.with_expired.expired(now).order_by("expires_at").values_list("pk", flat=True)[:batch_size]
                )
                # Re-check expiry in the delete itself: a row renewed since the
                # select above is no longer expired and must stay.
                _, deleted = model.with_expired.expired(now).filter(pk__in=ids).delete()
            total += deleted.get(model._meta.label, 0)
            if len(ids) < batch_size:
                break
            time.sleep(pause)
        counts[model._meta.db_table] = total
    return counts
