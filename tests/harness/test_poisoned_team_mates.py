"""A poisoned agent's cost to its team mates: paired runs that differ only by the poison."""

import pytest
from django.core.management import CommandError, call_command

from learning.harness import poisoning
from learning.harness.bench import poisoning_table

# The first seven demo agents: core-testing (test-generator, poisoned, and
# its four team mates) and performance-security, a team of its own task types.
AGENTS = 7
CORE_TESTING = ["test-generator", "test-executor", "coverage-analyzer", "quality-gate", "quality-analyzer"]
OTHER_TEAM = ["performance-tester", "security-scanner"]


def test_it_counts_an_agents_cost_as_its_expected_success_clean_less_poisoned():
    clean = {"mate": [0.8, 0.8, 0.9, 0.9], "other": [0.5, 0.5]}
    poisoned = {"mate": [0.8, 0.3, 0.4, 0.9], "other": [0.5, 0.6]}
    costs = poisoning.success_cost(clean, poisoned, ["mate", "other"])
    assert costs["mate"] == pytest.approx(1.0)
    assert costs["other"] == pytest.approx(-0.1)  # a gain counts against the cost


@pytest.mark.django_db
def test_the_paired_runs_differ_only_once_the_poison_began_and_only_in_its_team():
    clean, _, _ = poisoning.run_fleet(3, "tc", AGENTS, 16)
    poisoned, summary, _ = poisoning.run_fleet(3, "tp", AGENTS, 16, poisoned=("test-generator",), start=6, length=5)
    assert sorted(clean.records) == sorted(poisoned.records) == sorted(CORE_TESTING + OTHER_TEAM)
    # Round robin: every agent's first five tasks come before the poisoned agent's sixth.
    for agent in clean.records:
        assert poisoned.records[agent][:5] == clean.records[agent][:5]
    stretch = slice(5, 10)
    clean_successes = [success for success, *_ in clean.records["test-generator"][stretch]]
    poisoned_successes = [success for success, *_ in poisoned.records["test-generator"][stretch]]
    assert clean_successes != poisoned_successes
    for agent in OTHER_TEAM:
        assert poisoned.records[agent] == clean.records[agent]
    assert list(summary["poisoning"]) == ["tp3-test-generator"]


@pytest.mark.django_db
def test_a_paired_seed_costs_the_team_mates_and_leaves_the_other_teams_alone():
    run = poisoning.paired_run(3, agents=AGENTS, tasks_each=16, start=6, length=5)
    assert run["poisoned"] == "test-generator" and run["team"] == "core-testing"
    assert sorted(run["mates"]) == sorted(CORE_TESTING[1:])
    assert run["mate_cost"] == pytest.approx(sum(run["mates"].values()) / 4)
    assert run["others_cost"] == {agent: 0.0 for agent in OTHER_TEAM}


def test_the_table_sets_the_team_mates_cost_against_its_target():
    runs = [{"mate_cost": cost, "mates": {"a": cost}, "poisoned_cost": 10.0, "poisoned_cost_during": 4.0,
             "others_cost": {}, "rollbacks_clean": [], "rollbacks_poisoned": [], "poisoned": "test-generator"}
            for cost in (1.0, 2.0, 3.0)]
    figures = {"team_mates": {
        "protocol": {"agents": 5, "tasks_each": 300, "poison_start": 61, "poison_length": 60,
                     "poisoned": "test-generator"},
        "seeds": 3, "mate_cost": 2.0, "mate_cost_interval": [0.87, 3.13], "mate_cost_range": [1.0, 3.0],
        "poisoned_cost": 10.0, "poisoned_cost_interval": [10.0, 10.0], "poisoned_cost_during": 4.0,
        "others_cost_largest": None, "rollbacks_clean": 0, "rollbacks_poisoned": 0, "runs": runs,
        "whole_fleet": [{"seed": 1, "agents": 17, "tasks_each": 300, "poison_start": 201, "poison_length": 60,
                         "rolled_back": 11}]}}
    text = poisoning_table(figures)
    assert "+2.00  <= 3 tasks" in text
    assert "+0.87 to +3.13" in text
    assert "tasks 61-120 of 300" in text
    assert "(tasks 201-260 of 300), seed 1: agents rolled back" in text and "11 of 17" in text


def test_the_bench_refuses_a_poisoning_run_of_nothing():
    with pytest.raises(CommandError, match="--poisoning-only needs"):
        call_command("bench", "--poisoning-only", "--poison-seeds", "0")
