"""The live learning overhead is written after the report's transaction
has committed, never inside it (it adds no write to a report)."""

import pytest
from django.db import connection

from learning import overhead
from learning.models import OverheadMinuteQuerySet
from tests.learning.helpers import recommend, report, task

pytestmark = pytest.mark.django_db


def test_it_writes_once_the_reports_transaction_is_over(alice, overhead_buffer, monkeypatch):
    overhead_buffer.flush_seconds = 0  # every request writes
    decision = recommend(alice)
    outside = list(connection.savepoint_ids)
    seen = {}
    real_lap, real_add = overhead.lap, OverheadMinuteQuerySet.add

    def lap(stage):
        seen.setdefault("inside", list(connection.savepoint_ids))
        real_lap(stage)

    def add(queryset, tallies):
        seen["writing"] = list(connection.savepoint_ids)
        real_add(queryset, tallies)

    monkeypatch.setattr(overhead, "lap", lap)
    monkeypatch.setattr(OverheadMinuteQuerySet, "add", add)
    assert report(alice, decision, task()).status_code == 201
    assert len(seen["inside"]) > len(outside) and seen["writing"] == outside
