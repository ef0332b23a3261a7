import pytest
from django.db import connection

pytestmark = pytest.mark.django_db

sqlite_only = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite connection settings")


def pragma(name):
    with connection.cursor() as cursor:
        cursor.execute(f"PRAGMA {name}")
        return cursor.fetchone()[0]


@sqlite_only
def test_it_uses_a_file_in_wal_mode():
    assert pragma("journal_mode") == "wal"
    assert connection.settings_dict["NAME"].endswith(".sqlite3")


@sqlite_only
def test_it_sets_the_pragmas_on_a_live_connection():
    assert pragma("synchronous") == 1  # NORMAL
    assert pragma("busy_timeout") == 5000
    assert pragma("foreign_keys") == 1
    assert pragma("temp_store") == 2  # MEMORY


@sqlite_only
def test_it_begins_transactions_immediately():
    assert connection.transaction_mode == "IMMEDIATE"


def test_it_keeps_connections_open_between_requests():
    assert connection.settings_dict["CONN_MAX_AGE"] > 0
    assert connection.settings_dict["CONN_HEALTH_CHECKS"] is True


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL path")
def test_it_talks_to_postgresql_through_psycopg3():
    import psycopg

    assert connection.connection.__class__.__module__.startswith("psycopg")
    assert psycopg.__version__.startswith("3.")
