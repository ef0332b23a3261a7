"""The arithmetic of "Is it learning?" (learning/core/learning_health.py) on
cases worked out by hand."""

import math

import pytest

from learning.core import learning_health as lh
from learning.core.learning_health import TaskGroup


def group(
    agent="a",
    state="s1",
    strategy="x",
    source="",
    explored=False,
    tasks=10,
    successes=5,
    changed=None,
    learned=True,
    task_type="unit",
):
    return TaskGroup(
        agent,
        task_type,
        state,
        strategy,
        source,
        explored,
        tasks,
        successes,
        tasks if changed is None else changed,
        learned,
    )


def test_every_source_but_own_and_default_is_borrowed_even_one_it_does_not_know():
    assert [lh.source_kind(s) for s in ("", "default", "nearest", "applied", "shared", "abtest", "pooled", None)] == [
        "own",
        "default",
        "borrowed",
        "borrowed",
        "borrowed",
        "borrowed",
        "borrowed",
        None,
    ]
    assert lh.source_words("nearest") == "a nearby state's learned values"
    assert lh.source_words("pooled") == "its swarm's pooled values for the state's bucket"
    assert lh.source_words("from-elsewhere") == "borrowed values (from-elsewhere)"


def test_it_counts_outcomes_decisions_sources_and_exploration():
    figures = lh.health(
        [
            group(tasks=6, changed=6),
            group(source="default", tasks=2, changed=1),
            group(source="nearest", explored=True, tasks=1),
            group(source="pooled", tasks=1),
            group(source=None, tasks=5, changed=0),  # reported without a decision
        ]
    )
    assert (figures.outcomes, figures.changed, figures.decisions) == (15, 9, 10)
    assert figures.changed_share == pytest.approx(0.6)
    assert (figures.own, figures.borrowed, figures.default, figures.explored) == (6, 2, 2, 1)
    assert (figures.own_share, figures.borrowed_share, figures.default_share) == (0.6, 0.2, 0.2)
    assert figures.borrowed_by_source == {"nearest": 1, "pooled": 1}


def test_coverage_counts_each_agent_state_once():
    figures = lh.health(
        [
            group(state="s1"),
            group(state="s1", strategy="y"),
            group(state="s2", learned=False),
            group(agent="b", state="s1", learned=False),
        ]
    )
    assert (figures.states_seen, figures.states_learned, figures.coverage) == (3, 1, pytest.approx(1 / 3))


def test_no_window_has_no_shares():
    figures = lh.health([])
    assert (figures.changed_share, figures.coverage, figures.default_share, figures.regret) == (None, None, None, None)


def test_the_best_known_strategy_needs_evidence():
    groups = [
        group(strategy="x", tasks=10, successes=6),
        group(strategy="y", tasks=9, successes=9),
        group(agent="b", strategy="x", tasks=10, successes=8),
        group(state="s2", tasks=5, successes=5),
    ]
    assert lh.best_known(groups) == {("unit", "s1"): (0.7, 20, 14, "x")}
    assert lh.best_known(groups, min_tasks=5)[("unit", "s1")] == (1.0, 9, 9, "y")


def test_regret_is_the_success_lost_per_task_against_the_fleets_best():
    # Fleet in s1: x 16/20 (a 6/10, b 10/10); y 2/10 (a). Best: x at 0.8.
    groups = [
        group(strategy="x", tasks=10, successes=6),
        group(strategy="y", tasks=10, successes=2),
        group(agent="b", strategy="x", tasks=10, successes=10),
        group(state="s9", tasks=3, successes=0),
    ]
    best = lh.best_known(groups)
    regret = lh.regret([g for g in groups if g.agent == "a"], best)
    # a: 20 tasks in s1 (8 successes) against 0.8 each: (16 - 8) / 20; s9 has no best.
    assert regret.per_task == pytest.approx(0.4) and (regret.tasks, regret.cells) == (20, 1)
    best_var = (17 / 22) * (5 / 22) / 20
    own_var = (9 / 22) * (13 / 22) / 20
    spread = 1.96 * math.sqrt(20**2 * (best_var + own_var)) / 20
    assert (regret.low, regret.high) == (pytest.approx(0.4 - spread), pytest.approx(0.4 + spread))
    # b did better than the fleet's best rate: negative regret.
    assert lh.regret([g for g in groups if g.agent == "b"], best).per_task == pytest.approx(-0.2)
    assert lh.regret([group(state="s9")], best) is None


def test_the_fleet_figures_carry_the_regret_when_given_the_best():
    groups = [group(tasks=20, successes=10)]
    assert lh.health(groups, lh.best_known(groups)).regret.per_task == pytest.approx(0.0)


@pytest.mark.parametrize(
    "groups, enabled, expected",
    [
        ([group(tasks=29)], True, lh.TOO_EARLY),
        ([group(tasks=40)], False, lh.LEARNING_OFF),
        ([group(tasks=40)], True, lh.LEARNING),
        ([group(tasks=40, changed=19)], True, lh.NOT_LEARNING),
        ([group(tasks=40, changed=20)], True, lh.LEARNING),
        ([group(tasks=19), group(source="default", tasks=21)], True, lh.MOSTLY_DEFAULT),
        ([group(tasks=20), group(source="default", tasks=20)], True, lh.LEARNING),
        ([group(source="default", tasks=40, changed=0)], True, lh.NOT_LEARNING),
        # Too few decisions to judge the default share: the values moving is all that counts.
        ([group(source=None, tasks=30), group(source="default", tasks=29)], True, lh.LEARNING),
    ],
)
def test_the_verdict_and_its_thresholds(groups, enabled, expected):
    assert lh.verdict(lh.health(groups), enabled) == expected
