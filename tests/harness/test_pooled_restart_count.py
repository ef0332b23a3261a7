"""The stable-world run counts every restart of its swarm's pooled rows."""

import pytest

from learning.harness import poisoning
from learning.models import PooledValue, Strategy

pytestmark = pytest.mark.django_db


def pooled(strategy, key, visits, current):
    return PooledValue.objects.create(swarm="s", task_type="t", abstract_key=key, strategy=strategy, visits=visits,
                                      current_visits=current)


def test_it_counts_and_logs_a_restart_where_current_visits_grew_less_than_visits():
    strategy = Strategy.catalog()[0]
    steady = pooled(strategy, "*", 12, 12)
    restarted = pooled(strategy, "0.5,0.6", 12, 12)
    born_restarted = pooled(strategy, "0.2,0.2", 15, 3)  # restarted before the first snapshot
    PooledValue.objects.create(swarm="another", task_type="t", abstract_key="*", strategy=strategy, visits=20,
                               current_visits=1)
    counter = poisoning.RestartCounter("s")
    counter.snapshot()
    assert counter.restarts == 1
    PooledValue.objects.filter(pk=steady.pk).update(visits=17, current_visits=17)
    PooledValue.objects.filter(pk=restarted.pk).update(visits=17, current_visits=2)  # restarted at visit 16
    counter.snapshot({"done": 40})
    assert counter.restarts == 2
    assert counter.log[-1] == {"task": 40, "task_type": "t", "abstract_key": "0.5,0.6", "strategy": strategy.name,
                               "visits": 17}
    PooledValue.objects.filter(pk=born_restarted.pk).update(visits=25, current_visits=13)
    counter.snapshot()
    assert counter.restarts == 2


def test_a_stable_run_reports_rollbacks_restarts_and_the_gap_closed():
    run = poisoning.stable_run(2, 12, agents=2)
    assert run["tasks"] == 24 and run["rollbacks"] == []
    assert run["pooled_rows"] == PooledValue.objects.filter(swarm__startswith="ps2-").count() > 0
    assert run["rows_restarted"] <= run["restarts"]
    assert set(run) >= {"gap_closed_expected", "gap_closed_observed"}
