"""The fleet overview at /ops/."""

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from django_q.models import Schedule, Task

from dashboard import charts
from learning import alerts, tracker
from learning.models import LearningProfile, Rollback, Safeguard
from qefleet import schedules
from qefleet.memory.fleet import register_demo_fleet
from qefleet.memory.models import Agent
from tests.learning.drill_helpers import logged_history
from tests.learning.helpers import run_task

pytestmark = pytest.mark.django_db

SWEEPER = "qefleet.memory.sweep_expired"


def test_it_requires_a_login():
    response = Client().get("/ops/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/ops/"


def test_it_refuses_a_user_without_a_role():
    client = Client()
    client.force_login(User.objects.create_user("nobody"))
    assert client.get("/ops/").status_code == 403


def test_it_shows_every_agent_at_a_glance(viewer, alice, bob):
    for _ in range(20):
        run_task(alice)
    alerts.raise_alert("safeguard:degraded", "high", "alice degraded", {}, alice)
    response = viewer.get("/ops/")
    assert response.status_code == 200
    rows = {row.agent.agent_id: row for row in response.context["rows"]}
    assert set(rows) == {"alice", "bob"}
    assert rows["alice"].score is not None and rows["alice"].open_alerts == 1
    assert rows["bob"].score is None and rows["bob"].profile is None
    page = response.content.decode()
    assert 'href="/ops/agents/alice/"' in page and "no verdict yet" in page
    assert 'href="/ops/alerts/?agent=alice"' in page
    assert rows["alice"].sparkline.count("<polyline") == 1 and rows["bob"].sparkline is None


def test_the_table_the_chart_and_the_fleet_metrics_show_one_change_on_the_tasks_they_name(viewer, alice):
    for _ in range(50):
        run_task(alice)
    for _ in range(17):  # 10 in a snapshot, 7 since: the latest snapshot's change is already old
        run_task(alice, success=False)
    profile = LearningProfile.objects.get(agent=alice)
    score, change = tracker.current_improvement(alice, profile)
    response = viewer.get("/ops/")
    [row] = response.context["rows"]
    assert (row.score, row.improvement) == (pytest.approx(score), pytest.approx(change))
    assert response.context["metrics"]["fleet_improvement_rate"] == pytest.approx(change)
    figure = json.loads(response.context["change_figure"])
    assert figure["data"][0]["x"] == [pytest.approx(change * 100)]
    page = " ".join(response.content.decode().split())
    assert "Score<span" in page and "Change vs baseline<span" in page
    assert "each agent's latest 50 tasks" in page


def test_the_safeguard_cell_says_it_measures_against_the_safeguard_reference(viewer, alice):
    run_task(alice)
    Safeguard.objects.update_or_create(agent=alice, defaults={"state": "degraded", "change_pct": -7.24})
    page = " ".join(viewer.get("/ops/").content.decode().split())
    assert "-7.2 %</span> vs its reference" in page


def test_it_charts_the_change_against_the_baseline(viewer, alice):
    for _ in range(50):
        run_task(alice)
    for _ in range(10):
        run_task(alice, success=False)
    figure = json.loads(viewer.get("/ops/").context["change_figure"])
    assert figure["data"][0]["y"] == ["alice"]
    assert figure["data"][0]["text"][0].startswith("▼ -")
    assert figure["layout"]["annotations"][0]["text"] == "target +20 %"


def test_a_change_that_rounds_to_zero_reads_plus_zero_and_is_not_marked_below_zero(viewer, alice, monkeypatch):
    run_task(alice)
    monkeypatch.setattr(tracker, "current_scores", lambda profiles: {alice.pk: (0.8, -0.0004)})
    response = viewer.get("/ops/")
    [row] = response.context["rows"]
    assert row.band == "below-target" and charts.BAND_COLOURS["below-target"] in row.change_bar
    assert json.loads(response.context["change_figure"])["data"][0]["text"] == ["▽ +0.0 %"]
    page = " ".join(response.content.decode().split())
    assert '<span class="band band-below-target">+0.0 %' in page and "-0.0 %" not in page


def test_it_shows_the_loop_heartbeat_with_stale_jobs_marked(viewer):
    Schedule.objects.filter(name="qefleet.learning.watch_schedules").update(
        next_run=timezone.now() - timedelta(hours=2))
    response = viewer.get("/ops/")
    beats = {beat["job"].name: beat for beat in response.context["jobs"]}
    assert "is a cluster running?" in beats["qefleet.learning.watch_schedules"]["stale"]
    assert beats[SWEEPER]["stale"] is None
    page = response.content.decode()
    late = heartbeat_row(page, "qefleet.learning.watch_schedules")
    assert "stale" in late and "is a cluster running?" in late and "on time" not in late
    on_time = heartbeat_row(page, SWEEPER)
    assert "on time" in on_time and "stale" not in on_time


def heartbeat_row(page, job):
    """The heartbeat table's row of one job."""
    row = page[page.index(f"<code>{job}</code>"):]
    return row[:row.index("</tr>")]


def test_it_shows_each_jobs_last_success_and_what_it_did(viewer):
    stopped = timezone.now()
    Task.objects.create(id="sweep", name="sweep", func="learning.jobs.sweep_expired", group=SWEEPER,
                        started=stopped - timedelta(milliseconds=250), stopped=stopped, success=True,
                        result={"deleted": 12})
    row = heartbeat_row(viewer.get("/ops/").content.decode(), SWEEPER)
    assert "in 250 ms" in row and "deleted: 12" in row and "on time" in row


def test_it_shows_the_fleet_learning_metrics(viewer, alice):
    page = viewer.get("/ops/").content.decode()
    section = page[page.index('id="learning-heading"'):page.index('id="heartbeat-heading"')]
    assert "Patterns shared" in section and "Cross-agent imports" in section and 'href="/ops/patterns/"' in section
    assert "no agent has a baseline yet" in section


def test_it_keeps_to_the_query_budget_for_the_whole_demo_fleet(viewer, django_assert_max_num_queries):
    register_demo_fleet()
    # Every agent learning against a baseline: the fleet metrics must not ask once per agent.
    LearningProfile.objects.bulk_create([LearningProfile(agent=agent, baseline_score=0.5, task_count=60)
                                         for agent in Agent.objects.all()])
    # Every job has run, and one's last run failed: the heartbeat reads them in two queries, not two per job.
    now = timezone.now()
    for index, job in enumerate(schedules.jobs()):
        Task.objects.create(id=f"ok-{index}", name=job.name, func=job.func, group=job.name, started=now, stopped=now,
                            success=True)
        Task.objects.create(id=f"then-{index}", name=job.name, func=job.func, group=job.name,
                            started=now, stopped=now + timedelta(seconds=1), success=job.name.endswith("slot"))
    with django_assert_max_num_queries(20):
        response = viewer.get("/ops/")
    assert len(response.context["rows"]) == 17 and response.context["metrics"]["learning_agents"] == 17


def test_it_shows_incidents_prevented_with_the_method(viewer, alice):
    logged_history(alice, tasks=100)
    Rollback.objects.create(agent=alice, automatic=True, numbers={"reference": 0.8, "window_score": 0.7})
    page = viewer.get("/ops/").content.decode()
    section = page[page.index('id="incidents-heading"'):]
    assert "automatic rollback" in section and "How it is estimated" in section


def test_the_state_tiles_add_up_to_the_fleet(viewer, alice, bob):
    Safeguard.objects.create(agent=alice, state="ok")
    response = viewer.get("/ops/")
    tiles = response.context["tiles"]
    assert (tiles["healthy"], tiles["waiting"]) == (1, 1)
    assert 'href="?range=24h&amp;state=waiting"><span class="tile-number">1</span>' in response.content.decode()
