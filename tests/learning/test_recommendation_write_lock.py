"""A recommendation holds SQLite's only write lock for its one INSERT, not
while it reads and chooses: under transaction_mode=IMMEDIATE a transaction
around it took the lock at BEGIN, and every other worker's write (the next
report, each request's rate-limit count) waited behind its reads."""

import sqlite3

import pytest
from django.db import connection

from learning import services
from learning.models import Decision
from tests.learning.helpers import recommend

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("strategy_catalog"),
    pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's database-wide write lock"),
]


def test_it_leaves_the_write_lock_free_while_it_chooses(alice, monkeypatch):
    other_writer = sqlite3.connect(connection.settings_dict["NAME"], timeout=0, isolation_level=None)
    while_choosing = []
    real_policy = services._policy

    def policy(*args, **kwargs):
        try:
            other_writer.execute("BEGIN IMMEDIATE")  # fails at once while anyone holds the write lock
            other_writer.execute("ROLLBACK")
            while_choosing.append("free")
        except sqlite3.OperationalError as error:
            while_choosing.append(str(error))
        return real_policy(*args, **kwargs)

    monkeypatch.setattr(services, "_policy", policy)
    try:
        body = recommend(alice)
    finally:
        other_writer.close()
    assert while_choosing == ["free"]
    assert Decision.objects.filter(pk=body["decision_id"]).exists()
