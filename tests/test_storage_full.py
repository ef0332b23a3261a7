"""A full disk (or the SQLite size quota) answers 503 with Retry-After, never 500."""

import sqlite3
from unittest import mock

import pytest
from django.db import OperationalError

from learning.core import engine
from learning.models import Execution, QEntry
from qefleet.api import is_storage_full
from tests.learning.helpers import recommend, report

pytestmark = pytest.mark.django_db


def full_disk(*args, **kwargs):
    raise OperationalError("database or disk is full")


def test_a_full_disk_during_a_report_answers_503_and_saves_nothing(alice):
    decision = recommend(alice)
    # Fails inside the report's transaction, after the Q-value was written.
    with mock.patch.object(engine, "decayed_epsilon", side_effect=full_disk):
        response = report(alice, decision)
    assert response.status_code == 503
    assert response["Retry-After"].isdigit()
    assert response.json()["error"] == "storage_full"
    assert Execution.objects.count() == 0
    assert QEntry.objects.count() == 0


def test_the_same_report_counts_once_space_is_back(alice):
    decision = recommend(alice)
    with mock.patch.object(engine, "decayed_epsilon", side_effect=full_disk):
        assert report(alice, decision).status_code == 503
    assert report(alice, decision).status_code == 201
    assert Execution.objects.count() == 1


def test_other_database_errors_stay_server_errors(alice):
    decision = recommend(alice)
    with mock.patch.object(engine, "decayed_epsilon", side_effect=OperationalError("disk I/O error")):
        response = report(alice, decision)
    assert response.status_code == 500
    assert response.json()["error"] == "server_error"


def sqlite_full_error():
    error = sqlite3.OperationalError("database or disk is full")
    error.sqlite_errorcode = sqlite3.SQLITE_FULL
    return error


class DiskFull(Exception):
    sqlstate = "53100"


@pytest.mark.parametrize("cause, expected", [
    (sqlite_full_error(), True),
    (DiskFull("could not extend file"), True),
    (sqlite3.OperationalError("database is locked"), False),
])
def test_storage_full_is_recognised_by_its_driver_error(cause, expected):
    error = OperationalError(str(cause))
    error.__cause__ = cause
    assert is_storage_full(error) is expected
