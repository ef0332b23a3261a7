"""`manage.py load_fleet`: a tiny run of the real harness (gunicorn, both
phases, the jobs, the accounting), so it cannot rot unnoticed."""

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.db.models import F

from learning.harness.load import LoadDatabase, check_accounting
from learning.models import QEntry, Rollback
from tests.learning.helpers import degrade, healthy_history, run_task


def load_database_url(tmp_path):
    """The backend the suite runs on: CI runs it on SQLite and on PostgreSQL."""
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{tmp_path / 'load.sqlite3'}"
    credentials = database["USER"] + (f":{database['PASSWORD']}" if database.get("PASSWORD") else "")
    return (f"postgres://{credentials}@{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}/"
            f"qefleet_load_test_{os.getpid()}")


def test_it_runs_both_phases_against_gunicorn_and_loses_no_update(tmp_path):
    out = tmp_path / "load.json"
    url = load_database_url(tmp_path)
    command = [sys.executable, "manage.py", "load_fleet", "--database-url", url, "--seconds", "2",
               "--max-tasks", "60", "--expired-rows", "300", "--workers", "2", "--out", str(out)]
    finished = subprocess.run(command, cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=180,
                              env={**os.environ, "SECRET_KEY": "load-test-key"})
    assert finished.returncode == 0, finished.stdout + finished.stderr

    results = json.loads(out.read_text())
    for name in ("steady", "beside_jobs"):
        phase = results["phases"][name]
        assert phase["tasks_completed"] > 0
        assert phase["tasks_completed"] <= 60
        assert phase["server_errors"] == 0 and phase["errors"] == 0
        assert phase["latency_ms"]["recommendation"]["n"] == phase["tasks_started"]
        assert phase["accounting"]["ok"]
    accounting = results["phases"]["beside_jobs"]["accounting"]
    total = sum(results["phases"][name]["tasks_completed"] for name in ("steady", "beside_jobs"))
    assert accounting["accepted_reports"] == accounting["execution_rows"] == total
    jobs = results["phases"]["beside_jobs"]["jobs"]
    assert {job["returncode"] for job in jobs.values()} == {0}
    assert "total: 300 deleted" in jobs["TTL sweep"]["output"]
    assert all(target["pass"] for target in results["targets"] if target["correctness"])
    assert "PASS" in finished.stdout
    if url.startswith("sqlite"):
        assert not (tmp_path / "load.sqlite3").exists()  # dropped at the end


@pytest.mark.parametrize("url", ["postgres://postgres@127.0.0.1:5432/qefleet",
                                 "postgres://postgres@db.example.com:5432/qefleet_load",
                                 "sqlite:////tmp/qefleet.sqlite3"])
def test_it_refuses_a_database_that_is_not_a_local_load_database(url):
    with pytest.raises(ValueError):
        LoadDatabase(url)


@pytest.mark.django_db
def test_it_counts_a_rolled_back_agents_visits_as_restored_and_catches_a_lost_one(alice):
    healthy_history(alice)
    degrade(alice, 30)
    assert Rollback.objects.filter(agent=alice).exists()
    accounting = check_accounting({"alice": 100})
    assert accounting["ok"] and accounting["rolled_back"] == ["alice"]
    assert accounting["execution_rows"] == 100 and accounting["visits"] == accounting["expected_visits"] < 100

    entry = QEntry.objects.filter(agent=alice, visits__gt=0).first()
    QEntry.objects.filter(pk=entry.pk).update(visits=F("visits") - 1)
    assert not check_accounting({"alice": 100})["ok"]


@pytest.mark.django_db
def test_it_expects_one_visit_per_accepted_report(alice):
    for _ in range(5):
        run_task(alice)
    assert check_accounting({"alice": 5})["ok"]
    assert not check_accounting({"alice": 6})["ok"]
