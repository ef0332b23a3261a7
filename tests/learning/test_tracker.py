import pytest

from learning import tracker
from learning.models import Execution, LearningProfile, Snapshot
from qefleet.memory.models import Agent, Event
from tests.learning.helpers import recommend, report, run_task

pytestmark = pytest.mark.django_db


def make_profile(agent, window=20):
    profile, _ = LearningProfile.objects.update_or_create(agent=agent, defaults={"baseline_window": window})
    return profile


def test_it_snapshots_every_ten_tasks(alice):
    make_profile(alice)
    for index in range(25):
        run_task(alice, success=index % 2 == 0)
    snapshots = list(Snapshot.objects.filter(agent=alice).order_by("last_task"))
    assert [(s.first_task, s.last_task) for s in snapshots] == [(1, 10), (11, 20)]
    assert snapshots[0].success_rate == 0.5 and snapshots[0].tasks == 10
    assert Event.objects.filter(type="learning:improvement").count() == 2


def test_the_baseline_is_the_first_window(alice):
    make_profile(alice, window=20)
    for _ in range(20):
        run_task(alice, success=False)
    profile = LearningProfile.objects.get(agent=alice)
    baseline = profile.baseline_score
    assert baseline == pytest.approx(tracker.window_stats(alice, 1, 20)["score"])
    for _ in range(20):
        run_task(alice, success=True)
    profile.refresh_from_db()
    assert profile.baseline_score == baseline  # later tasks never move it
    score, change = tracker.current_improvement(alice, profile)
    assert change == pytest.approx((score - baseline) / baseline)
    assert change > 0.2
    report = tracker.improvement_report(alice, profile)
    assert report["target_achieved"] is True and report["improvement"] == pytest.approx(change)
    latest = Snapshot.objects.filter(agent=alice).latest("last_task")
    assert latest.improvement == pytest.approx(change)
    assert Agent.objects.get(pk=alice.pk).performance["improvement"] == pytest.approx(change, abs=1e-4)


def test_a_rebaseline_starts_a_new_window(alice):
    profile = make_profile(alice, window=10)
    for _ in range(10):
        run_task(alice, success=False)
    profile.refresh_from_db()
    profile.rebaseline()
    for _ in range(10):
        run_task(alice, success=True)
    profile.refresh_from_db()
    assert profile.baseline_task == 10
    assert profile.baseline_score == pytest.approx(tracker.window_stats(alice, 11, 20)["score"])


def test_the_cycle_snapshot_covers_tasks_since_the_last_one(alice):
    from learning.jobs import record_snapshots

    make_profile(alice)
    for _ in range(13):
        run_task(alice)
    assert record_snapshots() == {"snapshots": 1}
    assert Snapshot.objects.latest("pk").first_task == 11
    assert record_snapshots() == {"snapshots": 0}


def test_the_trend_is_a_least_squares_slope(alice):
    make_profile(alice)
    for index in range(40):
        run_task(alice, success=index >= 20)
    profile = LearningProfile.objects.get(agent=alice)
    assert tracker.improvement_report(alice, profile)["trend_per_day"] > 0


def test_it_reads_two_windows_in_one_statement_as_each_alone(alice):
    for index in range(30):
        outcome = {"success": index % 3 != 0, "execution_time_ms": 500 + 250 * index,
                   "errors": [{"type": "TimeoutError"}] if index % 4 == 0 else []}
        if index % 2:  # half the tasks say nothing of satisfaction and efficiency
            outcome.update(user_satisfaction=index / 30, resource_efficiency=1 - index / 30)
        assert report(alice, recommend(alice), **outcome).status_code == 201
    short, long = tracker.windows_stats(alice, (21, 30), (5, 30))
    for stats, (first, last) in ((short, (21, 30)), (long, (5, 30))):
        tasks = list(Execution.objects.filter(agent=alice, sequence__gte=first, sequence__lte=last))
        said = [task for task in tasks if task.satisfaction is not None]
        assert stats["tasks"] == len(tasks) == last - first + 1
        assert stats["success_rate"] == pytest.approx(sum(task.success for task in tasks) / len(tasks))
        assert stats["error_rate"] == pytest.approx(sum(task.error_count > 0 for task in tasks) / len(tasks))
        assert type(stats["avg_ms"]) is float
        assert stats["avg_ms"] == pytest.approx(sum(task.execution_time_ms for task in tasks) / len(tasks))
        assert stats["satisfaction"] == pytest.approx(sum(task.satisfaction for task in said) / len(said))
        assert stats["efficiency"] == pytest.approx(sum(task.efficiency for task in said) / len(said))
    assert tracker.windows_stats(alice, (31, 40)) == [None]
